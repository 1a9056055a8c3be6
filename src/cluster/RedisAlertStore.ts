/**
 * Price alerts in Redis (cluster mode): created, listed and deleted through any instance, fired
 * exactly once cluster-wide.
 *
 * - `alert:{id}` hash (user, code, type, threshold, created, fired: "" while active); fired alerts
 *   are kept for FIRED_RETENTION so the user can still list them.
 * - `user-alerts:{user}` set and `alerts:active` set: listing and the full reload.
 * - `markFired` is a Lua compare-and-set on `fired`: exactly one caller, on any instance, wins.
 * - `activeFor` runs per price update, so it never touches Redis: every instance keeps a cache of
 *   active alerts by code, kept in sync through the `alerts:{sync}` channel (upsert / delete /
 *   fired) and rebuilt from Redis at startup and after every reconnect (messages may have been
 *   missed meanwhile). If Redis came back empty, the cache is written back instead, so an active
 *   alert survives a Redis restart without persistence.
 */
import { randomUUID } from "node:crypto"
import { Effect, Layer } from "effect"
import { type AlertRecord, AlertStore, AlertStoreError, type AlertStoreShape } from "../alerts/AlertStore.js"
import type { AlertType } from "../protocol/server.js"
import { luaScript, RedisClient, type RedisCommandError } from "./RedisClient.js"

const FIRED_RETENTION_MS = 7 * 24 * 3600 * 1000

/**
 * KEYS: alert. ARGV: fired at, retention ms, call token. 1 for the one call that fires it; the
 * token makes a resent call (ioredis resends unanswered commands after a reconnect) win again.
 */
const markFiredScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
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

/** KEYS: alert. ARGV: field/value pairs. Writes the alert only if Redis has no such key. */
const reseedScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

type SyncMessage =
  | { readonly op: "upsert"; readonly alert: AlertRecord }
  | { readonly op: "delete" | "fired"; readonly id: string }

const fail = (e: RedisCommandError) => new AlertStoreError({ reason: `${e.command}: ${e.reason}` })

const fieldsOf = (a: AlertRecord): Record<string, string> => ({
  user: a.userId,
  code: a.code,
  type: a.alertType,
  threshold: String(a.threshold),
  created: String(a.createdAt),
  fired: a.firedAt === null ? "" : String(a.firedAt),
})

const recordOf = (id: string, h: Readonly<Record<string, string>>): AlertRecord | undefined => {
  if (h.user === undefined || h.code === undefined || h.type === undefined) return undefined
  return {
    id,
    userId: h.user,
    code: h.code,
    alertType: h.type as AlertType,
    threshold: Number(h.threshold),
    createdAt: Number(h.created),
    firedAt: h.fired === undefined || h.fired === "" ? null : Number(h.fired),
  }
}

export const RedisAlertStoreLive = Layer.scoped(
  AlertStore,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const { prefix } = redis
    const alertKey = (id: string) => `${prefix}alert:{${id}}`
    const userKey = (userId: string) => `${prefix}user-alerts:{${userId}}`
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
    }
    const uncache = (id: string) => {
      const a = byId.get(id)
      if (a === undefined) return
      byId.delete(id)
      byCode.get(a.code)?.delete(id)
    }

    const load = (ids: ReadonlyArray<string>) =>
      redis
        .exec("HGETALL alerts", (r) => Promise.all(ids.map((id) => r.hgetall(alertKey(id)))))
        .pipe(
          Effect.map((hashes) =>
            ids.flatMap((id, i) => {
              const a = recordOf(id, hashes[i] ?? {})
              return a === undefined ? [] : [a]
            }),
          ),
        )
    const reload = Effect.gen(function* () {
      const ids = yield* redis.exec("SMEMBERS active alerts", (r) => r.smembers(activeKey))
      const alerts = yield* load(ids)
      byId.clear()
      byCode.clear()
      for (const a of alerts) cache(a)
      return alerts.length
    })
    const reseed = Effect.gen(function* () {
      const active = [...byId.values()]
      yield* redis.exec("re-seed alerts", (r) =>
        Promise.all(
          active.flatMap((a) => [
            reseedScript(r, [alertKey(a.id)], Object.entries(fieldsOf(a)).flat()),
            r.sadd(userKey(a.userId), a.id),
            r.sadd(activeKey, a.id),
          ]),
        ),
      )
      return active.length
    })

    const onSync = (payload: string) => {
      let m: SyncMessage
      try {
        m = JSON.parse(payload) as SyncMessage
      } catch (e) {
        return redis.report("decoding an alert sync message", e)
      }
      if (m.op === "upsert") cache(m.alert)
      else uncache(m.id)
    }
    const announce = (m: SyncMessage) =>
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
      create: (alert) =>
        redis
          .exec("create alert", async (r) => {
            await r.hset(alertKey(alert.id), fieldsOf(alert))
            await r.sadd(userKey(alert.userId), alert.id)
            await r.sadd(activeKey, alert.id)
          })
          .pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                cache(alert)
                announce({ op: "upsert", alert })
              }),
            ),
            Effect.mapError(fail),
          ),
      list: (userId) =>
        Effect.gen(function* () {
          const ids = yield* redis.exec("SMEMBERS user alerts", (r) => r.smembers(userKey(userId)))
          const alerts = yield* load(ids)
          const present = new Set(alerts.map((a) => a.id))
          const gone = ids.filter((id) => !present.has(id))
          if (gone.length > 0) yield* redis.exec("SREM user alerts", (r) => r.srem(userKey(userId), ...gone))
          return alerts.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
        }).pipe(Effect.mapError(fail)),
      remove: (userId, id) =>
        Effect.gen(function* () {
          const removed = yield* redis.exec("delete alert", (r) => removeScript(r, [alertKey(id)], [userId]))
          if (removed !== 1) return false
          yield* redis.exec("unindex alert", async (r) => {
            await r.srem(userKey(userId), id)
            await r.srem(activeKey, id)
          })
          uncache(id)
          announce({ op: "delete", id })
          return true
        }).pipe(Effect.mapError(fail)),
      activeFor: (code) => Effect.sync(() => [...(byCode.get(code)?.values() ?? [])]),
      markFired: (id, at) =>
        Effect.gen(function* () {
          const won = yield* redis.exec("mark alert fired", (r) =>
            markFiredScript(r, [alertKey(id)], [at, FIRED_RETENTION_MS, randomUUID()]),
          )
          // Fired (here or elsewhere) or gone: either way no longer active here.
          uncache(id)
          if (won !== 1) return false
          // Won: nothing after this may fail the call, or the alert would never be delivered.
          redis.fire("SREM active alert", (r) => r.srem(activeKey, id))
          announce({ op: "fired", id })
          return true
        }).pipe(Effect.mapError(fail)),
    }
    return store
  }),
)
