/**
 * The ticker fields of `price_update` (open, high, low, prev_close, value, bid/ask) as properties:
 * over many simulated steps and over random ingest sequences, every update agrees with the prints
 * the test observed itself (high >= every price of the day, low <= every price, open the first
 * price, value the sum of price x quantity).
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { validateIngest } from "../../src/feed/ingest.js"
import { SimulatorEngine } from "../../src/feed/simulator/SimulatorEngine.js"
import { dailyLimits, tickDown, tickUp } from "../../src/market/tickSize.js"
import { makeMarketState } from "../../src/pipeline/MarketState.js"
import type { MarketEvent, PriceUpdate } from "../../src/protocol/server.js"
import { shippedUniverse } from "./support.js"

/** What the test saw of one code's day: every price, the volume and the value it adds up itself. */
interface Seen {
  first: number
  max: number
  min: number
  volume: number
  value: number
}

/**
 * Checks one price_update against what was seen before it (and records it). Plain checks that
 * return the first problem: an `expect` per event is too slow over thousands of events.
 */
const check = (seen: Map<string, Seen>, e: PriceUpdate, prevClose: number, isIndex: boolean) => {
  // A reference price (before the day's first execution) is not a print and carries no range.
  if (e.open === undefined && !seen.has(e.code)) {
    return e.high === undefined && e.low === undefined ? undefined : `${e.code}: range without an open`
  }
  const before = seen.get(e.code)
  const s: Seen = before ?? { first: e.price, max: e.price, min: e.price, volume: 0, value: 0 }
  s.max = Math.max(s.max, e.price)
  s.min = Math.min(s.min, e.price)
  s.value += e.price * Math.max(0, e.volume - s.volume)
  s.volume = e.volume
  seen.set(e.code, s)
  const where = `${e.code} at ${e.price}`
  if (e.open !== s.first) return `${where}: open ${e.open}, first price ${s.first}`
  if (e.high === undefined || e.high < s.max) return `${where}: high ${e.high} below ${s.max}`
  if (e.low === undefined || e.low > s.min) return `${where}: low ${e.low} above ${s.min}`
  if (e.prev_close !== prevClose) return `${where}: prev_close ${e.prev_close}, expected ${prevClose}`
  if (isIndex) {
    if (e.value !== undefined || e.bid !== undefined || e.ask !== undefined)
      return `${where}: index with value/book`
    return undefined
  }
  if (e.value !== s.value) return `${where}: value ${e.value}, sum of price x quantity ${s.value}`
  if (e.bid !== undefined && e.ask !== undefined && e.bid >= e.ask)
    return `${where}: bid ${e.bid} >= ask ${e.ask}`
  return undefined
}

const isIndexCode = (code: string) => code === "KOSPI" || code === "KOSDAQ"

describe("ticker fields over simulated steps", () => {
  it.prop(
    "high, low, open and value agree with every print of the day, for stocks and indices",
    { seed: FastCheck.integer(), rate: FastCheck.constantFrom(200, 2_000, 8_000) },
    ({ seed, rate }) => {
      const universe = shippedUniverse()
      const state = makeMarketState(universe)
      const engine = new SimulatorEngine(universe, state, { seed, rate })
      const seen = new Map<string, Seen>()
      const problems: Array<string> = []
      const consume = (events: ReadonlyArray<MarketEvent>) => {
        for (const e of events) {
          if (e.type !== "price_update") continue
          const q = state.get(e.code)
          if (q === undefined) {
            problems.push(`unknown ${e.code}`)
            continue
          }
          const p = check(seen, e, q.prevClose, isIndexCode(e.code))
          if (p !== undefined && problems.length < 5) problems.push(p)
        }
      }
      consume(engine.initialEvents(0))
      // 200 steps of 25 ms: five simulated seconds, up to 40,000 prints at the highest rate.
      for (let k = 1; k <= 200; k++) consume(engine.advance(k * 25, () => true))
      expect(problems).toEqual([])
      // The run moved prices: the property was not checked on a flat day only.
      expect([...seen.values()].some((s) => s.max > s.min)).toBe(true)
    },
    { fastCheck: { numRuns: 8 } },
  )
})

/** One random ingest event for a few codes: a price some ticks from the last, volume added or not. */
const ingestStep = FastCheck.record({
  code: FastCheck.constantFrom("005930", "000660", "247540", "KOSPI"),
  ticks: FastCheck.integer({ min: -40, max: 40 }),
  addVolume: FastCheck.option(FastCheck.integer({ min: 1, max: 5_000 }), { nil: undefined }),
  // Ends a request here (requests of several events check the in-request ordering).
  flush: FastCheck.boolean(),
})

