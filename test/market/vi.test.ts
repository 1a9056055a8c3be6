/**
 * KRX volatility interruptions and single-price auctions in the simulator: the thresholds exactly
 * (pure rules), the engine never printing past them, a VI's auction (no ticks, one execution at
 * its end), and under MARKET_CLOCK=krx with TestClock the opening and closing auctions.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, Layer, Option, TestClock } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import { FlusherLive } from "../../src/connection/Flusher.js"
import { MarketClockLive } from "../../src/feed/MarketClock.js"
import { SimulatorLive } from "../../src/feed/Simulator.js"
import { SimulatorEngine, uShape } from "../../src/feed/simulator/SimulatorEngine.js"
import { breaches, dynamicViPermil, VI_DURATION_MS, viTriggerAt } from "../../src/feed/volatility.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { makeMarketState } from "../../src/pipeline/MarketState.js"
import type { InstrumentStatus, MarketEvent, PriceUpdate } from "../../src/protocol/server.js"
import { makeRecordingPipeline, marketLayers, ofType, shippedUniverse } from "./support.js"

const isStock = (code: string) => /^\d{6}$/.test(code)

describe("VI thresholds (pure)", () => {
  const at = (price: number, staticBase: number, lastExecution: number, kospi200: boolean, closing = false) =>
    viTriggerAt({
      price,
      staticBase,
      lastExecution,
      kospi200,
      phase: closing ? "closing_auction" : "continuous",
    })

  it("calls a dynamic VI at exactly ±3% from the last execution for a KOSPI 200 constituent", () => {
    // 100,000 KRW: tick 100, so 103,000 is exactly +3% and 102,900 one tick inside.
    expect(at(103_000, 100_000, 100_000, true)).toMatchObject({ viType: "dynamic", reference: 100_000 })
    expect(at(102_900, 100_000, 100_000, true)).toBeUndefined()
    expect(at(97_000, 100_000, 100_000, true)).toMatchObject({ viType: "dynamic" })
    expect(at(97_100, 100_000, 100_000, true)).toBeUndefined()
  })

  it("calls a dynamic VI at exactly ±6% for other stocks", () => {
    expect(at(106_000, 100_000, 100_000, false)).toMatchObject({ viType: "dynamic", reference: 100_000 })
    expect(at(105_900, 100_000, 100_000, false)).toBeUndefined()
    expect(at(94_000, 100_000, 100_000, false)).toMatchObject({ viType: "dynamic" })
    expect(at(94_100, 100_000, 100_000, false)).toBeUndefined()
  })

  it("uses 2% and 4% in the closing auction", () => {
    expect(dynamicViPermil(true, "closing_auction")).toBe(20)
    expect(dynamicViPermil(false, "closing_auction")).toBe(40)
    expect(at(102_000, 100_000, 100_000, true, true)).toMatchObject({ viType: "dynamic" })
    expect(at(101_900, 100_000, 100_000, true, true)).toBeUndefined()
    expect(at(96_000, 100_000, 100_000, false, true)).toMatchObject({ viType: "dynamic" })
    expect(at(96_100, 100_000, 100_000, false, true)).toBeUndefined()
  })

  it("calls a static VI at exactly ±10% from the static base, whatever the last execution", () => {
    // The last execution is close by (no dynamic trigger): only the static band decides.
    expect(at(110_000, 100_000, 108_000, true)).toMatchObject({ viType: "static", reference: 100_000 })
    expect(at(109_900, 100_000, 108_000, true)).toBeUndefined()
    expect(at(90_000, 100_000, 92_000, false)).toMatchObject({ viType: "static", reference: 100_000 })
    expect(at(90_100, 100_000, 92_000, false)).toBeUndefined()
    // Both breached: static, the wider band, is reported.
    expect(at(111_000, 100_000, 100_000, true)?.viType).toBe("static")
  })

  it.prop(
    "agrees with exact rational arithmetic on prices of any band",
    {
      reference: FastCheck.integer({ min: 1_000, max: 2_000_000 }),
      offset: FastCheck.integer({ min: -200, max: 200 }),
    },
    ({ reference, offset }) => {
      const price = reference + Math.round((reference * offset) / 1000)
      for (const permil of [20, 30, 40, 60, 100]) {
        const exact =
          price * 1000 >= reference * (1000 + permil) || price * 1000 <= reference * (1000 - permil)
        expect(breaches(price, reference, permil)).toBe(exact)
      }
    },
  )
})

/** A simulator over the shipped universe with a wild daily sigma, so VIs come within seconds. */
const wildEngine = (seed: number, codes?: ReadonlyArray<string>) => {
  const universe = shippedUniverse()
  const state = makeMarketState(universe)
  const engine = new SimulatorEngine(universe, state, {
    seed,
    rate: 400,
    dailySigma: 1.5,
    ...(codes === undefined ? {} : { codes }),
  })
  return { universe, state, engine }
}
const open = () => true

