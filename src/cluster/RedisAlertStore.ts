/**
 * Price alerts in Redis (cluster mode): created, listed and deleted through any instance, fired
 * exactly once cluster-wide.
 *
 * - `alert:{id}` hash (user, code, type, threshold, created, fired: "" while active); fired alerts
 *   are kept for FIRED_RETENTION so the user can still list them.
 * - `alerts-by-user:{user}` sorted set: the user's alert ids scored by when they expire (`+inf`
 *   while active, fired + FIRED_RETENTION after firing), so the per-user cap is one atomic script
 *   on one key (expired members pruned first), listing reads only the user's own alerts, and the
 *   key itself expires with its last fired alert.
 * - `alerts:active` set: the full reload.
 * - `markFired` is a Lua compare-and-set on `fired`: exactly one caller token, on any instance,
 *   wins; the same token wins again (a retry of a call whose reply was lost or timed out). A
 *   batch of alerts is marked in one pipelined round trip, their user indexes in one more.
 * - `activeFor` runs per price update, so it never touches Redis: every instance keeps a cache of
 *   active alerts by code, kept in sync through the `alerts:{sync}` channel (upsert / delete /
 *   fired) and rebuilt from Redis at startup and after every reconnect (messages may have been
 *   missed meanwhile). If Redis came back empty, the cache is written back instead, so an active
 *   alert survives a Redis restart without persistence.
 */
import { Clock, Effect, Layer, Option } from "effect"
import {
  AlertLimitReached,
  type AlertRecord,
  AlertStore,
  AlertStoreError,
  type AlertStoreShape,
  FIRED_RETENTION_MS,
} from "../alerts/AlertStore.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { AlertHash, AlertSync, type AlertSyncMessage, IntReply } from "./codec.js"
import { RedisClient, type RedisCommandError } from "./RedisClient.js"
import { luaScript } from "./RedisScript.js"

/**
 * KEYS: alert. ARGV: fired at, retention ms, call token. 1 for the one token that fires it, every
 * time that token asks: a call resent by ioredis after a reconnect, or retried by AlertEngine
 * after a timeout (the script may have run after the client gave up), wins again. 0 when another
 * token fired it; -1 when Redis has no such alert (deleted, or Redis restarted empty).
 */
const markFiredScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local fired = redis.call('HGET', KEYS[1], 'fired')
if fired ~= '' then
  if redis.call('HGET', KEYS[1], 'fired_by') == ARGV[3] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'fired', ARGV[1], 'fired_by', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

/** KEYS: alert. ARGV: user. Deletes the alert if it is that user's. */
const removeScript = luaScript(`
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

/**
 * KEYS: the user's index. ARGV: now, limit, id. Reserves a slot for a new alert: 1, or 0 when
 * the user already holds `limit` unexpired alerts. An index with an active alert never expires.
 */
const reserveScript = luaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], '+inf', ARGV[3])
redis.call('PERSIST', KEYS[1])
return 1
`)

/** An index with no active alert expires with its last fired one. */
const settleIndex = `
if redis.call('ZCOUNT', KEYS[1], '+inf', '+inf') > 0 then
  redis.call('PERSIST', KEYS[1])
else
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if top[2] ~= nil then redis.call('PEXPIREAT', KEYS[1], top[2]) end
end
`

/** KEYS: the user's index. ARGV: expires at, ids. Scores fired alerts by their expiry. */
const firedInIndexScript = luaScript(`
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i]) end
${settleIndex}
return 1
`)

/** KEYS: the user's index. ARGV: ids. Drops deleted (or vanished) alerts from the index. */
const unindexScript = luaScript(`
for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
${settleIndex}
return 1
`)

/** KEYS: alert. ARGV: field/value pairs. Writes the alert only if Redis has no such key. */
const reseedScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

const fail = (e: RedisCommandError) => new AlertStoreError({ reason: `${e.command}: ${e.reason}` })

const fieldsOf = (a: AlertRecord): Record<string, string> => ({
  user: a.userId,
  code: a.code,
  type: a.alertType,
  threshold: String(a.threshold),
  created: String(a.createdAt),
  fired: a.firedAt === null ? "" : String(a.firedAt),
})

