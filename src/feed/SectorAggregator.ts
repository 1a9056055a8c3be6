/**
 * Sector summaries (docs/protocol.md: `sector_update` at most once per second per sector). Observes the
 * MarketPipeline; once a second, every sector with a member whose price was published since the
 * last pass gets one `sector_update`, computed from MarketState and published through the pipeline.
 * At startup every sector is published once, so each has a snapshot before the first trade.
 *
 * Definitions (per sector, over all its members):
 * - change_percent: equal-weighted mean of the members' percent change vs previous close
 *   (unrounded), rounded to 2 decimals. Equal weights because the universe carries no share
 *   counts for cap weighting, and it keeps a sector from being one large stock.
 * - advancers / decliners / unchanged: members with last above / below / equal to previous close.
 * - volume: sum of the members' cumulative session volume (shares).
 * - top_movers: up to 5 members that moved, by absolute change_percent descending (ties: code
 *   ascending), each `{code, change_percent}` with change_percent rounded to 2 decimals.
 *   Unchanged members are not movers, so the list can be shorter than 5 or empty.
 */
import { Clock, Duration, Effect, Layer } from "effect"
import { percentChange, round2 } from "../market/pricing.js"
import { Universe } from "../market/Universe.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState } from "../pipeline/MarketState.js"
import { nowIso } from "../protocol/encode.js"
import type { MarketEvent, SectorUpdate } from "../protocol/server.js"
import { ClusterFeed } from "./ClusterFeed.js"
import { FeedLeadership } from "./FeedLeadership.js"

export const SECTOR_INTERVAL = Duration.seconds(1)
export const TOP_MOVERS = 5

export interface SectorMember {
  readonly code: string
  readonly prevClose: number
  readonly last: number
  readonly volume: number
}

/** The sector_update of one sector from its members' state. Pure. */
export const computeSectorUpdate = (
  sector: string,
  members: ReadonlyArray<SectorMember>,
  timestamp: string,
): SectorUpdate => {
  let sum = 0
  let advancers = 0
  let decliners = 0
  let unchanged = 0
  let volume = 0
  const movers: Array<{ readonly code: string; readonly pct: number }> = []
  for (const m of members) {
    const pct = percentChange(m.prevClose, m.last)
    sum += pct
    volume += m.volume
    if (m.last > m.prevClose) advancers++
    else if (m.last < m.prevClose) decliners++
    else unchanged++
    if (m.last !== m.prevClose) movers.push({ code: m.code, pct })
  }
  movers.sort((a, b) => Math.abs(b.pct) - Math.abs(a.pct) || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
  return {
    type: "sector_update",
    sector,
    change_percent: members.length === 0 ? 0 : round2(sum / members.length),
    advancers,
    decliners,
    unchanged,
    volume,
    top_movers: movers.slice(0, TOP_MOVERS).map((m) => ({ code: m.code, change_percent: round2(m.pct) })),
    timestamp,
  }
}

export const SectorAggregatorLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const universe = yield* Universe
    const state = yield* MarketState
    const pipeline = yield* MarketPipeline
    const leadership = yield* FeedLeadership
    const remote = yield* ClusterFeed
    // Every sector starts dirty: the first pass publishes them all (snapshots exist from startup).
    const dirty = new Set<string>(universe.sectors)
    const markDirty = (events: ReadonlyArray<MarketEvent>) =>
      Effect.sync(() => {
        for (const e of events) {
          if (e.type !== "price_update") continue
          const sector = universe.byCode.get(e.code)?.sector
          if (sector !== undefined) dirty.add(sector)
        }
      })
    yield* pipeline.observe(markDirty)
    // Cluster mode: prices that entered on other instances move sectors too.
    yield* remote.followRemote(markDirty)
    const flush = Effect.gen(function* () {
      if (dirty.size === 0) return
      const timestamp = nowIso(yield* Clock.currentTimeMillis)
      const updates: Array<SectorUpdate> = []
      for (const sector of dirty) {
        const members: Array<SectorMember> = []
        for (const i of universe.membersOf(sector)) {
          const q = state.get(i.code)
          if (q !== undefined) members.push(q)
        }
        updates.push(computeSectorUpdate(sector, members, timestamp))
      }
      dirty.clear()
      yield* pipeline.publish(updates)
    })
    // sleep-then-flush: consecutive passes are at least a second apart, so each sector is too.
    // Cluster mode: only the feed leader publishes sector updates.
    yield* leadership.lead(
      Effect.as(flush, Effect.forever(Effect.zipRight(Effect.sleep(SECTOR_INTERVAL), flush))),
    )
  }),
)
