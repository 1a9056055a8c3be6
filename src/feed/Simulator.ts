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
 *   sigma scales the stock's own daily sigma (around 2%: lower for KOSPI 200 constituents, higher
 *   on KOSDAQ) to the expected number of ticks of that stock in a 6.5 h session, plus rare
 *   fat-tailed jumps and, for a few small caps a day, a news drift. The latent mid is clamped to
 *   the daily limit band (±30% of the previous close).
 * - The day opens with a single-price auction (one execution per stock, with an overnight gap);
 *   under KRX sessions the closing auction executes once at 15:30 and the trade rate is U-shaped.
 * - A tick whose price would breach a VI threshold (`volatility.ts`) starts a 2-minute VI auction
 *   instead of printing; it ends in one execution at the auction price (`instrument_status`
 *   `vi`, then `trading`). Stocks in a VI, halted by ingest, or of a market that is not open do
 *   not trade.
 * - The book: best bid = the mid rounded down to the grid, best ask = the next grid price above;
 *   then up to 9 more levels per side, one tick apart, never outside the limit band.
 * - The trade prints at the best bid or ask, the ask with probability (mid − bid)/(ask − bid), so
 *   the expected print is the mid (a realistic bid/ask bounce, always on the grid).
 * - Trade size is exponential around a share count worth ~50M KRW; cumulative volume only grows.
 * - Index level = index previous close × the equal-weighted mean of constituents' last/prevClose,
 *   rounded to 2 decimals; index volume = sum of constituent volumes.
 * - If another source (ingest) moved a stock's price, the walk continues from that price.
 *
 * This module runs it as the feed: the loop on the Effect Clock, each iteration after the flush
 * pass in progress, and the Layer. The engine is `simulator/SimulatorEngine.ts`, over the per-stock
 * state of `simulator/stocks.ts`, with the auctions and VIs in `simulator/auctions.ts` and the
 * model's pure functions in `simulatorModel.ts`.
 */
import { Clock, Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { DeliveryPass } from "../lifecycle/DeliveryPass.js"
import { yieldingToIo } from "../lifecycle/EventLoop.js"
import { deliveryLoop } from "../lifecycle/sharedScheduler.js"
import { Universe } from "../market/Universe.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState } from "../pipeline/MarketState.js"
import type { Market } from "../protocol/server.js"
import { FeedLeadership } from "./FeedLeadership.js"
import { MarketClock } from "./MarketClock.js"
import { SimulatorEngine } from "./simulator/SimulatorEngine.js"

/** Skipped trades are logged at most this often. */
const SKIP_REPORT_MS = 10_000

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
    krxSessions: config.marketClock === "krx",
  })
  yield* pipeline.publish(engine.initialEvents(start))
  yield* Effect.logInfo("simulator started").pipe(
    Effect.annotateLogs({ seed, rate: config.feedRate, instruments: universe.instruments.length }),
  )
  const isHalted = (m: Market) => clock.status(m) === "halted"
  let reported = { skipped: 0, at: Number.NEGATIVE_INFINITY }
  const tick = Effect.gen(function* () {
    // A flush pass in progress goes first (DeliveryPass); the trades are then timed after it.
    yield* delivery.idle
    const now = yield* Clock.currentTimeMillis
    const events = engine.advance(now, clock.isOpen, isHalted)
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
  return deliveryLoop(
    Effect.asVoid(Effect.repeat(tick, yieldingToIo(Schedule.fixed(Duration.millis(engine.intervalMs))))),
  )
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
