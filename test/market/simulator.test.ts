import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, Layer, Option, TestClock } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import { FlusherLive } from "../../src/connection/Flusher.js"
import { MarketClock, MarketClockLive } from "../../src/feed/MarketClock.js"
import { SimulatorLive } from "../../src/feed/Simulator.js"
import { MAX_LAG_MS, SimulatorEngine } from "../../src/feed/simulator/SimulatorEngine.js"
import { buildBook, indexLevel, stepInstrument } from "../../src/feed/simulatorModel.js"
import { orderbookChecksum } from "../../src/market/checksum.js"
import { priceChange } from "../../src/market/pricing.js"
import { Prng } from "../../src/market/prng.js"
import { dailyLimits, floorToTick, isOnTickGrid } from "../../src/market/tickSize.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { makeMarketState } from "../../src/pipeline/MarketState.js"
import type { Level, MarketEvent } from "../../src/protocol/server.js"
import { makeRecordingPipeline, marketLayers, ofType, shippedUniverse } from "./support.js"

/** First violated order-book invariant, or undefined. Plain checks: `expect` per level is too slow here. */
const bookProblem = (
  bids: ReadonlyArray<Level>,
  asks: ReadonlyArray<Level>,
  prevClose: number,
): string | undefined => {
  const { lower, upper } = dailyLimits(prevClose)
  if (bids.length > 10 || asks.length > 10) return "more than 10 levels"
  if (bids.length + asks.length === 0) return "empty book"
  for (const l of [...bids, ...asks]) {
    if (!isOnTickGrid(l.price)) return `${l.price} off the grid`
    if (l.price < lower || l.price > upper) return `${l.price} outside ${lower}-${upper}`
    if (!Number.isInteger(l.quantity) || l.quantity <= 0) return `bad quantity ${l.quantity}`
  }
  for (let i = 1; i < bids.length; i++) if (bids[i]!.price >= bids[i - 1]!.price) return "bids not descending"
  for (let i = 1; i < asks.length; i++) if (asks[i]!.price <= asks[i - 1]!.price) return "asks not ascending"
  if (bids.length > 0 && asks.length > 0 && bids[0]!.price >= asks[0]!.price) return "crossed book"
  return undefined
}

const isStockCode = (code: string) => /^\d{6}$/.test(code)

describe("stepInstrument (pure walk)", () => {
  it.prop(
    "stays on the grid, inside the daily limit, with a consistent book, over many steps",
    {
      seed: FastCheck.integer(),
      prev: FastCheck.integer({ min: 1_000, max: 1_500_000 }),
      // Large sigmas push the walk into both limits.
      sigma: FastCheck.constantFrom(0.0001, 0.002, 0.02, 0.2),
    },
    ({ seed, prev, sigma }) => {
      const prevClose = floorToTick(prev)
      const { lower, upper } = dailyLimits(prevClose)
      const rng = new Prng(seed)
      let mid = prevClose
      const problems: Array<string> = []
      for (let k = 0; k < 300; k++) {
        const t = stepInstrument(rng, { prevClose, mid, sigma })
        mid = t.mid
        if (!isOnTickGrid(t.price)) problems.push(`${t.price} off the grid`)
        if (t.price < lower || t.price > upper) problems.push(`${t.price} outside ${lower}-${upper}`)
        if (t.quantity <= 0) problems.push("no quantity")
        const book = bookProblem(t.book.bids, t.book.asks, prevClose)
        if (book !== undefined) problems.push(book)
        // The trade printed at the touch.
        if (t.price !== t.book.bids[0]?.price && t.price !== t.book.asks[0]?.price)
          problems.push("print away from touch")
      }
      expect(problems).toEqual([])
    },
    { fastCheck: { numRuns: 60 } },
  )

  it("builds a full 10-level book away from the limits", () => {
    const book = buildBook(new Prng(7), 72_900, 73_000, 51_100, 94_900)
    expect(book.bids.map((l) => l.price)).toEqual(Array.from({ length: 10 }, (_, i) => 72_900 - 100 * i))
    expect(book.asks.map((l) => l.price)).toEqual(Array.from({ length: 10 }, (_, i) => 73_000 + 100 * i))
  })

  it("is deterministic for a seed", () => {
    const run = (seed: number) => {
      const rng = new Prng(seed)
      let mid = 73_000
      const prices: Array<number> = []
      for (let k = 0; k < 50; k++) {
        const t = stepInstrument(rng, { prevClose: 73_000, mid, sigma: 0.01 })
        mid = t.mid
        prices.push(t.price)
      }
      return prices
    }
    expect(run(42)).toEqual(run(42))
    expect(run(42)).not.toEqual(run(43))
  })

  it("has roughly the configured volatility", () => {
    // 10,000 steps at sigma 0.001 → the latent log mid's std over the run ≈ 0.1.
    const rng = new Prng(1)
    const ends: Array<number> = []
    for (let r = 0; r < 200; r++) {
      let mid = 100_000
      for (let k = 0; k < 400; k++) mid = stepInstrument(rng, { prevClose: 100_000, mid, sigma: 0.001 }).mid
      ends.push(Math.log(mid / 100_000))
    }
    const mean = ends.reduce((a, b) => a + b, 0) / ends.length
    const sd = Math.sqrt(ends.reduce((a, b) => a + (b - mean) ** 2, 0) / ends.length)
    expect(sd).toBeGreaterThan(0.014)
    expect(sd).toBeLessThan(0.026)
  })
})

