/**
 * The simulated day looks like a KRX day: moves of the size real stocks make, both ends of a
 * change-percent screen filled from the start, occasional VIs mostly on small caps, occasional
 * limit moves on small caps and never a trade past a limit, a U-shaped trade rate under the KRX
 * clock; and all of it deterministic for a seed.
 */
import { describe, expect, it } from "@effect/vitest"
import { MAX_LAG_MS, SimulatorEngine } from "../../src/feed/simulator/SimulatorEngine.js"
import { tickDown, tickUp } from "../../src/market/tickSize.js"
import { makeMarketState } from "../../src/pipeline/MarketState.js"
import type { MarketEvent } from "../../src/protocol/server.js"
import { shippedUniverse } from "./support.js"

const open = () => true
const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

const engineWith = (seed: number, rate: number, krxSessions = false) => {
  const universe = shippedUniverse()
  const state = makeMarketState(universe)
  return { universe, state, engine: new SimulatorEngine(universe, state, { seed, rate, krxSessions }) }
}

describe("a simulated day", () => {
  it("fills both ends of a change-percent screen from the first second", () => {
    for (const seed of [1, 2, 3]) {
      const { state, engine } = engineWith(seed, 200)
      engine.initialEvents(0)
      const changes = state.stocks.map((q) => ((q.last - q.prevClose) / q.prevClose) * 100)
      expect(changes.filter((c) => c >= 1).length, `seed ${seed}`).toBeGreaterThan(10)
      expect(changes.filter((c) => c <= -1).length, `seed ${seed}`).toBeGreaterThan(10)
    }
  })

  it("moves large caps one to a few percent over a session, small caps more, with occasional VIs", () => {
    // A whole 6.5 h session at 20 ticks/s (volatility is per session, whatever the rate).
    const { universe, state, engine } = engineWith(11, 20)
    let vis = 0
    let smallCapVis = 0
    const count = (events: ReadonlyArray<MarketEvent>) => {
      for (const e of events) {
        if (e.type !== "instrument_status" || e.status !== "vi") continue
        vis++
        if (universe.byCode.get(e.code)?.kospi200 === false) smallCapVis++
      }
    }
    count(engine.initialEvents(0))
    // Called within MAX_LAG_MS: a longer step skips the ticks past it (the engine does not catch
    // up more), and the day measured would be a quarter of the trading it stands for.
    const step = MAX_LAG_MS / 2
    for (let t = step; t <= 23_400_000; t += step) count(engine.advance(t, open))
    expect(engine.skipped).toBe(0)
    const move = (q: (typeof state.stocks)[number]) => Math.abs(Math.log(q.last / q.prevClose)) * 100
    const large = state.stocks.filter((q) => universe.byCode.get(q.code)?.kospi200).map(move)
    const kosdaq = state.stocks.filter((q) => q.market === "KOSDAQ").map(move)
    // |N(0, 1.5%)| has a median of about 1%; KOSDAQ's (2.8% and jumps) about twice that.
    expect(median(large)).toBeGreaterThan(0.5)
    expect(median(large)).toBeLessThan(2.5)
    expect(median(kosdaq)).toBeGreaterThan(median(large))
    expect(median(kosdaq)).toBeLessThan(5)
    // Occasional: some VIs in a day, far fewer than stocks, mostly on small caps.
    expect(vis).toBeGreaterThan(0)
    expect(vis).toBeLessThan(state.stocks.length)
    expect(smallCapVis / vis).toBeGreaterThan(0.5)
    // The day's range is wider than the net move for most stocks: prices went both ways.
    const ranged = state.stocks.filter((q) => (q.high ?? 0) > Math.max(q.last, q.open ?? 0))
    expect(ranged.length).toBeGreaterThan(state.stocks.length / 3)
  })

  it("takes a few small caps to their daily price limit (±30% of the previous close), and nothing past it", () => {
    // A whole KRX day at 20 ticks/s, called often enough (within MAX_LAG_MS, with room for the
    // open's and the close's doubled rate) that no tick is skipped.
    const at = (hhmm: string) => Date.parse(`2026-12-07T${hhmm}:00+09:00`)
    const { universe, state, engine } = engineWith(2, 20, true)
    // The limits in exact integer arithmetic: 10 x price against 7 and 13 x the previous close.
    const prevClose = new Map(state.stocks.map((q) => [q.code, q.prevClose]))
    const beyond: Array<string> = []
    const atLimit = new Map<string, "upper" | "lower">()
    const check = (events: ReadonlyArray<MarketEvent>) => {
      for (const e of events) {
        if (e.type !== "price_update" || !/^\d{6}$/.test(e.code)) continue
        const prev = prevClose.get(e.code) ?? 0
        for (const p of [e.price, e.high ?? e.price, e.low ?? e.price])
          if (10 * p > 13 * prev || 10 * p < 7 * prev) beyond.push(`${e.code}: ${p} (previous close ${prev})`)
        // At the limit: the next tick up (or down) would be past it.
        if (10 * tickUp(e.price) > 13 * prev) atLimit.set(e.code, "upper")
        if (10 * tickDown(e.price) < 7 * prev) atLimit.set(e.code, "lower")
      }
    }
    check(engine.initialEvents(at("09:00")))
    const step = MAX_LAG_MS / 2
    for (let t = at("09:00") + step; t <= at("15:35"); t += step) check(engine.advance(t, open))
    expect(engine.skipped).toBe(0)
    expect(beyond.slice(0, 5)).toEqual([])
    // Occasional, and on small caps (not KOSPI 200 constituents): the day's news stocks, this
    // seed's both ways.
    const limitCodes = [...atLimit.keys()]
    expect(new Set(atLimit.values())).toEqual(new Set(["upper", "lower"]))
    expect(limitCodes.length).toBeLessThan(state.stocks.length / 20)
    for (const code of limitCodes) expect(universe.byCode.get(code)?.kospi200, code).toBe(false)
  })

  it("trades at a U-shaped rate across a KRX session", () => {
    // Monday 2026-12-07, Asia/Seoul.
    const at = (hhmm: string) => Date.parse(`2026-12-07T${hhmm}:00+09:00`)
    const { engine } = engineWith(5, 100, true)
    engine.initialEvents(at("09:00"))
    const tradesBetween = (from: number, to: number) => {
      let n = 0
      // Prints of stocks (not indices, not auctions' statuses) per window.
      for (let t = from; t < to; t += 100)
        n += engine.advance(t, open).filter((e) => e.type === "price_update" && /^\d{6}$/.test(e.code)).length
      return n
    }
    const opening = tradesBetween(at("09:00") + 100, at("09:02"))
    engine.ticksDue(at("12:00")) // skip ahead without producing
    const midday = tradesBetween(at("12:00") + 100, at("12:02"))
    engine.ticksDue(at("15:14"))
    const closing = tradesBetween(at("15:14") + 100, at("15:16"))
    expect(opening / midday).toBeGreaterThan(2.5)
    expect(closing / midday).toBeGreaterThan(2.5)
  })

  it("is the same day for the same seed", () => {
    const a = engineWith(42, 200).engine
    const b = engineWith(42, 200).engine
    expect(a.initialEvents(0)).toEqual(b.initialEvents(0))
    for (let t = 25; t <= 5_000; t += 25) expect(a.advance(t, open)).toEqual(b.advance(t, open))
    const c = engineWith(43, 200).engine
    expect(c.initialEvents(0)).not.toEqual(engineWith(42, 200).engine.initialEvents(0))
  })
})

describe("a feed taking over a day in progress", () => {
  it("does not open again the stocks that already traded today", () => {
    const { state, engine } = engineWith(8, 200)
    state.recordTrade("005930", 74_000, 1_000, 0)
    const events = engine.initialEvents(1_000)
    const samsung = events.filter((e) => e.type === "price_update" && e.code === "005930")
    // Its price as it stands (no new execution, no gap), with the day's figures so far.
    expect(samsung).toEqual([expect.objectContaining({ price: 74_000, volume: 1_000, open: 74_000 })])
    expect(state.get("005930")?.open).toBe(74_000)
    // The others opened: an execution each, or a static VI.
    const opened = events.filter(
      (e) => e.type === "price_update" && e.code !== "005930" && e.open !== undefined,
    )
    expect(opened.length).toBeGreaterThan(state.stocks.length * 0.9)
  })
})