describe("VIs in the simulated continuous session", () => {
  it.prop(
    "never prints past a threshold: every print is within the dynamic band of the previous one and the static band of the base",
    { seed: FastCheck.integer() },
    ({ seed }) => {
      const { universe, engine } = wildEngine(seed)
      const last = new Map<string, number>()
      const base = new Map<string, number>()
      const inVi = new Set<string>()
      const problems: Array<string> = []
      let vis = 0
      const consume = (events: ReadonlyArray<MarketEvent>) => {
        const statusNow = new Set<string>()
        for (const e of events) if (e.type === "instrument_status") statusNow.add(e.code)
        for (const e of events) {
          if (e.type === "instrument_status") {
            if (e.status === "vi") {
              vis++
              inVi.add(e.code)
              if (e.vi_type === "dynamic" && e.reference_price !== last.get(e.code))
                problems.push(
                  `${e.code}: dynamic VI measured from ${e.reference_price}, last print ${last.get(e.code)}`,
                )
              if (e.vi_type === "static" && e.reference_price !== base.get(e.code))
                problems.push(
                  `${e.code}: static VI measured from ${e.reference_price}, base ${base.get(e.code)}`,
                )
            } else inVi.delete(e.code)
            continue
          }
          if (e.type !== "price_update" || !isStock(e.code)) continue
          const inst = universe.byCode.get(e.code)
          const prev = last.get(e.code)
          const auction = prev === undefined || inVi.has(e.code)
          if (inVi.has(e.code) && !statusNow.has(e.code)) problems.push(`${e.code}: a print during its VI`)
          if (!auction && prev !== undefined && inst !== undefined) {
            if (breaches(e.price, prev, dynamicViPermil(inst.kospi200, "continuous")))
              problems.push(`${e.code}: ${prev} -> ${e.price} without a dynamic VI`)
            if (breaches(e.price, base.get(e.code) ?? 0, 100))
              problems.push(`${e.code}: ${e.price} past the static band`)
          }
          // An auction's execution (the opening, a VI's end) is the new static base.
          if (auction) base.set(e.code, e.price)
          last.set(e.code, e.price)
        }
      }
      consume(engine.initialEvents(0))
      for (let t = 25; t <= 150_000; t += 250) consume(engine.advance(t, open))
      expect(problems.slice(0, 5)).toEqual([])
      expect(vis).toBeGreaterThan(0)
    },
    { fastCheck: { numRuns: 4 } },
  )

  for (const [kind, code] of [
    ["a KOSPI 200 constituent", "005930"],
    ["a KOSDAQ stock", "247540"],
  ] as const) {
    it(`runs ${kind}'s VI as a 2-minute auction: no ticks, then one execution at its end`, () => {
      const { engine, universe } = wildEngine(7, [code])
      expect(universe.byCode.get(code)?.kospi200).toBe(code === "005930")
      const events: Array<{ readonly at: number; readonly e: MarketEvent }> = []
      for (const e of engine.initialEvents(0)) events.push({ at: 0, e })
      for (let t = 25; t <= 600_000; t += 25)
        for (const e of engine.advance(t, open)) events.push({ at: t, e })
      const mine = events.filter(
        ({ e }) =>
          (e.type === "instrument_status" || e.type === "price_update") && "code" in e && e.code === code,
      )
      const firstVi = mine.findIndex(({ e }) => e.type === "instrument_status" && e.status === "vi")
      expect(firstVi).toBeGreaterThanOrEqual(0)
      const start = mine[firstVi] as { readonly at: number; readonly e: InstrumentStatus }
      expect(start.e.expected_end).toBe(new Date(start.at + VI_DURATION_MS).toISOString())
      expect(start.e.reason).toMatch(start.e.vi_type === "static" ? /^static VI/ : /^dynamic VI/)
      const end = mine.findIndex(
        (x, i) => i > firstVi && x.e.type === "instrument_status" && x.e.status === "trading",
      )
      expect(end).toBeGreaterThan(firstVi)
      const during = mine.slice(firstVi + 1, end)
      // Exactly one execution, at the auction's end (the first call at or after it), then `trading`.
      expect(during.map(({ e }) => e.type)).toEqual(["price_update"])
      const exec = during[0] as { readonly at: number; readonly e: PriceUpdate }
      expect(exec.at).toBe(start.at + VI_DURATION_MS)
      expect(mine[end]?.at).toBe(exec.at)
      expect(mine[end]?.e).toMatchObject({ reason: `VI auction ended: one execution at ${exec.e.price}` })
    })
  }
})

describe("U-shaped session", () => {
  it("trades twice the mean rate at the open and the close, half at midday, the mean over the day", () => {
    expect(uShape(0)).toBe(2)
    expect(uShape(1)).toBe(2)
    expect(uShape(0.5)).toBe(0.5)
    let sum = 0
    for (let k = 0; k < 1000; k++) sum += uShape((k + 0.5) / 1000)
    expect(sum / 1000).toBeCloseTo(1, 3)
  })
})