describe("SimulatorEngine", () => {
  const engineWith = (seed: number, rate = 200) => {
    const universe = shippedUniverse()
    const state = makeMarketState(universe)
    return { universe, state, engine: new SimulatorEngine(universe, state, { seed, rate }) }
  }
  const open = () => true

  it("pays a late call what it owes for the last MAX_LAG_MS; older ticks are skipped and counted", () => {
    const { engine } = engineWith(1, 2_000)
    expect(MAX_LAG_MS).toBe(250)
    expect(engine.ticksDue(0)).toBe(0)
    // On time: 2,000 ticks/s x 25 ms.
    expect(engine.ticksDue(25)).toBe(50)
    // 200 ms late (a long flush pass): everything owed.
    expect(engine.ticksDue(225)).toBe(400)
    expect(engine.skipped).toBe(0)
    // Three seconds late (a process that cannot keep up): 250 ms worth, the rest skipped.
    expect(engine.ticksDue(3_225)).toBe(500)
    expect(engine.skipped).toBe(5_500)
    expect(engine.produced).toBe(950)
  })

  it.prop(
    "keeps every stock on the grid, within limits, with increasing volume and valid books",
    { seed: FastCheck.integer() },
    ({ seed }) => {
      const { state, engine } = engineWith(seed, 5_000)
      const volume = new Map<string, number>()
      const problems: Array<string> = []
      for (let step = 0; step < 40; step++) {
        const all = engine.step(1_000 + step * 25, 125, open)
        // A tick that would breach a VI threshold starts the VI instead of printing (vi.test.ts).
        const events = all.filter((e) => e.type !== "instrument_status")
        expect(events.length + 2 * (all.length - events.length)).toBe(250)
        for (let k = 0; k < events.length; k += 2) {
          const trade = events[k]
          const book = events[k + 1]
          if (
            trade?.type !== "price_update" ||
            book?.type !== "orderbook_update" ||
            trade.code !== book.code
          ) {
            problems.push(`events ${k}, ${k + 1} are not a trade and its book`)
            continue
          }
          const q = state.get(trade.code)
          if (q === undefined) {
            problems.push(`unknown ${trade.code}`)
            continue
          }
          const { lower, upper } = dailyLimits(q.prevClose)
          if (!isOnTickGrid(trade.price)) problems.push(`${trade.code} ${trade.price} off the grid`)
          if (trade.price < lower || trade.price > upper)
            problems.push(`${trade.code} ${trade.price} outside limits`)
          if (trade.volume <= (volume.get(trade.code) ?? 0))
            problems.push(`${trade.code} volume did not grow`)
          volume.set(trade.code, trade.volume)
          const derived = priceChange(q.prevClose, trade.price)
          if (trade.change !== derived.change || trade.change_percent !== derived.change_percent) {
            problems.push(`${trade.code} change fields`)
          }
          if (trade.name !== q.name) problems.push(`${trade.code} name`)
          const bp = bookProblem(book.bids, book.asks, q.prevClose)
          if (bp !== undefined) problems.push(`${book.code} ${bp}`)
          if (book.checksum !== orderbookChecksum(book.bids, book.asks))
            problems.push(`${book.code} checksum`)
          // The book of a tick brackets the price printed just before it.
          if ((book.bids[0]?.price ?? 0) > trade.price || (book.asks[0]?.price ?? Infinity) < trade.price) {
            problems.push(`${book.code} book does not bracket ${trade.price}`)
          }
        }
      }
      expect(problems).toEqual([])
    },
    { fastCheck: { numRuns: 15 } },
  )

  it("is deterministic for a seed", () => {
    const a = engineWith(9).engine
    const b = engineWith(9).engine
    for (let k = 0; k < 20; k++) expect(a.step(k * 25, 5, open)).toEqual(b.step(k * 25, 5, open))
  })

  it("emits FEED_RATE ticks per second of elapsed time, fractions carried", () => {
    const { engine } = engineWith(1, 30)
    let trades = 0
    for (let t = 0; t <= 10_000; t += 25)
      trades += ofType(engine.advance(t, open), "price_update").filter((e) => isStockCode(e.code)).length
    expect(trades).toBe(300)
  })

  it("does not trade stocks of a market that is not open", () => {
    const { engine, universe } = engineWith(3)
    const kospiOnly = (m: string) => m === "KOSPI"
    const events = engine.step(0, 500, kospiOnly)
    const markets = new Set(
      events.map((e) => (e.type === "price_update" ? universe.byCode.get(e.code)?.market : "x")),
    )
    expect([...markets].filter((m) => m !== "x")).toEqual(["KOSPI"])
    expect(engine.step(0, 500, () => false)).toEqual([])
  })

  it("derives index levels from constituents and publishes them at most once per interval", () => {
    const { engine, state } = engineWith(5)
    const initial = engine.initialEvents(0)
    const idx0 = ofType(initial, "price_update").filter((e) => e.code === "KOSPI" || e.code === "KOSDAQ")
    // The opening auction's prices (overnight gaps) already moved the constituents.
    const level = (m: "KOSPI" | "KOSDAQ", prev: number) => indexLevel(prev, state.stocksOf(m))
    expect(idx0.map((e) => [e.code, e.price, e.change])).toEqual([
      ["KOSPI", level("KOSPI", 2600), priceChange(2600, level("KOSPI", 2600)).change],
      ["KOSDAQ", level("KOSDAQ", 850), priceChange(850, level("KOSDAQ", 850)).change],
    ])
    expect(level("KOSPI", 2600)).not.toBe(2600)
    expect(idx0[0]?.name).toBe("KOSPI Composite Index")
    engine.step(10, 2_000, open)
    expect(engine.indexEvents(500, open)).toEqual([]) // within a second of the last one
    const later = engine.indexEvents(1_000, open)
    expect(later.map((e) => (e.type === "price_update" ? e.code : ""))).toEqual(["KOSPI", "KOSDAQ"])
    const kospi = later[0]
    if (kospi?.type !== "price_update") throw new Error("expected an index price")
    expect(kospi.price).toBe(indexLevel(2600, state.stocksOf("KOSPI")))
    expect(kospi.volume).toBe(state.stocksOf("KOSPI").reduce((a, q) => a + q.volume, 0))
    expect(engine.indexEvents(5_000, open)).toEqual([]) // nothing moved since
  })

  it("continues from a price set by another source", () => {
    const { engine, state } = engineWith(11)
    state.recordTrade("005930", 80_000, 0, 0)
    const first = ofType(engine.step(0, 3_000, open), "price_update").find((e) => e.code === "005930")
    expect(first).toBeDefined()
    expect(Math.abs((first?.price ?? 0) - 80_000)).toBeLessThanOrEqual(1_000)
  })
})