describe("ticker fields over ingest", () => {
  it.prop(
    "derived figures agree with every accepted print, in any split into requests",
    { steps: FastCheck.array(ingestStep, { minLength: 1, maxLength: 120 }) },
    ({ steps }) => {
      const universe = shippedUniverse()
      const state = makeMarketState(universe)
      const seen = new Map<string, Seen>()
      const last = new Map<string, number>()
      const volume = new Map<string, number>()
      const problems: Array<string> = []
      let request: Array<unknown> = []
      const send = () => {
        const { accepted, rejectedCount } = validateIngest(request, universe, state, 0)
        if (rejectedCount > 0) problems.push(`${rejectedCount} rejected`)
        state.applyAll(accepted)
        for (const e of accepted) {
          if (e.type !== "price_update") continue
          const p = check(seen, e, state.get(e.code)?.prevClose ?? 0, isIndexCode(e.code))
          if (p !== undefined) problems.push(p)
        }
        request = []
      }
      for (const s of steps) {
        const q = state.get(s.code)
        if (q === undefined) throw new Error(`no state for ${s.code}`)
        let price = last.get(s.code) ?? q.prevClose
        if (isIndexCode(s.code)) price = Math.round((price + s.ticks * 0.37) * 100) / 100
        else {
          const { lower, upper } = dailyLimits(q.prevClose)
          for (let i = 0; i < Math.abs(s.ticks); i++) price = s.ticks > 0 ? tickUp(price) : tickDown(price)
          price = Math.min(upper, Math.max(lower, price))
        }
        last.set(s.code, price)
        const event: Record<string, unknown> = { type: "price_update", code: s.code, price }
        if (s.addVolume !== undefined) {
          const v = (volume.get(s.code) ?? 0) + s.addVolume
          volume.set(s.code, v)
          event.volume = v
        }
        request.push(event)
        if (s.flush) send()
      }
      send()
      expect(problems).toEqual([])
      // The state ends where the events left it.
      for (const [code, s] of seen) {
        expect(state.get(code)).toMatchObject({ open: s.first, high: s.max, low: s.min })
        if (!isIndexCode(code)) expect(state.get(code)?.value).toBe(s.value)
      }
    },
    { fastCheck: { numRuns: 200 } },
  )

  it.prop(
    "supplied figures are accepted only when they agree, and never narrow the day's range",
    {
      steps: FastCheck.array(
        FastCheck.record({
          ticks: FastCheck.integer({ min: -30, max: 30 }),
          highTicks: FastCheck.option(FastCheck.integer({ min: -5, max: 20 }), { nil: undefined }),
          lowTicks: FastCheck.option(FastCheck.integer({ min: -5, max: 20 }), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 60 },
      ),
    },
    ({ steps }) => {
      const universe = shippedUniverse()
      const state = makeMarketState(universe)
      const code = "005930"
      let price = 73_000
      // The day's range as the accepted events state it: their prices and supplied high/low.
      let dayHigh = 0
      let dayLow = Number.POSITIVE_INFINITY
      const problems: Array<string> = []
      const move = (p: number, n: number) => {
        let x = p
        for (let i = 0; i < Math.abs(n); i++) x = n > 0 ? tickUp(x) : tickDown(x)
        return x
      }
      for (const s of steps) {
        price = move(price, s.ticks)
        const event: Record<string, unknown> = { type: "price_update", code, price }
        if (s.highTicks !== undefined) event.high = move(price, s.highTicks)
        if (s.lowTicks !== undefined) event.low = move(price, -s.lowTicks)
        const { accepted } = validateIngest([event], universe, state, 0)
        const e = accepted[0]
        const high = Math.max(price, dayHigh)
        const low = Math.min(price, dayLow)
        const agrees =
          (typeof event.high !== "number" || event.high >= high) &&
          (typeof event.low !== "number" || event.low <= low)
        if (agrees !== (e !== undefined))
          problems.push(`${JSON.stringify(event)} accepted: ${e !== undefined}`)
        if (e === undefined || e.type !== "price_update") continue
        dayHigh = Math.max(high, typeof event.high === "number" ? event.high : 0)
        dayLow = Math.min(low, typeof event.low === "number" ? event.low : Number.POSITIVE_INFINITY)
        state.applyAll(accepted)
        const q = state.get(code)
        if (q?.high !== dayHigh || q?.low !== dayLow)
          problems.push(`state range ${q?.low}-${q?.high} at ${price}`)
        if (e.high !== dayHigh || e.low !== dayLow)
          problems.push(`event range ${e.low}-${e.high} at ${price}`)
      }
      expect(problems).toEqual([])
    },
    { fastCheck: { numRuns: 200 } },
  )
})
