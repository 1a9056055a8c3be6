/**
 * Sessions in Redis (cluster mode), so a session outlives the instance that created it and is
 * restored by any instance.
 *
 * Keys (the `{session id}` hash tag keeps a session's keys on one Redis Cluster slot, so each
 * script touches one slot):
 * - `session:{id}` hash: user (JSON), subs (JSON), seq, owner_instance, owner_conn ("" = released)
 * - `session-alerts:{id}` list: alert bodies kept for a released session (capped)
 * - `user-sessions:{user}` set: the user's session ids, for appending alerts
 * - `sessions:released` sorted set: released session ids by expiry (the stats' saved_sessions)
 *
 * Claim and release are Lua scripts, so a release only detaches when the releaser still owns the
 * session (a takeover that already moved it is not undone). A released session expires after
 * SESSION_TTL_S. An attached one carries a longer TTL that this instance refreshes for all its
 * live connections on one clock, spread over the interval (`connection/Sweep.ts`), with their
 * current sequence number, so the sessions of an instance that crashed expire too, and a restore
 * after such a crash continues from the last refreshed sequence number (a clean close, SIGTERM
 * or takeover saves the exact one).
 */
import { Clock, Effect, Layer, Option } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { Conn } from "../connection/Conn.js"
import { Registry } from "../connection/Registry.js"
import { sweepInSlices } from "../connection/Sweep.js"
import {
  NO_SUBSCRIPTIONS,
  type Owner,
  type SessionRecord,
  SessionStore,
  SessionStoreError,
  type SessionStoreShape,
  type Subscriptions,
} from "../session/SessionStore.js"
import { luaScript, RedisClient, type RedisClientShape, type RedisCommandError } from "./RedisClient.js"

/** How often the TTL and sequence number of attached sessions are refreshed. */
export const ATTACHED_REFRESH_MS = 30_000
/** Alerts kept per released session. */
const ALERTS_PER_SESSION = 100

/** KEYS: session, alerts. ARGV: instance, connection, ttl ms. Returns the hash or nil. */
const claimScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
redis.call('HSET', KEYS[1], 'owner_instance', ARGV[1], 'owner_conn', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('HGETALL', KEYS[1])
`)

/**
 * KEYS: session, alerts. ARGV: instance, connection, user, subs, seq, ttl ms.
 * Returns 1 when stored as released, 0 when another owner holds it.
 */
const releaseScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'user', ARGV[3], 'subs', ARGV[4], 'seq', ARGV[5], 'owner_instance', '', 'owner_conn', '')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
`)

