/**
 * Sessions in Redis (cluster mode), so a session outlives the instance that created it and is
 * restored by any instance.
 *
 * Keys (the `{session id}` hash tag keeps a session's keys on one Redis Cluster slot, so each
 * script touches one slot):
 * - `session:{id}` hash: user (JSON), subs (JSON), seq, ceil, owner_instance, owner_conn
 *   ("" = released), jump_from (only between a detach on a crashed owner's behalf and the next claim)
 * - `session-alerts:{id}` list: alert bodies kept for a released session (capped)
 * - `saved-sessions:{group}` sorted set: the released session ids of one user (`user:<id>`) or,
 *   anonymous, of one client address (`address:<ip>`), scored by expiry: the per-group cap
 *   (oldest released dropped first) and the user's alert appends read only this. Expired ids are
 *   pruned whenever it is written, and the key expires with its last session.
 * - `sessions:released` sorted set: released session ids by expiry (the stats' saved_sessions)
 *
 * Claim and release are Lua scripts, so a release only detaches when the releaser still owns the
 * session (a takeover that already moved it is not undone). A released session expires after
 * SESSION_TTL_S. An attached one carries a longer TTL that this instance refreshes for all its
 * live connections on one clock, spread over the interval (`connection/Sweep.ts`), with their
 * current sequence number, so the sessions of an instance that crashed expire too.
 *
 * Surviving a crash of the owning instance (issue 12):
 * - Subscriptions: a connection whose subscriptions changed is put in a dirty set, written to
 *   Redis on one clock for the whole instance (SESSION_PERSIST_INTERVAL_MS), one script per
 *   changed session per tick however many changes it had.
 * - Sequence numbers: the session's hash holds `ceil`, a number its owner may use up to. It is
 *   written when the session is created or claimed (SESSION_SEQUENCE_BLOCK past its number), and
 *   moved a block further on the same clock once half the block is used, so the hot path never
 *   waits for Redis. A clean close, SIGTERM or takeover saves the exact number and the next owner
 *   continues from it; a claim of a session its owner never released (the instance crashed)
 *   continues after `ceil` instead, and reports the jump.
 */
import { Clock, Effect, Layer, Option, Schedule, Schema } from "effect"
import type { Redis } from "ioredis"
import { AppConfig } from "../config/AppConfig.js"
import type { Conn } from "../connection/Conn.js"
import { Registry } from "../connection/Registry.js"
import { sweepInSlices } from "../connection/Sweep.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { userTopic } from "../protocol/topics.js"
import {
  ANONYMOUS_GROUP,
  type LiveSession,
  NO_SUBSCRIPTIONS,
  type Owner,
  type SessionRecord,
  SessionStore,
  SessionStoreError,
  type SessionStoreShape,
  type Subscriptions,
  savedGroupOf,
} from "../session/SessionStore.js"
import { userMessagesSince } from "./RedisBroker.js"
import { luaScript, RedisClient, type RedisClientShape, type RedisCommandError } from "./RedisClient.js"

/** How often the TTL and sequence number of attached sessions are refreshed. */
export const ATTACHED_REFRESH_MS = 30_000
/**
 * KEYS: session, alerts. ARGV: instance, connection, ttl ms, sequence block. Returns nil, or
 * [jumped from ("" when not), previous owner instance, its last write's remaining TTL (ms), ...the
 * hash as claimed]. A session still attached to an owner that never released it continues after
 * the ceiling that owner had reserved.
 */
const claimScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local from = redis.call('HGET', KEYS[1], 'jump_from') or ''
local owner = redis.call('HGET', KEYS[1], 'owner_conn')
local previous = redis.call('HGET', KEYS[1], 'owner_instance') or ''
local pttl = redis.call('PTTL', KEYS[1])
if owner and owner ~= '' then
  local ceil = tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0')
  if ceil > seq then
    if from == '' then from = tostring(seq) end
    seq = ceil
  end
