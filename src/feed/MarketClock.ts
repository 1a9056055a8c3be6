/**
 * Market hours. `MARKET_CLOCK=always_open`: both markets open from start (demos, tests).
 * `MARKET_CLOCK=krx`: KRX regular sessions in Asia/Seoul (UTC+9 all year; Korea has no DST):
 * pre_open 08:30-09:00, open 09:00-15:30, closed otherwise and all Saturday and Sunday.
 * Exchange holidays are not modelled: a holiday looks like a normal weekday.
 *
 * Publishes `market_status` through the MarketPipeline at startup (so every market has a status
 * snapshot) and at each transition, and answers "is this market open?" synchronously for the
 * simulator's hot path.
 *
 * Statuses from elsewhere (POST /v1/ingest, e.g. `halted`): the clock observes every
 * `market_status` that goes through the pipeline, and the latest one wins. So an ingested status
 * overrides the clock until the clock's next transition, which publishes the scheduled status
 * again. With `always_open` there are no transitions: an ingested status holds until the next
 * ingested one. We chose this over a sticky halt because a halt that outlives the session (the
 * market closes at 15:30 anyway) would leave the next day's open halted with nobody to lift it.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState } from "../pipeline/MarketState.js"
import { nowIso } from "../protocol/encode.js"
import {
  MARKETS,
  type Market,
  type MarketEvent,
  type MarketStatus,
  type MarketStatusValue,
} from "../protocol/server.js"
import { ClusterFeed } from "./ClusterFeed.js"
import { FeedLeadership } from "./FeedLeadership.js"

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
/** Asia/Seoul offset from UTC (no daylight saving time). */
export const KST_OFFSET_MS = 9 * HOUR
const PRE_OPEN = 8 * HOUR + 30 * MINUTE
const OPEN = 9 * HOUR
const CLOSE = 15 * HOUR + 30 * MINUTE

export interface KrxPhase {
  readonly status: Exclude<MarketStatusValue, "halted">
  /** Epoch millis of the next scheduled status change. */
  readonly nextTransition: number
}

const isWeekday = (localDayStart: number): boolean => {
  const dow = new Date(localDayStart).getUTCDay()
  return dow >= 1 && dow <= 5
}

/** The KRX session phase at `epochMs`, and when it next changes. Pure; DST-free arithmetic. */
export const krxPhaseAt = (epochMs: number): KrxPhase => {
  // Work in "Seoul wall clock as if it were UTC" millis, then convert the answer back.
  const local = epochMs + KST_OFFSET_MS
  const dayStart = Math.floor(local / DAY) * DAY
  const inDay = local - dayStart
  const nextTradingDayPreOpen = () => {
    let d = dayStart + DAY
    while (!isWeekday(d)) d += DAY
    return d + PRE_OPEN - KST_OFFSET_MS
  }
  if (!isWeekday(dayStart)) return { status: "closed", nextTransition: nextTradingDayPreOpen() }
  if (inDay < PRE_OPEN) return { status: "closed", nextTransition: dayStart + PRE_OPEN - KST_OFFSET_MS }
  if (inDay < OPEN) return { status: "pre_open", nextTransition: dayStart + OPEN - KST_OFFSET_MS }
  if (inDay < CLOSE) return { status: "open", nextTransition: dayStart + CLOSE - KST_OFFSET_MS }
  return { status: "closed", nextTransition: nextTradingDayPreOpen() }
}

const CLOSING_AUCTION = 15 * HOUR + 20 * MINUTE

/**
 * Where a trading day stands for the simulator's order matching under `MARKET_CLOCK=krx`
 * (market_status stays `open` through the closing auction, as the original statuses have no
 * value for it): `opening_auction` 08:30-09:00 (orders collected, one execution at 09:00),
 * `continuous` 09:00-15:20, `closing_auction` 15:20-15:30 (one execution at 15:30), `closed`.
 */
export type KrxSession = "closed" | "opening_auction" | "continuous" | "closing_auction"

export interface KrxSessionPoint {
  readonly session: KrxSession
  /** Start of this trading day's continuous session (09:00 Seoul), epoch millis. */
  readonly dayOpen: number
  /** Fraction of the continuous session elapsed, in [0, 1] (0 before it, 1 after it). */
  readonly progress: number
}