describe("KRX auctions under TestClock (MARKET_CLOCK=krx)", () => {
  // Monday 2026-12-07 in Asia/Seoul (UTC+9).
  const kst = (hhmmss: string) => Date.parse(`2026-12-07T${hhmmss}+09:00`)
  const layerAt = () => {
    const pipeline = makeRecordingPipeline()
    const config = AppConfig.layerWith({
      feed: "simulator",
      feedRate: 400,
      feedSeed: Option.some(3),
      marketClock: "krx",
    })
    const flusher = FlusherLive.pipe(Layer.provide(GatewayStats.layer))
    const base = Layer.provideMerge(flusher, Layer.mergeAll(marketLayers(), pipeline.layer, config))
    return {
      pipeline,
      layer: SimulatorLive.pipe(Layer.provideMerge(MarketClockLive), Layer.provideMerge(base)),
    }
  }
  const stockPrices = (events: ReadonlyArray<MarketEvent>) =>
    ofType(events, "price_update").filter((e) => isStock(e.code))
  const stockCount = shippedUniverse().instruments.length

  // TestClock wakes the feed's 25 ms loop at every interval it crosses, so each test starts the
  // gateway's feed a few seconds before the moment it looks at.
  it.scoped(
    "no trades in the opening auction; one execution per stock at 09:00, then continuous trading",
    () => {
      const { pipeline, layer } = layerAt()
      return Effect.gen(function* () {
        yield* TestClock.setTime(kst("08:59:50"))
        yield* Effect.gen(function* () {
          // Before the open: the current prices as snapshots (no open/high/low: not executions).
          const snapshots = stockPrices(pipeline.published)
          expect(snapshots.length).toBe(stockCount)
          expect(snapshots.every((p) => p.open === undefined && p.volume === 0)).toBe(true)
          const before = pipeline.published.length
          yield* TestClock.setTime(kst("08:59:59.990"))
          expect(stockPrices(pipeline.published.slice(before))).toEqual([])
          const atOpen = pipeline.published.length
          yield* TestClock.setTime(kst("09:00:00.010"))
          const opening = pipeline.published.slice(atOpen)
          const prints = stockPrices(opening)
          const vis = ofType(opening, "instrument_status").filter((s) => s.status === "vi")
          // Each stock once: its opening execution, or a static VI when it opens 10% or more away.
          expect(new Set(prints.map((p) => p.code)).size).toBe(prints.length)
          expect(prints.length + vis.length).toBe(stockCount)
          expect(vis.every((v) => v.vi_type === "static")).toBe(true)
          for (const p of prints) expect([p.open, p.high, p.low]).toEqual([p.price, p.price, p.price])
          const later = pipeline.published.length
          yield* TestClock.adjust("1 second")
          expect(stockPrices(pipeline.published.slice(later)).length).toBeGreaterThan(0)
        }).pipe(Effect.provide(layer))
      })
    },
  )

  it.scoped("stops continuous trading at 15:20, when the closing auction starts", () => {
    const { pipeline, layer } = layerAt()
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("15:19:57"))
      yield* Effect.gen(function* () {
        const before = pipeline.published.length
        yield* TestClock.setTime(kst("15:19:59.990"))
        expect(stockPrices(pipeline.published.slice(before)).length).toBeGreaterThan(0)
        const auction = pipeline.published.length
        yield* TestClock.setTime(kst("15:20:10"))
        expect(stockPrices(pipeline.published.slice(auction))).toEqual([])
      }).pipe(Effect.provide(layer))
    })
  })

  it.scoped("one execution per trading stock at 15:30, none after it", () => {
    const { pipeline, layer } = layerAt()
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("15:29:50"))
      yield* Effect.gen(function* () {
        const pending = () => {
          const vi = new Set<string>()
          for (const s of ofType(pipeline.published, "instrument_status"))
            if (s.status === "vi") vi.add(s.code)
            else vi.delete(s.code)
          return vi
        }
        const auction = pipeline.published.length
        yield* TestClock.setTime(kst("15:29:59.990"))
        expect(stockPrices(pipeline.published.slice(auction))).toEqual([])
        const waiting = pending()
        const atClose = pipeline.published.length
        yield* TestClock.setTime(kst("15:30:00.010"))
        const closing = pipeline.published.slice(atClose)
        const prints = stockPrices(closing)
        const vis = ofType(closing, "instrument_status").filter((s) => s.status === "vi")
        // Every stock not already in a VI: one execution, or a VI (closing thresholds 2% / 4% / 10%).
        expect(new Set(prints.map((p) => p.code)).size).toBe(prints.length)
        expect(prints.length + vis.length).toBe(stockCount - waiting.size)
        expect(prints.every((p) => !waiting.has(p.code))).toBe(true)
        // Nothing trades after the close (a VI auction's own end is the engine test's subject above).
        const after = pipeline.published.length
        yield* TestClock.setTime(kst("15:30:05"))
        expect(stockPrices(pipeline.published.slice(after))).toEqual([])
      }).pipe(Effect.provide(layer))
    })
  })
})