export const RedisAlertStoreLive = Layer.scoped(
  AlertStore,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const stats = yield* GatewayStats
    const { prefix } = redis
    const alertKey = (id: string) => `${prefix}alert:{${id}}`
    const userKey = (userId: string) => `${prefix}alerts-by-user:{${userId}}`
    const activeKey = `${prefix}alerts:active`
    const syncChannel = `${prefix}alerts:{sync}`

    // ---- the local cache of active alerts ----
    const byId = new Map<string, AlertRecord>()
    const byCode = new Map<string, Map<string, AlertRecord>>()
    const cache = (a: AlertRecord) => {
      uncache(a.id)
      if (a.firedAt !== null) return
      byId.set(a.id, a)
      let m = byCode.get(a.code)
      if (m === undefined) {
        m = new Map()
        byCode.set(a.code, m)
      }
      m.set(a.id, a)
      stats.alertsCached = byId.size
    }
    const uncache = (id: string) => {
      const a = byId.get(id)
      if (a === undefined) return
      byId.delete(id)
      byCode.get(a.code)?.delete(id)
      stats.alertsCached = byId.size
    }

    /** The alert of a hash read back; None for no hash (a reserved id, a deleted alert) or a bad one (reported). */
    const recordOf = (id: string, h: Readonly<Record<string, string>>): Option.Option<AlertRecord> => {
      if (Object.keys(h).length === 0) return Option.none()
      return Option.map(redis.decode(AlertHash, h), (a) => ({
        id,
        userId: a.user,
        code: a.code,
        alertType: a.type,
        threshold: a.threshold,
        createdAt: a.created,
        firedAt: a.fired,
      }))
    }
    const load = (ids: ReadonlyArray<string>) =>
      redis
        .exec("HGETALL alerts", (r) => Promise.all(ids.map((id) => r.hgetall(alertKey(id)))))
        .pipe(Effect.map((hashes) => ids.flatMap((id, i) => Option.toArray(recordOf(id, hashes[i] ?? {})))))
    const reload = Effect.gen(function* () {
      const ids = yield* redis.exec("SMEMBERS active alerts", (r) => r.smembers(activeKey))
      const alerts = yield* load(ids)
      byId.clear()
      byCode.clear()
      for (const a of alerts) cache(a)
      // Active alerts written before the per-user index existed join it (no-op for the others).
      yield* redis.exec("index active alerts", (r) =>
        Promise.all(alerts.map((a) => r.zadd(userKey(a.userId), "NX", "+inf", a.id))),
      )
      return alerts.length
    })
    const reseed = Effect.gen(function* () {
      const active = [...byId.values()]
      yield* redis.exec("re-seed alerts", (r) =>
        Promise.all(
          active.flatMap((a) => [
            reseedScript(r, [alertKey(a.id)], Object.entries(fieldsOf(a)).flat()),
            r.zadd(userKey(a.userId), "+inf", a.id),
            r.persist(userKey(a.userId)),
            r.sadd(activeKey, a.id),
          ]),
        ),
      )
      return active.length
    })

    const onSync = (payload: string) => {
      const decoded = redis.decode(AlertSync, payload)
      if (Option.isNone(decoded)) return
      const m = decoded.value
      if (m.op === "upsert") cache(m.alert)
      else if (m.op === "delete") uncache(m.id)
      else for (const id of m.ids ?? (m.id === undefined ? [] : [m.id])) uncache(id)
    }
    const announce = (m: AlertSyncMessage) =>
      redis.fire("PUBLISH alert sync", (r) => r.publish(syncChannel, JSON.stringify(m)))

    yield* redis.listen(syncChannel, onSync)
    const loaded = yield* reload.pipe(
      Effect.mapError((e) => e.reason),
      Effect.catchAll((reason) => Effect.as(Effect.logWarning("could not load alerts", reason), 0)),
    )
    yield* Effect.logInfo("alerts loaded").pipe(Effect.annotateLogs({ active: loaded }))
    yield* redis.onRecovered(({ dataLost }) =>
      Effect.flatMap(dataLost ? reseed : reload, (n) =>
        Effect.logInfo(dataLost ? "alerts re-seeded" : "alerts reloaded").pipe(
          Effect.annotateLogs({ active: n }),
        ),
      ).pipe(Effect.catchAll((e) => Effect.logWarning("alert recovery failed", e.reason))),
    )

    const store: AlertStoreShape = {
      create: (alert, limit) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          // The slot first (atomic on the user's index, whichever instance creates), then the
          // alert. Should the second step fail, the reserved id has no hash and `list` drops it.
          const reserved = yield* redis.query("reserve alert", IntReply, (r) =>
            reserveScript(r, [userKey(alert.userId)], [now, limit, alert.id]),
          )
          if (reserved !== 1) return yield* new AlertLimitReached({ limit })
          yield* redis.exec("create alert", async (r) => {
            await r.hset(alertKey(alert.id), fieldsOf(alert))
            await r.sadd(activeKey, alert.id)
          })
          cache(alert)
          announce({ op: "upsert", alert })
        }).pipe(Effect.mapError((e) => (e._tag === "RedisCommandError" ? fail(e) : e))),
      list: (userId) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const ids = yield* redis.exec("user alert ids", async (r) => {
            await r.zremrangebyscore(userKey(userId), "-inf", now)
            return r.zrange(userKey(userId), 0, -1)
          })
          const alerts = yield* load(ids)
          const present = new Set(alerts.map((a) => a.id))
          const gone = ids.filter((id) => !present.has(id))
          if (gone.length > 0)
            yield* redis.exec("unindex vanished alerts", (r) => unindexScript(r, [userKey(userId)], gone))
          return alerts.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
        }).pipe(Effect.mapError(fail)),
      remove: (userId, id) =>
        Effect.gen(function* () {
          const removed = yield* redis.query("delete alert", IntReply, (r) =>
            removeScript(r, [alertKey(id)], [userId]),
          )
          if (removed !== 1) return false
          yield* redis.exec("unindex alert", async (r) => {
            await unindexScript(r, [userKey(userId)], [id])
            await r.srem(activeKey, id)
          })
          uncache(id)
          announce({ op: "delete", id })
          return true
        }).pipe(Effect.mapError(fail)),
      activeFor: (code) => Effect.sync(() => [...(byCode.get(code)?.values() ?? [])]),
      markFired: (batch, at, token) =>
        Effect.gen(function* () {
          // One call token for the batch, so each alert must appear once.
          const alerts = [...new Map(batch.map((a) => [a.id, a])).values()]
          if (alerts.length === 0) return { won: new Set<string>(), unknown: [] }
          // One pipelined round trip (auto-pipelining) for the whole batch, each script settled on
          // its own: one that failed or timed out (and may yet run, under this token) leaves the
          // outcomes of the others standing.
          const results = yield* redis.exec("mark alerts fired", (r) =>
            Promise.allSettled(
              alerts.map((a) => markFiredScript(r, [alertKey(a.id)], [at, FIRED_RETENTION_MS, token])),
            ),
          )
          const won = new Set<string>()
          const unknown: Array<string> = []
          const wonByUser = new Map<string, Array<string>>()
          alerts.forEach((a, i) => {
            const result = results[i]
            // A reply that does not decode (reported) leaves the outcome unknown too.
            const verdict =
              result?.status === "fulfilled" ? redis.decode(IntReply, result.value) : Option.none()
            if (Option.isNone(verdict)) {
              // Still cached (active) until its outcome is known: should Redis lose it meanwhile,
              // the re-seed writes it back.
              unknown.push(a.id)
              if (result?.status === "rejected") redis.report("marking an alert fired", result.reason)
              return
            }
            // Not in Redis: deleted (its delete message uncaches it) or lost with Redis's data,
            // when the re-seed after the recovery writes it back from this cache, still active.
            if (verdict.value === -1) return
            // Fired, here or elsewhere: no longer active.
            uncache(a.id)
            if (verdict.value !== 1) return
            won.add(a.id)
            const ids = wonByUser.get(a.userId)
            if (ids === undefined) wonByUser.set(a.userId, [a.id])
            else ids.push(a.id)
          })
          if (won.size === 0) return { won, unknown }
          // Won: nothing after this may fail the call, or the alerts would never be delivered.
          const ids = [...won]
          redis.fire("SREM active alerts", (r) => r.srem(activeKey, ...ids))
          for (const [userId, mine] of wonByUser)
            redis.fire("index fired alerts", (r) =>
              firedInIndexScript(r, [userKey(userId)], [at + FIRED_RETENTION_MS, ...mine]),
            )
          announce({ op: "fired", ids })
          return { won, unknown }
        }).pipe(Effect.mapError(fail)),
    }
    return store
  }),
)