end
redis.call('HDEL', KEYS[1], 'jump_from')
redis.call('HSET', KEYS[1], 'seq', seq, 'ceil', seq + tonumber(ARGV[4]), 'owner_instance', ARGV[1], 'owner_conn', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, tostring(pttl))
table.insert(out, 1, previous)
table.insert(out, 1, from)
return out
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

/**
 * KEYS: session, alerts. ARGV: cap, bodies. -1: session gone, -2: attached (live delivery),
 * else kept, and how many older alerts the cap dropped.
 */
const appendAlertsScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'owner_conn') ~= '' then return -2 end
local n = 0
for i = 2, #ARGV do n = redis.call('RPUSH', KEYS[2], ARGV[i]) end
local cap = tonumber(ARGV[1])
redis.call('LTRIM', KEYS[2], -cap, -1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if n > cap then return n - cap end
return 0
`)

/**
 * KEYS: a group's saved sessions. ARGV: now, id, expires at, cap. Adds a released session and
 * returns the ids it pushed over the cap (oldest first), which the caller deletes.
 */
const saveInGroupScript = luaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
local evicted = {}
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #popped, 2 do evicted[#evicted + 1] = popped[i] end
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] ~= nil then redis.call('PEXPIREAT', KEYS[1], top[2]) end
return evicted
`)

/** KEYS: session, alerts. Deletes a session evicted from its group, unless it was restored meanwhile. */
const evictScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_conn') ~= '' then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
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
 * KEYS: session. ARGV: instance, connection, subs (JSON), seq, ceiling, ttl ms.
 * The persistence clock's write for an attached session we own: 1 when written.
 */
const saveScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'subs', ARGV[3], 'seq', ARGV[4])
if tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0') then
  redis.call('HSET', KEYS[1], 'ceil', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`)

/**
 * KEYS: session. ARGV: instance, connection, ttl ms. Detaches a session whose owning connection
 * no longer exists (its release failed, e.g. during an outage), keeping its last saved state.
 * Its final number was never saved: the next owner continues after the reserved ceiling.
 */
const detachScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local ceil = tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0')
if ceil > seq then
  if not redis.call('HGET', KEYS[1], 'jump_from') then redis.call('HSET', KEYS[1], 'jump_from', seq) end
  redis.call('HSET', KEYS[1], 'seq', ceil)
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

/** Alerts published this long before a crashed owner was last known alive are kept for the restore too. */
const CRASH_REPLAY_MARGIN_MS = 5_000

const MemberBeat = Schema.parseJson(Schema.Struct({ at: Schema.Number }))
const decodeBeat = Schema.decodeUnknownOption(MemberBeat)
/** When a member entry (`RedisClusterView`) says its instance was last alive; 0 when unknown. */
const beatAt = (entry: string | null): number =>
  Option.match(decodeBeat(entry), { onNone: () => 0, onSome: (b) => b.at })

/** What the claim script found besides the record: who held the session and when it last wrote it. */
interface Claimed {
  readonly record: SessionRecord | undefined
  readonly previousInstance: string
  /** Remaining TTL (ms) of the hash before the claim, from its owner's last write. */
  readonly previousTtlMs: number
}

/** The claim script's answer: [jumped from ("" when not), previous instance, pttl, ...flat hash]. */
const parseClaimed = (id: string, reply: ReadonlyArray<string>): Claimed => {
  const h = new Map<string, string>()
  for (let i = 3; i + 1 < reply.length; i += 2) h.set(reply[i] as string, reply[i + 1] as string)
  const record = recordOf(id, Object.fromEntries(h))
  const from = reply[0] ?? ""
  const previousInstance = reply[1] ?? ""
  const previousTtlMs = Number(reply[2] ?? -1)
  if (record === undefined || from === "") return { record, previousInstance, previousTtlMs }
  return {
    record: { ...record, sequenceJump: { from: Number(from), to: record.lastSequence } },
    previousInstance,
    previousTtlMs,
  }
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
    const stats = yield* GatewayStats
    const { prefix, instanceId } = redis
    const block = config.sessionSequenceBlock
    // RedisClusterView's membership hash: each instance's last beat.
    const membersKey = `${prefix}members`
    const ttlMs = config.sessionTtlS * 1000
    // A crashed owner never releases: its sessions stay restorable about SESSION_TTL_S past its last refresh.
    const attachedTtlMs = ttlMs + 2 * ATTACHED_REFRESH_MS
    const sessionKey = (id: string) => sessionKeyOf(prefix, id)
    const alertsKey = (id: string) => `${prefix}session-alerts:{${id}}`
    const groupKey = (group: string) => `${prefix}saved-sessions:{${group}}`
    const releasedKey = `${prefix}sessions:released`

    const write = (record: SessionRecord) =>
      redis.exec("create session", async (r) => {
        const results = await r
          .multi()
          .hset(sessionKey(record.id), {
            user: JSON.stringify(record.userId),
            subs: JSON.stringify(record.subscriptions),
            seq: String(record.lastSequence),
            ceil: String(record.lastSequence + block),
            owner_instance: record.owner?.instanceId ?? "",
            owner_conn: record.owner?.connectionId ?? "",
          })
          .pexpire(sessionKey(record.id), attachedTtlMs)
          .exec()
        const failed = results?.find(([err]) => err !== null)?.[0]
        if (failed) throw failed
        if (record.owner !== null) reserved.set(record.owner.connectionId, record.lastSequence + block)
      })

    // ---- persistence of attached sessions, on one clock (see the module comment) ----
    /** By connection id: the sequence ceiling Redis holds for the session that connection owns. */
    const reserved = new Map<string, number>()
    /** Connections whose subscriptions changed since the last tick. */
    const dirty = new Set<LiveSession>()
    const isLive = (conn: LiveSession) => !conn.closing && registry.byId.get(conn.id) === conn
    const persist = Effect.suspend(() => {
      // In an outage every command fails at once: keep what is due for the tick after recovery.
      if (redis.degraded() !== undefined) {
        for (const conn of dirty) if (!isLive(conn)) dirty.delete(conn)
        return Effect.void
      }
      const due = new Set<LiveSession>()
      for (const conn of dirty) if (isLive(conn)) due.add(conn)
      dirty.clear()
      // One integer compare per connection per tick: reserve the next block once half is used.
      for (const conn of registry.byId.values()) {
        const ceiling = reserved.get(conn.id)
        if (ceiling === undefined || conn.seq <= ceiling - block / 2 || conn.closing) continue
        if (conn.seq > ceiling) {
          stats.sessionSequenceOverruns++
          redis.report(
            "reserving sequence numbers",
            `connection ${conn.id} used ${conn.seq - ceiling} past its ceiling`,
          )
        }
        due.add(conn)
      }
      if (due.size === 0) return Effect.void
      const batch = [...due].map((conn) => ({ conn, ceiling: conn.seq + block }))
      return redis
        .exec("persist sessions", (r) =>
          Promise.all(
            batch.map(({ conn, ceiling }) =>
              saveScript(
                r,
                [sessionKey(conn.sessionId)],
                [instanceId, conn.id, JSON.stringify(conn.subscriptions()), conn.seq, ceiling, attachedTtlMs],
              ),
            ),
          ),
        )
        .pipe(
          Effect.flatMap((results) =>
            Effect.sync(() => {
              for (let i = 0; i < batch.length; i++) {
                if (results[i] !== 1) continue
                const { conn, ceiling } = batch[i] as (typeof batch)[number]
                stats.sessionsPersisted++
                const held = reserved.get(conn.id)
                if (held !== undefined && held < ceiling) reserved.set(conn.id, ceiling)
              }
            }),
          ),
          Effect.catchAll((e) =>
            Effect.sync(() => {
              // Written again on the next tick (the scripts are idempotent).
              stats.sessionPersistFailures++
              for (const { conn } of batch) dirty.add(conn)
              redis.report("persisting sessions", `${e.command}: ${e.reason}`)
            }),
          ),
        )
    })
    yield* Effect.forkScoped(
      Effect.repeat(persist, Schedule.spaced(`${config.sessionPersistIntervalMs} millis`)),
    )

    /**
     * A session whose instance crashed was still attached, so the alerts fired since were neither
     * delivered nor kept for it (only released sessions keep alerts). The broker's recent list
     * still has them: keep for the restore the user's messages published since the old owner was
     * last known alive (its membership beat, or its last write of the session), less a margin.
     * At least once: an alert the old connection received just before the crash comes again.
     */
    const keepAlertsMissedInCrash = (record: SessionRecord, claimed: Claimed) =>
      Effect.gen(function* () {
        if (record.userId === null || claimed.previousInstance === "") return
        const now = yield* Clock.currentTimeMillis
        const beat = yield* redis.exec("HGET members", (r) => r.hget(membersKey, claimed.previousInstance))
        const lastWrite = claimed.previousTtlMs > 0 ? now - (attachedTtlMs - claimed.previousTtlMs) : 0
        const since = Math.max(beatAt(beat), lastWrite) - CRASH_REPLAY_MARGIN_MS
        const bodies = yield* userMessagesSince(redis, userTopic(record.userId), since)
        if (bodies.length === 0) return
        yield* redis.exec("keep alerts missed in a crash", async (r) => {
          await r.rpush(alertsKey(record.id), ...bodies)
          await r.pexpire(alertsKey(record.id), attachedTtlMs)
        })
        yield* Effect.logInfo("alerts missed by a crashed instance kept for the restore").pipe(
          Effect.annotateLogs({ session_id: record.id, alerts: bodies.length }),
        )
      }).pipe(
        // The restore goes on without them; said in the log, not silently.
        Effect.catchAll((e) => Effect.logWarning("alerts missed in a crash not recovered", e.reason)),
      )

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

    // Redis lost its data: the sessions of our live connections exist only here now. Without a
    // loss, only the sessions whose creation failed during the outage (nothing reserved for them)
    // are missing: written now, so they too survive a later crash of this instance.
    yield* redis.onRecovered(({ dataLost }) => {
      if (dataLost) stats.redisDataLost++
      const missing = [...registry.byId.values()].filter(
        (conn) => dataLost || (conn.closeRequest === undefined && !reserved.has(conn.id)),
      )
      return missing.length === 0
        ? Effect.void
        : Effect.forEach(
            missing,
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
    })

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
          const reply = yield* redis.exec("claim session", (r) =>
            claimScript(
              r,
              [sessionKey(id), alertsKey(id)],
              [owner.instanceId, owner.connectionId, attachedTtlMs, block],
            ),
          )
          if (!Array.isArray(reply)) return Option.none()
          yield* redis.exec("ZREM released", (r) => r.zrem(releasedKey, id))
          const claimed = parseClaimed(id, reply as ReadonlyArray<string>)
          const record = claimed.record
          if (record !== undefined) {
            reserved.set(owner.connectionId, record.lastSequence + block)
            if (record.sequenceJump !== undefined) {
              stats.sessionSequenceJumps++
              yield* keepAlertsMissedInCrash(record, claimed)
            }
          }
          // Attached again: no longer one of its user's saved sessions (an anonymous one leaves
          // its address's group when it expires there or is popped past the cap).
          const userId = record?.userId
          if (userId != null)
            redis.fire("unindex claimed session", (r) =>
              r.zrem(groupKey(savedGroupOf(userId, undefined)), id),
            )
          return Option.fromNullable(record)
        }).pipe(Effect.mapError(fail)),
      release: (record, owner, addressKey, unsentAlerts) =>
        Effect.gen(function* () {
          reserved.delete(owner.connectionId)
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
          if (unsentAlerts.length > 0) {
            const dropped = yield* redis.exec("keep unsent alerts", (r) =>
              appendAlertsScript(
                r,
                [sessionKey(record.id), alertsKey(record.id)],
                [config.maxAlertsPerUser, ...unsentAlerts],
              ),
            )
            if (typeof dropped === "number" && dropped > 0) stats.sessionAlertsDropped += dropped
          }
          const now = yield* Clock.currentTimeMillis
          const cap =
            record.userId === null ? config.maxAnonymousSessionsPerAddress : config.maxSessionsPerUser
          const ids = (over: unknown) =>
            Array.isArray(over) ? over.filter((id): id is string => typeof id === "string") : []
          const [inGroup, inTotal] = yield* redis.exec("index released session", async (r) => {
            // Pruned on every write, not only when the stats read it: expired ids never pile up.
            await r.zremrangebyscore(releasedKey, "-inf", now)
            await r.zadd(releasedKey, now + ttlMs, record.id)
            const group = await saveInGroupScript(
              r,
              [groupKey(savedGroupOf(record.userId, addressKey))],
              [now, record.id, now + ttlMs, cap],
            )
            // Anonymous sessions also count in one cluster-wide group (MAX_ANONYMOUS_SESSIONS).
            const total =
              record.userId === null
                ? await saveInGroupScript(
                    r,
                    [groupKey(ANONYMOUS_GROUP)],
                    [now, record.id, now + ttlMs, config.maxAnonymousSessions],
                  )
                : []
            return [ids(group), ids(total)] as const
          })
          const evict = async (r: Redis, evicted: ReadonlyArray<string>) => {
            if (evicted.length === 0) return 0
            await r.zrem(releasedKey, ...evicted)
            const deleted = await Promise.all(
              evicted.map((id) => evictScript(r, [sessionKey(id), alertsKey(id)], [])),
            )
            return deleted.filter((d) => d === 1).length
          }
          if (inGroup.length > 0) {
            const n = yield* redis.exec("evict saved sessions", (r) => evict(r, inGroup))
            stats.sessionEvicted(record.userId === null ? "address_limit" : "user_limit", n)
          }
          if (inTotal.length > 0) {
            const n = yield* redis.exec("evict saved anonymous sessions", (r) => evict(r, inTotal))
            stats.sessionEvicted("anonymous_limit", n)
          }
        }).pipe(Effect.mapError(fail)),
      remove: (id) =>
        redis
          .exec("remove session", async (r) => {
            await r.del(sessionKey(id), alertsKey(id))
            await r.zrem(releasedKey, id)
          })
          .pipe(Effect.mapError(fail)),
      appendAlerts: (userId, bodies) =>
        Effect.gen(function* () {
          if (bodies.length === 0) return
          const key = groupKey(savedGroupOf(userId, undefined))
          const now = yield* Clock.currentTimeMillis
          const ids = yield* redis.exec("saved sessions of user", (r) =>
            r.zrangebyscore(key, `(${now}`, "+inf"),
          )
          if (ids.length === 0) return
          // One pipelined round trip: every saved session of the user gets every body at once.
          const results = yield* redis.exec("append alerts", (r) =>
            Promise.all(
              ids.map((id) =>
                appendAlertsScript(r, [sessionKey(id), alertsKey(id)], [config.maxAlertsPerUser, ...bodies]),
              ),
            ),
          )
          let dropped = 0
          const stale: Array<string> = []
          results.forEach((n, i) => {
            if (n === -1 || n === -2) stale.push(ids[i] as string)
            else if (typeof n === "number") dropped += n
          })
          stats.sessionAlertsDropped += dropped
          // Gone, or restored (claimed) since: no longer a saved session of the user.
          if (stale.length > 0) redis.fire("unindex stale sessions", (r) => r.zrem(key, ...stale))
        }).pipe(Effect.mapError(fail)),
      takeAlerts: (id) =>
        redis
          .exec("take alerts", (r) => takeAlertsScript(r, [alertsKey(id)], []))
          .pipe(
            Effect.map((items) => (Array.isArray(items) ? (items as ReadonlyArray<string>) : [])),
            Effect.mapError(fail),
          ),
      changed: (conn) => {
        dirty.add(conn)
      },
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
