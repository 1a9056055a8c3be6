/**
 * Latest state per topic in Redis, and the cluster feed that keeps every instance's market state
 * in step (cluster mode). Both hang off `SnapshotStore.putAll`, which the pipeline calls once per
 * group of market events, on the instance where they entered:
 *
 * - Redis: one hash per topic (`prefix + "snap:" + topic`), field = snapshot key, value =
 *   conflation key + "\n" + open body. `getMany` reads it, so a subscribe or restore on any
 *   instance gets the state current in Redis, whichever instance produced it.
 * - A local mirror of the same data, kept from this instance's puts and every other instance's
 *   (through the feed): the answer when Redis cannot be read, and the source for re-seeding a
 *   Redis that lost its data.
 * - The feed: the puts of one event-loop turn go out as one PUBLISH on `prefix + "feed:{market}"`.
 *   Every other instance applies them to its mirror and MarketState and hands them to the
 *   `ClusterFeed` observers (market clock statuses, sector aggregator). So ingest validation on
 *   any instance, and the simulator after a leadership change, see the cluster's latest prices.
 * - Startup: before anything reads MarketState, the snapshots of the whole universe are loaded
 *   from Redis into the mirror and MarketState (a joining instance starts from the cluster's state).
 */
import { Context, Effect, Layer, Option, Queue } from "effect"
import { ClusterFeed, type ClusterFeedShape, type RemoteObserver } from "../feed/ClusterFeed.js"
import { Universe } from "../market/Universe.js"
import { MarketState } from "../pipeline/MarketState.js"
import type { Outgoing } from "../protocol/encode.js"
import { MARKETS, type MarketEvent } from "../protocol/server.js"
import { type Topic, topicOf } from "../protocol/topics.js"
import { SnapshotStore, type SnapshotStoreShape } from "../snapshot/SnapshotStore.js"
import { encodeFeedLine, encodeSnapshotValue, FeedLine, MarketEventBody, SnapshotValue } from "./codec.js"
import { RedisClient } from "./RedisClient.js"

/** Order of a topic's snapshot messages: status before index price, price before book. */
const RANK: Readonly<Record<string, number>> = {
  market_status: 0,
  price_update: 1,
  orderbook_update: 2,
  sector_update: 3,
}
const rankOf = (snapshotKey: string) => RANK[snapshotKey.slice(0, snapshotKey.indexOf("|"))] ?? 9

const sortedValues = (m: ReadonlyMap<string, Outgoing>): ReadonlyArray<Outgoing> =>
  [...m.entries()].sort((a, b) => rankOf(a[0]) - rankOf(b[0])).map(([, msg]) => msg)

/**
 * The mirror's copy of what was read from Redis, when they are the same message (nearly always:
 * the mirror follows every instance's puts): one object, and one snapshot copy of it, for every
 * subscriber, as in embedded mode. Each read's own objects were a copy per subscriber: 360 KB for
 * a client subscribing to 200 stocks, 1.7 GB for 4,800 of them at once.
 */
const sameAs = (read: Outgoing, mirrored: Outgoing | undefined): Outgoing =>
  mirrored !== undefined && mirrored.body === read.body && mirrored.key === read.key ? mirrored : read

/** Remote batches waiting for the consumer; beyond this a stalled consumer drops (and says so). */
const REMOTE_BACKLOG = 10_000
/** Topics per round trip when loading the universe's snapshots. */
const LOAD_CHUNK = 500