/** KEYS: session, alerts. ARGV: body, cap. -1: session gone, 0: attached (live delivery), 1: kept. */
const appendAlertScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'owner_conn') ~= '' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`)

/** KEYS: alerts. Returns the list, emptied. */
const takeAlertsScript = luaScript(`
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
`)

/** KEYS: session. ARGV: instance, connection, seq, ttl ms. Refreshes an attached session we own. */
const touchScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'seq', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

/**
 * KEYS: session. ARGV: instance, connection, ttl ms. Detaches a session whose owning connection
 * no longer exists (its release failed, e.g. during an outage), keeping its last saved state.
 */
const detachScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'owner_instance', '', 'owner_conn', '')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

export const sessionKeyOf = (prefix: string, id: string) => `${prefix}session:{${id}}`

/** For the owning instance when asked to let go of a session whose connection it no longer has. */
export const detachOrphan = (redis: RedisClientShape, sessionId: string, owner: Owner, ttlMs: number) =>
  redis.exec("detach orphaned session", (r) =>
    detachScript(r, [sessionKeyOf(redis.prefix, sessionId)], [owner.instanceId, owner.connectionId, ttlMs]),
  )

const fail = (e: RedisCommandError) => new SessionStoreError({ reason: `${e.command}: ${e.reason}` })

const parseRecord = (id: string, flat: ReadonlyArray<string>): SessionRecord | undefined => {
  const h = new Map<string, string>()
  for (let i = 0; i + 1 < flat.length; i += 2) h.set(flat[i] as string, flat[i + 1] as string)
  return recordOf(id, Object.fromEntries(h))
}

const recordOf = (id: string, h: Readonly<Record<string, string>>): SessionRecord | undefined => {
  if (h.user === undefined) return undefined
  try {
    const instance = h.owner_instance ?? ""
    const conn = h.owner_conn ?? ""
    return {
      id,
      userId: JSON.parse(h.user) as string | null,
      subscriptions: h.subs === undefined ? NO_SUBSCRIPTIONS : (JSON.parse(h.subs) as Subscriptions),
      lastSequence: Number(h.seq ?? 0),
      owner: conn === "" ? null : { instanceId: instance, connectionId: conn },
    }
  } catch {
    return undefined
  }
}

export const RedisSessionStoreLive = Layer.scoped(
  SessionStore,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const config = yield* AppConfig
    const registry = yield* Registry
    const { prefix, instanceId } = redis
    const ttlMs = config.sessionTtlS * 1000
    // A crashed owner never releases: its sessions stay restorable about SESSION_TTL_S past its last refresh.
    const attachedTtlMs = ttlMs + 2 * ATTACHED_REFRESH_MS
    const sessionKey = (id: string) => sessionKeyOf(prefix, id)
    const alertsKey = (id: string) => `${prefix}session-alerts:{${id}}`
    const userKey = (userId: string) => `${prefix}user-sessions:{${userId}}`
    const releasedKey = `${prefix}sessions:released`

    const write = (record: SessionRecord) =>
      redis.exec("create session", async (r) => {
        const results = await r
          .multi()
          .hset(sessionKey(record.id), {
            user: JSON.stringify(record.userId),
            subs: JSON.stringify(record.subscriptions),
            seq: String(record.lastSequence),
            owner_instance: record.owner?.instanceId ?? "",
            owner_conn: record.owner?.connectionId ?? "",
          })
          .pexpire(sessionKey(record.id), attachedTtlMs)
          .exec()
        const failed = results?.find(([err]) => err !== null)?.[0]
        if (failed) throw failed
        if (record.userId !== null) {
          await r.sadd(userKey(record.userId), record.id)
          await r.pexpire(userKey(record.userId), attachedTtlMs)
        }
      })

    // One clock for every attached session of this instance (TTL and sequence number), each
    // connection's in its slice of the interval: no burst of every session's script at once.
    const refresh = (live: ReadonlyArray<Conn>) =>
      redis
        .exec("refresh sessions", (r) =>
          Promise.all(
            live.map((conn) =>
              touchScript(r, [sessionKey(conn.sessionId)], [instanceId, conn.id, conn.seq, attachedTtlMs]),
            ),
          ),
        )
        .pipe(Effect.catchAll((e) => Effect.logWarning("refreshing sessions failed", e.reason)))
    yield* Effect.forkScoped(sweepInSlices(registry, ATTACHED_REFRESH_MS, refresh))

    // Redis lost its data: the sessions of our live connections exist only here now.
    yield* redis.onRecovered(({ dataLost }) =>
      dataLost
        ? Effect.forEach(
            [...registry.byId.values()],
            (conn) =>
              write({
                id: conn.sessionId,
                userId: conn.userId,
                subscriptions: conn.subscriptions(),
                lastSequence: conn.seq,
                owner: { instanceId, connectionId: conn.id },
              }),
            { discard: true, concurrency: 64 },
          ).pipe(Effect.catchAll((e) => Effect.logWarning("re-seeding sessions failed", e.reason)))
        : Effect.void,
    )

    const store: SessionStoreShape = {
      create: (record) => write(record).pipe(Effect.mapError(fail)),
      get: (id) =>
        redis
          .exec("get session", (r) => r.hgetall(sessionKey(id)))
          .pipe(
            Effect.map((h) => Option.fromNullable(recordOf(id, h))),
            Effect.mapError(fail),
          ),
      claim: (id, owner: Owner) =>
        Effect.gen(function* () {
          const flat = yield* redis.exec("claim session", (r) =>
            claimScript(
              r,
              [sessionKey(id), alertsKey(id)],
              [owner.instanceId, owner.connectionId, attachedTtlMs],
            ),
          )
          if (!Array.isArray(flat)) return Option.none()
          yield* redis.exec("ZREM released", (r) => r.zrem(releasedKey, id))
          return Option.fromNullable(parseRecord(id, flat as ReadonlyArray<string>))
        }).pipe(Effect.mapError(fail)),
      release: (record, owner) =>
        Effect.gen(function* () {
          const stored = yield* redis.exec("release session", (r) =>
            releaseScript(
              r,
              [sessionKey(record.id), alertsKey(record.id)],
              [
                owner.instanceId,
                owner.connectionId,
                JSON.stringify(record.userId),
                JSON.stringify(record.subscriptions),
                record.lastSequence,
                ttlMs,
              ],
            ),
          )
          if (stored !== 1) return
          const now = yield* Clock.currentTimeMillis
          yield* redis.exec("index released session", async (r) => {
            await r.zadd(releasedKey, now + ttlMs, record.id)
            if (record.userId !== null) {
              await r.sadd(userKey(record.userId), record.id)
              await r.pexpire(userKey(record.userId), attachedTtlMs)
            }
          })
        }).pipe(Effect.mapError(fail)),
      remove: (id) =>
        redis
          .exec("remove session", async (r) => {
            await r.del(sessionKey(id), alertsKey(id))
            await r.zrem(releasedKey, id)
          })
          .pipe(Effect.mapError(fail)),
      appendAlert: (userId, body) =>
        Effect.gen(function* () {
          const ids = yield* redis.exec("SMEMBERS user sessions", (r) => r.smembers(userKey(userId)))
          const results = yield* redis.exec("append alert", (r) =>
            Promise.all(
              ids.map((id) =>
                appendAlertScript(r, [sessionKey(id), alertsKey(id)], [body, ALERTS_PER_SESSION]),
              ),
            ),
          )
          const gone = ids.filter((_, i) => results[i] === -1)
          if (gone.length > 0)
            yield* redis.exec("SREM user sessions", (r) => r.srem(userKey(userId), ...gone))
        }).pipe(Effect.mapError(fail)),
      takeAlerts: (id) =>
        redis
          .exec("take alerts", (r) => takeAlertsScript(r, [alertsKey(id)], []))
          .pipe(
            Effect.map((items) => (Array.isArray(items) ? (items as ReadonlyArray<string>) : [])),
            Effect.mapError(fail),
          ),
      savedCount: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        return yield* redis.exec("count released sessions", async (r) => {
          await r.zremrangebyscore(releasedKey, "-inf", now)
          return r.zcard(releasedKey)
        })
      }).pipe(Effect.mapError(fail)),
    }
    return store
  }),
)