describe("SimulatorLive", () => {
  const config = (feed: "simulator" | "none") =>
    AppConfig.layerWith({ feed, feedRate: 400, feedSeed: Option.some(1), marketClock: "always_open" })

  const run = (feed: "simulator" | "none") => {
    const pipeline = makeRecordingPipeline()
    const flusher = FlusherLive.pipe(Layer.provide(GatewayStats.layer))
    const base = Layer.provideMerge(flusher, Layer.mergeAll(marketLayers(), pipeline.layer, config(feed)))
    const layer = SimulatorLive.pipe(Layer.provideMerge(MarketClockLive), Layer.provideMerge(base))
    return { pipeline, layer }
  }

  it.scoped("publishes initial snapshots, then FEED_RATE ticks per second on the clock", () => {
    const { pipeline, layer } = run("simulator")
    return Effect.gen(function* () {
      const stocks = shippedUniverse().instruments.length
      const initial = ofType(pipeline.published, "price_update").length
      expect(initial).toBe(stocks + 2)
      expect(ofType(pipeline.published, "orderbook_update").length).toBe(stocks)
      const before = pipeline.published.length
      yield* TestClock.adjust("2 seconds")
      const events = pipeline.published.slice(before)
      const trades = ofType(events, "price_update").filter((e) => isStockCode(e.code))
      expect(trades.length).toBeGreaterThanOrEqual(790)
      expect(trades.length).toBeLessThanOrEqual(800)
      expect(ofType(events, "orderbook_update").length).toBe(trades.length)
      // An index update per market per second.
      expect(ofType(events, "price_update").filter((e) => e.code === "KOSPI").length).toBe(2)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("stops trading a halted market", () => {
    const { pipeline, layer } = run("simulator")
    return Effect.gen(function* () {
      const clock = yield* MarketClock
      clock.setStatus("KOSDAQ", "halted")
      const before = pipeline.published.length
      yield* TestClock.adjust("1 second")
      const u = shippedUniverse()
      const markets = new Set(
        ofType(pipeline.published.slice(before), "price_update")
          .filter((e) => isStockCode(e.code))
          .map((e) => u.byCode.get(e.code)?.market),
      )
      expect([...markets]).toEqual(["KOSPI"])
    }).pipe(Effect.provide(layer))
  })

  it.scoped("does nothing when FEED=none", () => {
    const { pipeline, layer } = run("none")
    return Effect.gen(function* () {
      yield* TestClock.adjust("2 seconds")
      const kinds = new Set(pipeline.published.map((e: MarketEvent) => e.type))
      expect([...kinds]).toEqual(["market_status"])
    }).pipe(Effect.provide(layer))
  })
})

describe("degenerate limit band", () => {
  it("never crosses the book when the band is a single price", () => {
    const rng = new Prng(2)
    let mid = 3
    for (let k = 0; k < 100; k++) {
      const t = stepInstrument(rng, { prevClose: 3, mid, sigma: 0.3 })
      mid = t.mid
      expect(t.price).toBe(3)
      expect(bookProblem(t.book.bids, t.book.asks, 3)).toBeUndefined()
    }
  })
})
