/**
 * The Broker over Redis Pub/Sub (cluster mode). Local fan-out is the same TopicHub as embedded
 * mode; Redis carries messages between instances:
 *
 * - Channel = REDIS_PREFIX + topic (`quotecast:stock:{005930}`). The topic's `{hash tag}` is what
 *   Redis Cluster's sharded pub/sub hashes, so moving to SPUBLISH/SSUBSCRIBE is a change here only.
 * - An instance SUBSCRIBEs a topic's channel when its first local subscriber arrives and
 *   UNSUBSCRIBEs when the last one leaves (TopicHub's first/last transitions, synchronous, so the
 *   commands of one channel reach Redis in order). A new subscriber waits (bounded) for the
 *   SUBSCRIBE confirmation, so the snapshot it reads next cannot miss an event published meanwhile.
 * - Market data: publish PUBLISHes once (written at once, not auto-pipelined), then delivers to
 *   local subscribers. User topics (alerts): local delivery first, then the durable publish
 *   script (auto-pipelined). Every instance skips its own messages. So local delivery never
 *   waits for a Redis reply and goes on during an outage.
 * - Wire payload: `origin \n conflation key \n replay id \n open body`. The body is the pipeline's
 *   serialized text; a receiving instance builds one Outgoing from it and hands that same object
 *   to all its local sinks (one serialization per event cluster-wide, one parse of the header per
 *   instance).
 * - User topics (alerts) are rare and must not be lost: they are PUBLISHed by a Lua script that
 *   also appends them, with a cluster-wide id, to a capped list. After its connections recover,
 *   an instance replays the entries for its local users that it did not receive. A publish that
 *   failed is kept (UNSENT_USER_MESSAGES_MAX) and sent again every second until it goes through.
 * - That id is `epoch:counter`. The counter lives in Redis and restarts at 1 when Redis comes back
 *   empty; the epoch key (RedisClient's) is then rewritten by the first writer with a fresh value,
 *   so ids of the new run never equal ids remembered from the old one (which would be dropped as
 *   duplicates: issue 12).
 */
import { randomUUID } from "node:crypto"
import { Clock, Effect, Layer, Option } from "effect"
import type { Redis } from "ioredis"
import { Broker, type BrokerShape, type Published } from "../broker/Broker.js"
import { TopicHub } from "../broker/TopicHub.js"
import { AppConfig } from "../config/AppConfig.js"
import { GatewayStats, GatewayStatsImpl } from "../metrics/GatewayStats.js"
import type { Outgoing } from "../protocol/encode.js"
import { isUserTopic, type Topic } from "../protocol/topics.js"
import { encodeWire, RecentEntry, Wire } from "./codec.js"
import { epochKeyOf, RedisClient, type RedisClientShape, type RedisCommandError } from "./RedisClient.js"
import { luaScript } from "./RedisScript.js"

export { decodeWire, encodeWire, type WireMessage } from "./codec.js"

/** The capped list of recent user-topic messages: `id \t channel \t publish time \t wire payload`. */
export const recentKeyOf = (prefix: string) => `${prefix}user-messages:recent`

/**
 * The open bodies of the messages on user topic `topic` published at or after `since` (epoch
 * ms) that Redis still keeps, oldest first: what a session whose instance crashed missed.
 */
export const userMessagesSince = (
  redis: RedisClientShape,
  topic: Topic,
  since: number,
): Effect.Effect<ReadonlyArray<string>, RedisCommandError> =>
  Effect.map(
    redis.exec("LRANGE recent", (r) => r.lrange(recentKeyOf(redis.prefix), 0, -1)),
    (entries) => {
      const channel = `${redis.prefix}${topic}`
      const bodies: Array<string> = []
      // LPUSH keeps the newest first.
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = Option.getOrUndefined(redis.decode(RecentEntry, entries[i]))
        if (entry === undefined || entry.channel !== channel || entry.at < since) continue
        const wire = redis.decode(Wire, entry.payload)
        if (Option.isSome(wire)) bodies.push(wire.value.msg.body)
      }
      return bodies
    },
  )

/** How often user messages whose durable publish failed are sent again, while any wait. */
const RESEND_EVERY = "1 second"
/** Unsent user messages sent at once (auto-pipelined) per round trip when resending. */
const RESEND_BATCH = 100

interface Unsent {
  readonly channel: string
  readonly payload: string
  /** When it was first published (the recent list's publish time, for replays). */
  readonly at: number
}

/** How many recent user-topic messages Redis keeps for replay after an instance's outage. */
const RECENT_USER_MESSAGES = 1000
/** Replay also what was published this long before the connection loss was noticed (clock skew). */
const REPLAY_MARGIN_MS = 5_000
/** Replay ids remembered per instance to skip what was already delivered. */
const SEEN_IDS = 4096
/** A subscriber waits at most this long for the SUBSCRIBE confirmation (longer only in an outage). */
const SUBSCRIBE_WAIT = "1 second"

