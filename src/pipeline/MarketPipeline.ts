/**
 * The one path every market event takes, whatever its source (simulator, ingest, sector
 * aggregator): serialize once -> remember as snapshot -> publish on its topic -> observers
 * (alerts, sector aggregation, stats). Nothing else publishes market data.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { Broker } from "../broker/Broker.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { candleKey, conflationKey, type Outgoing, openBody } from "../protocol/encode.js"
import type { MarketEvent } from "../protocol/server.js"
import { type Topic, topicOfEvent } from "../protocol/topics.js"
import { type SnapshotEntry, SnapshotStore } from "../snapshot/SnapshotStore.js"

export type Observer = (events: ReadonlyArray<MarketEvent>) => Effect.Effect<void>

export interface MarketPipelineShape {
  readonly publish: (events: ReadonlyArray<MarketEvent>) => Effect.Effect<void>
  /** Sees every published event after it went out, for the lifetime of the current scope. */
  readonly observe: (observer: Observer) => Effect.Effect<void, never, Scope.Scope>
}

export class MarketPipeline extends Context.Tag("quotecast/MarketPipeline")<
  MarketPipeline,
  MarketPipelineShape
>() {}

/**
 * Conflation key (undefined: never conflated) and snapshot key of an event (undefined: not kept
 * as a snapshot; candles have their own history, `candles/CandleStore.ts`).
 */
export const keysOf = (
  e: MarketEvent,
): { readonly conflate: string | undefined; readonly snapshot: string | undefined } => {
  switch (e.type) {
    case "price_update":
    case "orderbook_update": {
      const k = conflationKey(e.type, e.code)
      return { conflate: k, snapshot: k }
    }
    case "sector_update": {
      const k = conflationKey(e.type, e.sector)
      return { conflate: k, snapshot: k }
    }
    case "market_status":
      return { conflate: undefined, snapshot: conflationKey(e.type, e.market) }
    // A status change is never conflated away (a VI's start and end both reach the client).
    case "instrument_status":
      return { conflate: undefined, snapshot: conflationKey(e.type, e.code) }
    case "candle_update":
      return {
        conflate: e.closed ? undefined : candleKey(`${e.code}:${e.interval}`, Date.parse(e.time)),
        snapshot: undefined,
      }
  }
}

export const encodeEvent = (
  e: MarketEvent,
): { readonly topic: Topic; readonly snapshotKey: string | undefined; readonly msg: Outgoing } => {
  const keys = keysOf(e)
  return {
    topic: topicOfEvent(e),
    snapshotKey: keys.snapshot,
    // One object for every subscriber and for the snapshot store.
    msg: { key: keys.conflate, body: openBody(e), at: Date.parse(e.timestamp), shared: true },
  }
}

const isSnapshot = (e: ReturnType<typeof encodeEvent>): e is SnapshotEntry => e.snapshotKey !== undefined

export const MarketPipelineLive = Layer.effect(
  MarketPipeline,
  Effect.gen(function* () {
    const broker = yield* Broker
    const snapshots = yield* SnapshotStore
    const stats = yield* GatewayStats
    const observers = new Set<Observer>()
    return {
      publish: (events) =>
        Effect.gen(function* () {
          const encoded = events.map(encodeEvent)
          // Snapshots before messages (in cluster mode, HSETs before PUBLISHes on the wire): an
          // instance that subscribes after an event went out reads that event's state or a newer one.
          yield* snapshots.putAll(encoded.filter(isSnapshot))
          yield* broker.publishAll(encoded)
          stats.eventsPublished += events.length
          for (const o of observers) yield* o(events)
        }),
      observe: (observer) =>
        Effect.acquireRelease(
          Effect.sync(() => observers.add(observer)),
          () => Effect.sync(() => observers.delete(observer)),
        ).pipe(Effect.asVoid),
    }
  }),
)
