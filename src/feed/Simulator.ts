/**
 * The built-in market simulator (FEED=simulator): a seeded random walk per instrument on the KRX
 * tick grid, a 10-level order book around each trade, and KOSPI/KOSDAQ index levels derived from
 * their constituents. Everything goes out through MarketPipeline.publish.
 *
 * Rate: FEED_RATE counts trade ticks per second over the whole universe. One trade tick is one
 * `price_update` plus one `orderbook_update` for the same stock (only the `price_update` with
 * FEED_BOOKS=off), so the pipeline carries about 2 × FEED_RATE stock events per second, plus index
 * `price_update`s (each open market at most once per `indexIntervalMs`). Ticks are emitted in groups every `intervalMs` on the Effect Clock, so
 * large rates cost one publish per group and TestClock drives the whole thing in tests.
 *
 * Model:
 * - Each stock has a latent continuous mid price doing a log-normal random walk whose per-tick
 *   sigma scales a daily sigma (2%) to the expected number of ticks of that stock in a 6.5 h
 *   session. The latent mid is clamped to the daily limit band (±30% of the previous close).
 * - The book: best bid = the mid rounded down to the grid, best ask = the next grid price above;
 *   then up to 9 more levels per side, one tick apart, never outside the limit band.
 * - The trade prints at the best bid or ask, the ask with probability (mid − bid)/(ask − bid), so
 *   the expected print is the mid (a realistic bid/ask bounce, always on the grid).
 * - Trade size is exponential around a share count worth ~50M KRW; cumulative volume only grows.
 * - Index level = index previous close × the equal-weighted mean of constituents' last/prevClose,
 *   rounded to 2 decimals; index volume = sum of constituent volumes.
 * - Only markets whose MarketClock status is `open` trade; nothing ticks in pre_open, closed or
 *   halted markets.
 * - If another source (ingest) moved a stock's price, the walk continues from that price.
 */