/**
 * KEYS: id counter, recent list, epoch. ARGV: channel, payload without id, publish time, list size,
 * a fresh epoch candidate (kept only when Redis has no epoch: it restarted empty). Returns the id.
 */
const publishDurable = luaScript(`
redis.call('SET', KEYS[3], ARGV[5], 'NX')
local id = redis.call('GET', KEYS[3]) .. ':' .. redis.call('INCR', KEYS[1])
local payload = ARGV[2]
local a = string.find(payload, '\\n', 1, true)
local b = string.find(payload, '\\n', a + 1, true)
local wire = string.sub(payload, 1, b) .. id .. string.sub(payload, b + 1)
redis.call('LPUSH', KEYS[2], id .. '\\t' .. ARGV[1] .. '\\t' .. ARGV[3] .. '\\t' .. wire)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('PUBLISH', ARGV[1], wire)
return id
`)

export const RedisBrokerLive = Layer.scoped(
  Broker,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const { unsentUserMessagesMax: unsentMax } = yield* AppConfig
    // Optional so the broker runs without the gateway's stats (recovery tests); counted apart then.
    const stats = Option.getOrElse(yield* Effect.serviceOption(GatewayStats), () => new GatewayStatsImpl())
    const { prefix, instanceId } = redis
    const hub = new TopicHub()
    const channelOf = (topic: Topic) => `${prefix}${topic}`
    const counterKey = `${prefix}user-messages:seq`
    const recentKey = recentKeyOf(prefix)
    const epochKey = epochKeyOf(prefix)

    // Replay ids delivered here (insertion-ordered, trimmed to SEEN_IDS).
    const seen = new Set<string>()
    const markSeen = (rid: string) => {
      seen.add(rid)
      if (seen.size > SEEN_IDS) {
        const oldest = seen.values().next()
        if (!oldest.done) seen.delete(oldest.value)
      }
    }

    const receiver = (topic: Topic) => (payload: string) => {
      const decoded = redis.decode(Wire, payload)
      if (Option.isNone(decoded)) return
      const wire = decoded.value
      if (wire.origin === instanceId) return
      if (wire.rid !== "") {
        if (seen.has(wire.rid)) return
        markSeen(wire.rid)
      }
      hub.deliver(topic, wire.msg)
    }

    /** Confirmation of the latest SUBSCRIBE per topic with local subscribers. */
    const confirmed = new Map<Topic, Promise<void>>()
    const onFirst = (topic: Topic) => {
      confirmed.set(topic, redis.subscribe(channelOf(topic), receiver(topic)))
    }
    const onLast = (topic: Topic) => {
      confirmed.delete(topic)
      redis.unsubscribe(channelOf(topic))
    }

    yield* redis.onRecovered(({ downSince }) =>
      Effect.gen(function* () {
        const entries = yield* redis.exec("LRANGE recent", (r) => r.lrange(recentKey, 0, -1))
        let replayed = 0
        // LPUSH keeps the newest first: replay oldest first.
        for (let i = entries.length - 1; i >= 0; i--) {
          const entry = Option.getOrUndefined(redis.decode(RecentEntry, entries[i]))
          if (entry === undefined || entry.at < downSince - REPLAY_MARGIN_MS || seen.has(entry.rid)) continue
          const topic = entry.channel.slice(prefix.length)
          const wire = Option.getOrUndefined(redis.decode(Wire, entry.payload))
          if (wire === undefined || wire.origin === instanceId || !hub.has(topic)) continue
          markSeen(entry.rid)
          hub.deliver(topic, wire.msg)
          replayed++
        }
        if (replayed > 0)
          yield* Effect.logInfo("replayed missed user messages").pipe(Effect.annotateLogs({ replayed }))
      }),
    )

    /**
     * User messages whose durable publish failed (Redis unreachable, a command timeout, OOM,
     * READONLY): delivered here already, sent to the other instances by the resend clock (every
     * RESEND_EVERY while connected; at once after a recovery), oldest first. At least once: a
     * publish that timed out may have gone through, and is then sent again (alerts carry their id).
     * At most `unsentMax` wait: past it the oldest is dropped and counted.
     */
    let unsent: Array<Unsent> = []
    const counted = () => {
      stats.unsentUserMessages = unsent.length
    }
    const trimUnsent = () => {
      const over = unsent.length - unsentMax
      if (over <= 0) return
      unsent.splice(0, over)
      stats.unsentUserMessagesDropped += over
      redis.report("keeping unsent user messages", `over ${unsentMax} waiting: the oldest dropped`)
    }
    const send = (channel: string, payload: string, at: number) => (r: Redis) =>
      publishDurable(
        r,
        [counterKey, recentKey, epochKey],
        [channel, payload, at, RECENT_USER_MESSAGES, randomUUID()],
      )
    const keepUnsent = (m: Unsent) => {
      unsent.push(m)
      trimUnsent()
      counted()
    }
    let resending = false
    /** Sends what is unsent, RESEND_BATCH at a time, until the list is empty or a publish fails. */
    const resend = Effect.suspend(() => {
      if (resending || unsent.length === 0 || redis.degraded() !== undefined) return Effect.void
      resending = true
      return Effect.gen(function* () {
        let sent = 0
        while (unsent.length > 0) {
          // Taken out while in flight: publishes failing meanwhile queue behind them.
          const batch = unsent.splice(0, RESEND_BATCH)
          const results = yield* redis.exec("PUBLISH (durable, resent)", (r) =>
            Promise.allSettled(batch.map((m) => send(m.channel, m.payload, m.at)(r))),
          )
          const failed = batch.filter((_, i) => results[i]?.status !== "fulfilled")
          sent += batch.length - failed.length
          if (failed.length > 0) {
            const reason = results.find((r) => r.status === "rejected")
            redis.report("resending user messages", reason?.status === "rejected" ? reason.reason : "")
            // Back in front, in order, for the next tick.
            unsent = [...failed, ...unsent]
            trimUnsent()
            break
          }
        }
        if (sent > 0)
          yield* Effect.logInfo("unsent user messages sent").pipe(
            Effect.annotateLogs({ sent, still_unsent: unsent.length }),
          )
      }).pipe(
        Effect.catchAll((e) => Effect.sync(() => redis.report("resending user messages", e.reason))),
        Effect.ensuring(
          Effect.sync(() => {
            resending = false
            counted()
          }),
        ),
      )
    })
    yield* redis.onRecovered(() => resend)
    // One clock for the instance, whether or not the connection was lost: a publish can fail
    // while the connection stays ready (timeout, OOM, READONLY), and no recovery would follow.
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(RESEND_EVERY), resend)))

    const publishDurably = (topic: Topic, msg: Outgoing) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          hub.deliver(topic, msg)
          const channel = channelOf(topic)
          const payload = encodeWire(instanceId, msg)
          redis.fire("PUBLISH (durable)", (r) =>
            send(
              channel,
              payload,
              now,
            )(r).catch((e: unknown) => {
              keepUnsent({ channel, payload, at: now })
              throw e
            }),
          )
        }),
      )

    /**
     * The market-data hot path. The PUBLISHes go out first, written to the socket at once
     * (`fireNow`, after the group's snapshot HSETs); auto-pipelined they would wait for
     * ioredis's flush, which under Effect's microtask scheduling comes only after this
     * instance's whole local fan-out (measured: +6 ms at p50, +30 ms at p99 on the other side).
     */
    const publishMarket = (messages: ReadonlyArray<Published>) =>
      Effect.sync(() => {
        redis.fireNow("PUBLISH", (p) => {
          for (const m of messages) p.publish(channelOf(m.topic), encodeWire(instanceId, m.msg))
        })
        for (const m of messages) hub.deliver(m.topic, m.msg)
      })

    const broker: BrokerShape = {
      publish: (topic, msg) =>
        isUserTopic(topic) ? publishDurably(topic, msg) : publishMarket([{ topic, msg }]),
      publishAll: (messages) =>
        Effect.suspend(() =>
          messages.some((m) => isUserTopic(m.topic))
            ? // Not a market-data group (none is, today): one by one, in order.
              Effect.forEach(messages, (m) => broker.publish(m.topic, m.msg), { discard: true })
            : publishMarket(messages),
        ),
      join: (topic, sink) =>
        Effect.suspend(() => {
          if (hub.add(topic, sink)) onFirst(topic)
          const pending = confirmed.get(topic)
          // In an outage the SUBSCRIBE waits in the offline queue: do not hold the client for it.
          if (pending === undefined || redis.degraded() !== undefined) return Effect.void
          return Effect.promise(() => pending).pipe(
            Effect.timeout(SUBSCRIBE_WAIT),
            Effect.catchTag("TimeoutException", () =>
              Effect.logDebug("SUBSCRIBE not confirmed yet; continuing").pipe(Effect.annotateLogs({ topic })),
            ),
          )
        }),
      leave: (topic, sink) => {
        if (hub.remove(topic, sink)) onLast(topic)
      },
      localTopicCount: () => hub.topicCount,
      degraded: Effect.sync(() => {
        const down = redis.degraded()
        if (down !== undefined) return `down: ${down}`
        // Connected again but not yet resubscribed and reconciled: events may still be missed.
        return redis.unrecoveredSince() === undefined ? undefined : "recovering from a lost connection"
      }),
    }
    return broker
  }),
)