export const RedisSnapshotsLive = Layer.scopedContext(
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const state = yield* MarketState
    const universe = yield* Universe
    const { prefix, instanceId } = redis
    const keyOf = (topic: Topic) => `${prefix}snap:${topic}`
    const feedChannel = `${prefix}feed:{market}`

    /** The event an open body was serialized from; one that does not decode is reported and skipped. */
    const eventsOf = (msgs: Iterable<Outgoing>, into: Array<MarketEvent>) => {
      for (const msg of msgs) {
        const event = redis.decode(MarketEventBody, msg.body)
        if (Option.isSome(event)) into.push(event.value)
      }
    }

    const mirror = new Map<Topic, Map<string, Outgoing>>()
    const mirrorPut = (topic: Topic, key: string, msg: Outgoing) => {
      let m = mirror.get(topic)
      if (m === undefined) {
        m = new Map()
        mirror.set(topic, m)
      }
      m.set(key, msg)
    }

    // ---- Redis reads ----
    const readTopics = (topics: ReadonlyArray<Topic>) =>
      redis.exec("HGETALL snapshots", (r) => Promise.all(topics.map((t) => r.hgetall(keyOf(t)))))
    /** Stores what Redis holds for `topics` in the mirror; returns those messages as events. */
    const loadIntoMirror = (topics: ReadonlyArray<Topic>) =>
      Effect.gen(function* () {
        const events: Array<MarketEvent> = []
        for (let i = 0; i < topics.length; i += LOAD_CHUNK) {
          const chunk = topics.slice(i, i + LOAD_CHUNK)
          const hashes = yield* readTopics(chunk)
          chunk.forEach((topic, j) => {
            const entries = Object.entries(hashes[j] ?? {}).sort((a, b) => rankOf(a[0]) - rankOf(b[0]))
            for (const [field, value] of entries) {
              const msg = redis.decode(SnapshotValue, value)
              if (Option.isNone(msg)) continue
              // Kept, and served to every subscriber while Redis holds the same (`getMany`).
              mirrorPut(topic, field, { ...msg.value, shared: true })
              eventsOf([msg.value], events)
            }
          })
        }
        return events
      })
    const universeTopics: ReadonlyArray<Topic> = [
      ...MARKETS.map((m) => topicOf("market", m)),
      ...universe.sectors.map((s) => topicOf("sector", s)),
      ...universe.instruments.map((i) => topicOf("stock", i.code)),
    ]

    // ---- remote events: applied in arrival order by one consumer ----
    const observers = new Set<RemoteObserver>()
    const remote = yield* Queue.dropping<ReadonlyArray<MarketEvent>>(REMOTE_BACKLOG)
    const applyRemote = (events: ReadonlyArray<MarketEvent>) =>
      Effect.gen(function* () {
        state.applyAll(events)
        for (const o of observers) yield* o(events)
      }).pipe(Effect.catchAllCause((cause) => Effect.logError("applying remote market events failed", cause)))
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(remote), applyRemote)))

    const onFeed = (payload: string) => {
      const nl = payload.indexOf("\n")
      if (nl < 0 || payload.slice(0, nl) === instanceId) return
      const events: Array<MarketEvent> = []
      for (const text of payload.slice(nl + 1).split("\n")) {
        const line = redis.decode(FeedLine, text)
        if (Option.isNone(line)) continue
        const { topic, snapshotKey, msg } = line.value
        mirrorPut(topic, snapshotKey, msg)
        eventsOf([msg], events)
      }
      if (events.length > 0 && !Queue.unsafeOffer(remote, events))
        redis.report("feed backlog", "batch dropped")
    }

    // Warm-up first, then follow: anything published after the load arrives through the feed.
    yield* redis.listen(feedChannel, onFeed)
    const loaded = yield* loadIntoMirror(universeTopics).pipe(
      Effect.tap((events) => Effect.sync(() => state.applyAll(events))),
      Effect.catchAll((e) =>
        Effect.as(Effect.logWarning("could not load snapshots from redis", e.reason), []),
      ),
    )
    yield* Effect.logInfo("cluster state loaded").pipe(Effect.annotateLogs({ snapshots: loaded.length }))

    yield* redis.onRecovered(({ dataLost }) =>
      dataLost
        ? // Redis restarted empty: give it back the latest state we know (never over newer data).
          Effect.gen(function* () {
            let fields = 0
            yield* redis.exec("HSETNX snapshots", (r) => {
              const writes: Array<Promise<number>> = []
              for (const [topic, m] of mirror) {
                for (const [key, msg] of m) writes.push(r.hsetnx(keyOf(topic), key, encodeSnapshotValue(msg)))
              }
              fields = writes.length
              return Promise.all(writes)
            })
            yield* Effect.logInfo("snapshots re-seeded").pipe(Effect.annotateLogs({ fields }))
          })
        : // Feed batches may have been missed while we were cut off: catch up from Redis.
          Effect.flatMap(loadIntoMirror(universeTopics), (events) => Queue.offer(remote, events)),
    )

    // ---- the local side ----
    let pending: Array<string> = []
    const flushFeed = () => {
      const lines = pending
      pending = []
      redis.fire("PUBLISH feed", (r) => r.publish(feedChannel, `${instanceId}\n${lines.join("\n")}`))
    }

    const store: SnapshotStoreShape = {
      putAll: (entries) =>
        Effect.sync(() => {
          if (entries.length === 0) return
          for (const { topic, snapshotKey, msg } of entries) mirrorPut(topic, snapshotKey, msg)
          // Written at once, ahead of the group's PUBLISHes (RedisBroker.publishAll, also fireNow).
          redis.fireNow("HSET snapshots", (p) => {
            for (const { topic, snapshotKey, msg } of entries)
              p.hset(keyOf(topic), snapshotKey, encodeSnapshotValue(msg))
          })
          // One feed message per event-loop turn (a simulator group, an ingest request).
          if (pending.length === 0) setImmediate(flushFeed)
          for (const { topic, snapshotKey, msg } of entries)
            pending.push(encodeFeedLine(topic, snapshotKey, msg))
        }),
      getMany: (topics) =>
        readTopics(topics).pipe(
          Effect.map((hashes) =>
            topics.map((topic, i) => {
              const hash = hashes[i] ?? {}
              const entries = Object.entries(hash)
              // Nothing in Redis (e.g. just restarted empty): what this instance last saw.
              if (entries.length === 0) return sortedValues(mirror.get(topic) ?? new Map())
              const mirrored = mirror.get(topic)
              return entries
                .sort((a, b) => rankOf(a[0]) - rankOf(b[0]))
                .flatMap(([field, v]) =>
                  Option.toArray(redis.decode(SnapshotValue, v)).map((m) => sameAs(m, mirrored?.get(field))),
                )
            }),
          ),
          Effect.catchAll((e) =>
            Effect.sync(() => {
              redis.report("reading snapshots (serving local copies)", e.reason)
              return topics.map((t) => sortedValues(mirror.get(t) ?? new Map()))
            }),
          ),
        ),
    }

    const feed: ClusterFeedShape = {
      followRemote: (observer) =>
        Effect.gen(function* () {
          yield* Effect.acquireRelease(
            Effect.sync(() => observers.add(observer)),
            () => Effect.sync(() => observers.delete(observer)),
          )
          const current: Array<MarketEvent> = []
          for (const m of mirror.values()) eventsOf(sortedValues(m), current)
          yield* observer(current)
        }),
    }

    return Context.make(SnapshotStore, store).pipe(Context.add(ClusterFeed, feed))
  }),
)