import { Clock, Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { DeliveryPass } from "../lifecycle/DeliveryPass.js"
import { yieldingToIo } from "../lifecycle/EventLoop.js"
import { orderbookChecksum } from "../market/checksum.js"
import { Prng } from "../market/prng.js"
import { dailyLimits } from "../market/tickSize.js"
import { Universe, type UniverseShape } from "../market/Universe.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState, type MarketStateShape, type QuoteView } from "../pipeline/MarketState.js"
import { nowIso } from "../protocol/encode.js"
import type { Market, MarketEvent } from "../protocol/server.js"
import { FeedLeadership } from "./FeedLeadership.js"
import { MarketClock } from "./MarketClock.js"
import {
  buildBook,
  indexLevel,
  orderbookUpdateOf,
  priceUpdateOf,
  quoteAround,
  SESSION_SECONDS,
  stepInstrument,
} from "./simulatorModel.js"

export interface SimulatorOptions {
  readonly seed: number
  /** Trade ticks per second over the whole universe (FEED_RATE). */
  readonly rate: number
  /** Group interval in ms. */
  readonly intervalMs?: number
  /** Minimum ms between two index updates of a market. */
  readonly indexIntervalMs?: number
  /** Daily volatility (standard deviation of the daily log return). */
  readonly dailySigma?: number
  /**
   * Whether a trade tick also emits an `orderbook_update` (FEED_BOOKS, default true). Off, a tick
   * is exactly one message per subscriber, which is what the benchmark's baselines are fed. The
   * book is still computed (and recorded in MarketState), so the PRNG sequence does not change.
   */
  readonly books?: boolean
  /**
   * Only these stocks trade (benchmarks: the same N codes in every server). Unknown codes are
   * ignored; undefined means the whole universe.
   */
  readonly codes?: ReadonlyArray<string>
}

/** How late a trade tick may come and still be produced (see `ticksDue`). */
export const MAX_LAG_MS = 250
/** Skipped trades are logged at most this often. */
const SKIP_REPORT_MS = 10_000

/**
 * The simulator's state machine over MarketState. Deterministic for a given seed, universe and
 * sequence of calls; `advance` is what the live loop calls every interval.
 */
export class SimulatorEngine {
  readonly intervalMs: number
  readonly indexIntervalMs: number
  readonly sigma: number
  readonly books: boolean
  private readonly rng: Prng
  private readonly quotes: ReadonlyArray<QuoteView>
  private readonly mids: Float64Array
  /** Last price this engine printed per stock, to notice prices set by other sources. */
  private readonly printed: Float64Array
  private readonly pools: ReadonlyMap<string, ReadonlyArray<number>>
  private readonly dirtyIndex = new Set<Market>()
  private readonly lastIndexAt = new Map<Market, number>()
  private carry = 0
  /** Most ticks owed before the rest is skipped (`ticksDue`): MAX_LAG_MS worth. */
  private readonly maxBacklog: number
  /** Ticks produced so far. */
  produced = 0
  /** Ticks skipped because calls came late: what an overloaded process did not simulate. */
  skipped = 0
  private lastAdvance: number | undefined

  constructor(
    universe: UniverseShape,
    private readonly state: MarketStateShape,
    readonly options: SimulatorOptions,
  ) {
    this.intervalMs = options.intervalMs ?? 25
    this.maxBacklog = Math.max(1, (options.rate * MAX_LAG_MS) / 1000)
    this.indexIntervalMs = options.indexIntervalMs ?? 1000
    this.books = options.books ?? true
    this.rng = new Prng(options.seed)
    this.quotes = universe.instruments.map((i) => {
      const q = state.get(i.code)
      if (q === undefined) throw new Error(`MarketState has no quote for ${i.code}`)
      return q
    })
    const n = Math.max(1, this.quotes.length)
    // Expected ticks of one stock in a session: rate / n per second over SESSION_SECONDS.
    const ticksPerSession = Math.max(1, (options.rate / n) * SESSION_SECONDS)
    this.sigma = (options.dailySigma ?? 0.02) / Math.sqrt(ticksPerSession)
    this.mids = Float64Array.from(this.quotes, (q) => q.last)
    this.printed = Float64Array.from(this.quotes, (q) => q.last)
    const all: Array<number> = []
    const kospi: Array<number> = []
    const kosdaq: Array<number> = []
    const only = options.codes === undefined ? undefined : new Set(options.codes)
    this.quotes.forEach((q, i) => {
      if (only !== undefined && !only.has(q.code)) return
      all.push(i)
      ;(q.market === "KOSPI" ? kospi : kosdaq).push(i)
    })
    this.pools = new Map([
      ["KOSPI,KOSDAQ", all],
      ["KOSPI", kospi],
      ["KOSDAQ", kosdaq],
      ["", []],
    ])
  }

  /** A price_update (at the current last price) and a fresh book for every stock, then both indices. */
  initialEvents(now: number): Array<MarketEvent> {
    const out: Array<MarketEvent> = []
    const timestamp = nowIso(now)
    for (const q of this.quotes) {
      const { lower, upper } = dailyLimits(q.prevClose)
      const { bid, ask } = quoteAround(q.last, lower, upper)
      const book = buildBook(this.rng, bid, ask, lower, upper)
      const checksum = orderbookChecksum(book.bids, book.asks)
      this.state.recordBook(q.code, book.bids, book.asks, checksum)
      // The current price counts as a price of the day (open/high/low include it).
      this.state.recordTrade(q.code, q.last, q.volume, now)
      out.push(
        priceUpdateOf(q, q.last, q.volume, timestamp),
        orderbookUpdateOf(q.code, book, timestamp, checksum),
      )
    }
    for (const idx of this.state.indices) {
      this.dirtyIndex.add(idx.market)
      this.lastIndexAt.delete(idx.market)
    }
    out.push(...this.indexEvents(now, () => true))
    return out
  }

  /** `count` trade ticks spread uniformly over the stocks of open markets. */
  step(now: number, count: number, isOpen: (m: Market) => boolean): Array<MarketEvent> {
    const key = [isOpen("KOSPI") ? "KOSPI" : "", isOpen("KOSDAQ") ? "KOSDAQ" : ""].filter((s) => s).join(",")
    const pool = this.pools.get(key) ?? []
    const out: Array<MarketEvent> = []
    if (pool.length === 0 || count <= 0) return out
    const timestamp = nowIso(now)
    for (let k = 0; k < count; k++) {
      const i = pool[this.rng.int(pool.length)] as number
      const q = this.quotes[i] as QuoteView
      // Another source moved the price since our last print: continue the walk from there.
      if (q.last !== this.printed[i]) this.mids[i] = q.last
      const t = stepInstrument(this.rng, {
        prevClose: q.prevClose,
        mid: this.mids[i] as number,
        sigma: this.sigma,
      })
      this.mids[i] = t.mid
      this.printed[i] = t.price
      const volume = q.volume + t.quantity
      this.state.recordTrade(q.code, t.price, volume, now)
      const checksum = orderbookChecksum(t.book.bids, t.book.asks)
      this.state.recordBook(q.code, t.book.bids, t.book.asks, checksum)
      out.push(priceUpdateOf(q, t.price, volume, timestamp))
      if (this.books) out.push(orderbookUpdateOf(q.code, t.book, timestamp, checksum))
      this.dirtyIndex.add(q.market)
    }
    return out
  }

  /** Index updates for markets that moved, at most once per indexIntervalMs each. */
  indexEvents(now: number, isOpen: (m: Market) => boolean): Array<MarketEvent> {
    const out: Array<MarketEvent> = []
    for (const idx of this.state.indices) {
      const m = idx.market
      if (!this.dirtyIndex.has(m) || !isOpen(m)) continue
      const last = this.lastIndexAt.get(m)
      if (last !== undefined && now - last < this.indexIntervalMs) continue
      const members = this.state.stocksOf(m)
      const level = indexLevel(idx.prevClose, members)
      let volume = 0
      for (const s of members) volume += s.volume
      this.state.recordTrade(idx.code, level, volume, now)
      out.push(priceUpdateOf(idx, level, volume, nowIso(now)))
      this.dirtyIndex.delete(m)
      this.lastIndexAt.set(m, now)
    }
    return out
  }

  /**
   * Trade ticks owed for the time since the previous call (fractional remainder carried). A late
   * call gets what it owes for at most the last MAX_LAG_MS; older ticks are skipped and counted.
   * Late calls are normal at 10,000 connections (a flush pass takes a few hundred ms, and the
   * feed's timer waits for it), so the window covers that. Beyond it the process cannot keep up,
   * and bunching more would make it later still: a second's trades at 2,000 ticks/s over 10,000
   * subscribers is two million deliveries in one go, which blocked the event loop for over a
   * second, made the next call as late, and timed out every heartbeat (benchmark scenario E).
   * Real feeds enter through ingest, where TCP paces the publisher instead.
   */
  ticksDue(now: number): number {
    const elapsed = this.lastAdvance === undefined ? 0 : Math.max(0, now - this.lastAdvance)
    this.lastAdvance = now
    const owed = this.carry + (this.options.rate * elapsed) / 1000
    this.skipped += Math.max(0, owed - this.maxBacklog)
    const due = Math.min(owed, this.maxBacklog)
    const n = Math.floor(due)
    this.produced += n
    this.carry = due - n
    return n
  }

  /** One loop iteration: the ticks owed since the last call, then any index updates due. */
  advance(now: number, isOpen: (m: Market) => boolean): Array<MarketEvent> {
    const out = this.step(now, this.ticksDue(now), isOpen)
    const idx = this.indexEvents(now, isOpen)
    for (const e of idx) out.push(e)
    return out
  }
}

/**
 * Builds the engine over the live services and publishes the initial prices and books (so every
 * stock and index has a snapshot before any trade); returns the loop, which runs until interrupted.
 */
export const startSimulator: Effect.Effect<
  Effect.Effect<void>,
  never,
  AppConfig | Universe | MarketState | MarketClock | MarketPipeline
> = Effect.gen(function* () {
  const config = yield* AppConfig
  const universe = yield* Universe
  const state = yield* MarketState
  const clock = yield* MarketClock
  const pipeline = yield* MarketPipeline
  const delivery = yield* DeliveryPass
  const start = yield* Clock.currentTimeMillis
  const seed = Option.getOrElse(config.feedSeed, () => start % 2_147_483_647)
  const engine = new SimulatorEngine(universe, state, {
    seed,
    rate: config.feedRate,
    books: config.feedBooks,
  })
  yield* pipeline.publish(engine.initialEvents(start))
  yield* Effect.logInfo("simulator started").pipe(
    Effect.annotateLogs({ seed, rate: config.feedRate, instruments: universe.instruments.length }),
  )
  let reported = { skipped: 0, at: Number.NEGATIVE_INFINITY }
  const tick = Effect.gen(function* () {
    // A flush pass in progress goes first (DeliveryPass); the trades are then timed after it.
    yield* delivery.idle
    const now = yield* Clock.currentTimeMillis
    const events = engine.advance(now, clock.isOpen)
    if (events.length > 0) yield* pipeline.publish(events)
    if (engine.skipped > reported.skipped && now - reported.at >= SKIP_REPORT_MS) {
      yield* Effect.logWarning("simulator running late: trades skipped").pipe(
        Effect.annotateLogs({ skipped: Math.round(engine.skipped - reported.skipped) }),
      )
      reported = { skipped: engine.skipped, at: now }
    }
  }).pipe(
    // A bug in one iteration must not stop the feed for the rest of the process's life.
    Effect.catchAllDefect((defect) => Effect.logError("simulator tick failed", defect)),
  )
  return Effect.asVoid(Effect.repeat(tick, yieldingToIo(Schedule.fixed(Duration.millis(engine.intervalMs)))))
})

/** Runs the simulator for the lifetime of the layer when FEED=simulator; a no-op otherwise. */
export const SimulatorLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.feed !== "simulator") return
    // Cluster mode: only the feed leader simulates, restarting from the shared state on takeover.
    const leadership = yield* FeedLeadership
    yield* leadership.lead(startSimulator)
  }),
)