/** Pure: the session at `epochMs` (weekends closed, holidays not modelled, like `krxPhaseAt`). */
export const krxSessionAt = (epochMs: number): KrxSessionPoint => {
  const local = epochMs + KST_OFFSET_MS
  const dayStart = Math.floor(local / DAY) * DAY
  const inDay = local - dayStart
  const dayOpen = dayStart + OPEN - KST_OFFSET_MS
  const progress = Math.min(1, Math.max(0, (inDay - OPEN) / (CLOSING_AUCTION - OPEN)))
  const session: KrxSession = !isWeekday(dayStart)
    ? "closed"
    : inDay < PRE_OPEN
      ? "closed"
      : inDay < OPEN
        ? "opening_auction"
        : inDay < CLOSING_AUCTION
          ? "continuous"
          : inDay < CLOSE
            ? "closing_auction"
            : "closed"
  return { session, dayOpen, progress }
}

export interface MarketClockShape {
  /** Current effective status of a market (the clock's, or a later ingested one). */
  readonly status: (market: Market) => MarketStatusValue
  /** Whether trades may happen now (status `open`). */
  readonly isOpen: (market: Market) => boolean
  /**
   * Records a status that came from elsewhere. Publishing a `market_status` through the pipeline
   * already does this (the clock observes it); this is for callers that bypass the pipeline.
   */
  readonly setStatus: (market: Market, status: MarketStatusValue) => void
}

export class MarketClock extends Context.Tag("quotecast/MarketClock")<MarketClock, MarketClockShape>() {}

const statusEvent = (market: Market, status: MarketStatusValue, at: number): MarketStatus => ({
  type: "market_status",
  market,
  status,
  timestamp: nowIso(at),
})

export const MarketClockLive = Layer.scoped(
  MarketClock,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const pipeline = yield* MarketPipeline
    const state = yield* MarketState
    const start = yield* Clock.currentTimeMillis
    const initial: MarketStatusValue = config.marketClock === "krx" ? krxPhaseAt(start).status : "open"
    const current = new Map<Market, MarketStatusValue>(MARKETS.map((m) => [m, initial]))
    const setStatus = (market: Market, status: MarketStatusValue) => {
      current.set(market, status)
    }
    const follow = (events: ReadonlyArray<MarketEvent>) =>
      Effect.sync(() => {
        for (const e of events) if (e.type === "market_status") setStatus(e.market, e.status)
      })
    yield* pipeline.observe(follow)
    // Cluster mode: the cluster's current statuses, then those that entered on other instances.
    const remote = yield* ClusterFeed
    yield* remote.followRemote(follow)
    // Only the feed leader announces statuses: embedded at once (the initial ones); in a cluster
    // whenever an instance takes the lead (the current ones, so an ingested halt stays).
    const leadership = yield* FeedLeadership
    yield* leadership.lead(
      Effect.as(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          pipeline.publish(MARKETS.map((m) => statusEvent(m, current.get(m) ?? initial, now))),
        ),
        Effect.never,
      ),
    )

    if (config.marketClock === "krx") {
      let scheduled = krxPhaseAt(start).status
      const waitForTransition = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const phase = krxPhaseAt(now)
        if (phase.status === scheduled) {
          yield* Effect.sleep(Duration.millis(Math.max(1, phase.nextTransition - now)))
          return
        }
        // A new trading day starts at pre_open: yesterday's last becomes the previous close.
        if (phase.status === "pre_open" || (phase.status === "open" && scheduled === "closed")) {
          for (const m of MARKETS) state.rollover(m)
        }
        scheduled = phase.status
        if (leadership.isLeader())
          yield* pipeline.publish(MARKETS.map((m) => statusEvent(m, phase.status, now)))
        else for (const m of MARKETS) setStatus(m, phase.status)
      })
      yield* Effect.forkScoped(Effect.forever(waitForTransition))
    }

    return {
      status: (market) => current.get(market) ?? "closed",
      isOpen: (market) => current.get(market) === "open",
      setStatus,
    }
  }),
)
