/**
 * The candle builder as a Layer: follows every trade (this instance's pipeline, and in cluster
 * mode the trades that entered on other instances), and on the feed's leader alone builds bars
 * (`CandleBook`), so a bar is built once cluster-wide. Every CANDLE_UPDATE_INTERVAL_MS the
 * leader closes the bars whose time is up, saves what changed (`CandleStore`: memory or Redis)
 * and publishes it through the MarketPipeline: each closed bar once (`closed: true`, never
 * conflated), then each bar in progress that moved (conflated, per bar, like prices).
 *
 * Leadership (cluster): when gained, the bars in progress are read back from the store (a
 * restarted or new leader continues them); when lost, they are saved and forgotten.
 */
import { Clock, Duration, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ClusterFeed } from "../feed/ClusterFeed.js"
import { FeedLeadership } from "../feed/FeedLeadership.js"
import { deliveryLoop } from "../lifecycle/sharedScheduler.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState } from "../pipeline/MarketState.js"
import type { MarketEvent } from "../protocol/server.js"
import { type Bar, CandleBook, seriesCandle } from "./CandleBook.js"
import { CandleStore } from "./CandleStore.js"

export const CandlesLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const pipeline = yield* MarketPipeline
    const state = yield* MarketState
    const store = yield* CandleStore
    const leadership = yield* FeedLeadership
    const remote = yield* ClusterFeed
    const stats = yield* GatewayStats
    const book = new CandleBook(
      config.marketClock === "krx" ? "krx" : "continuous",
      config.candles.closeGraceMs,
      stats.candles,
    )
    // Volumes start where the market state stands (cluster mode: loaded from Redis).
    for (const q of state.stocks) book.setVolume(q.code, q.volume)
    for (const q of state.indices) book.setVolume(q.code, q.volume)

    // Opened by a trade that built something: an idle builder sleeps until a trade or the next bar end.
    const wake = yield* Effect.makeLatch(false)
    const follow = (events: ReadonlyArray<MarketEvent>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        book.observe(events, now, leadership.isLeader())
        return book.pending ? wake.open : Effect.void
      })
    yield* pipeline.observe(follow)
    yield* remote.followRemote(follow)

    const publish = (closed: ReadonlyArray<Bar>, current: ReadonlyArray<Bar>, now: number) =>
      Effect.gen(function* () {
        if (closed.length === 0 && current.length === 0) return
        yield* store.save(closed.map(seriesCandle), current.map(seriesCandle))
        const events: Array<MarketEvent> = []
        for (const b of closed) events.push(b.update(true, now))
        for (const b of current) events.push(b.update(false, now))
        yield* pipeline.publish(events)
      })
    const pass = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      book.sweep(now)
      const { closed, current } = book.drain()
      yield* publish(closed, current, now)
    })
    // At most one pass per CANDLE_UPDATE_INTERVAL_MS; then none until there is something to do.
    const waitForWork = Effect.gen(function* () {
      yield* Effect.sleep(Duration.millis(config.candles.updateIntervalMs))
      if (book.pending) return
      yield* wake.close
      const next = book.nextCloseAt()
      if (next === undefined) return yield* wake.await
      const now = yield* Clock.currentTimeMillis
      yield* Effect.raceFirst(wake.await, Effect.sleep(Duration.millis(Math.max(0, next - now))))
    })
    const handOver = Effect.suspend(() => {
      // Bars in progress that moved since the last pass are saved for the next leader.
      const { current } = book.drain()
      book.clear()
      return store.save([], current.map(seriesCandle))
    })

    yield* leadership.lead(
      Effect.gen(function* () {
        book.clear()
        const saved = yield* store
          .inProgress()
          .pipe(
            Effect.catchAll((e) =>
              Effect.as(Effect.logWarning("bars in progress not restored", e.reason), []),
            ),
          )
        book.restore(saved)
        return deliveryLoop(Effect.forever(Effect.zipRight(waitForWork, pass))).pipe(
          Effect.onInterrupt(() => handOver),
        )
      }),
    )
  }),
)
