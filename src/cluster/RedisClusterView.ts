/**
 * Cluster membership for `/v1/ws/stats` (cluster mode). On one clock every instance writes its
 * totals into the hash `prefix + "members"` (field = instance id); an entry not refreshed for
 * three beats is a dead instance and is left out (and pruned later). A clean shutdown removes
 * its entry at once. While Redis cannot be read, the last list read is used.
 */
import { Clock, Effect, Layer, Option, Schedule } from "effect"
import { Registry, type RegistryImpl } from "../connection/Registry.js"
import type { ClusterStats } from "../http/Api.js"
import { ClusterView, type LocalTotals } from "../http/ClusterView.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { nowIso } from "../protocol/encode.js"
import { MemberEntry } from "./codec.js"
import { RedisClient } from "./RedisClient.js"

export const HEARTBEAT_MS = 2_000
/** Missed beats after which an instance no longer counts as alive. */
const ALIVE_MS = 3 * HEARTBEAT_MS
/** Entries this old are deleted from the hash. */
const PRUNE_MS = 60_000

export const localTotals = (registry: RegistryImpl, messagesSent: number): LocalTotals => {
  let subscriptions = 0
  for (const conn of registry.byId.values()) subscriptions += conn.subscriptionCount()
  return {
    active_connections: registry.size,
    total_subscriptions: subscriptions,
    messages_sent: messagesSent,
  }
}

export const RedisClusterViewLive = Layer.scoped(
  ClusterView,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const registry = yield* Registry
    const stats = yield* GatewayStats
    const key = `${redis.prefix}members`
    const me = redis.instanceId

    const beat = Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      const entry: MemberEntry = { instance_id: me, at, ...localTotals(registry, stats.messagesSent) }
      yield* redis.exec("HSET members", (r) => r.hset(key, me, JSON.stringify(entry)))
    }).pipe(Effect.catchAll((e) => Effect.sync(() => redis.report(e.command, e.reason))))
    yield* Effect.addFinalizer(() =>
      redis
        .exec("HDEL members", (r) => r.hdel(key, me))
        .pipe(Effect.catchAll((e) => Effect.logWarning("could not leave the member list", e.reason))),
    )
    yield* beat
    yield* Effect.forkScoped(Effect.repeat(beat, Schedule.spaced(`${HEARTBEAT_MS} millis`)))

    let lastRead: ReadonlyArray<MemberEntry> = []
    const readMembers = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const all = yield* redis.exec("HGETALL members", (r) => r.hgetall(key))
      const entries = Object.values(all).flatMap((v) => Option.toArray(redis.decode(MemberEntry, v)))
      const stale = entries.filter((e) => now - e.at > PRUNE_MS).map((e) => e.instance_id)
      if (stale.length > 0) redis.fire("HDEL stale members", (r) => r.hdel(key, ...stale))
      lastRead = entries.filter((e) => now - e.at <= ALIVE_MS)
      return lastRead
    }).pipe(
      Effect.catchAll((e) =>
        Effect.sync(() => {
          redis.report(e.command, e.reason)
          return lastRead
        }),
      ),
    )

    return {
      mode: "cluster",
      snapshot: (local) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const others = (yield* readMembers).filter((e) => e.instance_id !== me)
          // This instance's own numbers are current, not a beat old.
          const members = [{ instance_id: me, at: now, ...local }, ...others].sort((a, b) =>
            a.instance_id < b.instance_id ? -1 : 1,
          )
          const sum = (f: (e: LocalTotals) => number) => members.reduce((n, e) => n + f(e), 0)
          const cluster: typeof ClusterStats.Type = {
            instances: members.length,
            active_connections: sum((e) => e.active_connections),
            total_subscriptions: sum((e) => e.total_subscriptions),
            messages_sent: sum((e) => e.messages_sent),
            members: members.map((e) => ({
              instance_id: e.instance_id,
              active_connections: e.active_connections,
              total_subscriptions: e.total_subscriptions,
              messages_sent: e.messages_sent,
              updated_at: nowIso(e.at),
            })),
          }
          return Option.some(cluster)
        }),
    }
  }),
)
