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
 * The keys and scripts are in `RedisSessionScripts.ts`; the clocks that keep the attached sessions
 * alive in `RedisAttachedSessions.ts`; the stored values decode with `codec.ts`.
 *
 * Claim and release are Lua scripts, so a release only detaches when the releaser still owns the
 * session (a takeover that already moved it is not undone). A released session expires after
 * SESSION_TTL_S. An attached one carries a longer TTL that this instance refreshes for all the
 * sessions it holds on one clock, spread over the interval (`RedisAttachedSessions.ts`), with
 * their current sequence number, so the sessions of an instance that crashed expire too.
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
import { Clock, Effect, Layer, Option } from "effect"
import type { Redis } from "ioredis"
import { AppConfig } from "../config/AppConfig.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { userTopic } from "../protocol/topics.js"
import {
  ANONYMOUS_GROUP,
  type Owner,
  type SessionRecord,
  SessionStore,
  SessionStoreError,
  type SessionStoreShape,
  savedGroupOf,
} from "../session/SessionStore.js"
import {
  ClaimReply,
  IntReply,
  IntsReply,
  MemberEntry,
  SessionHash,
  StringsPairReply,
  StringsReply,
} from "./codec.js"
import { ATTACHED_REFRESH_MS, makeAttachedSessions } from "./RedisAttachedSessions.js"
import { userMessagesSince } from "./RedisBroker.js"
import { RedisClient, type RedisCommandError } from "./RedisClient.js"
import {
  appendAlertsScript,
  claimScript,
  evictScript,
  releaseScript,
  saveInGroupScript,
  sessionKeys,
  takeAlertsScript,
} from "./RedisSessionScripts.js"

const fail = (e: RedisCommandError) => new SessionStoreError({ reason: `${e.command}: ${e.reason}` })

/** Alerts published this long before a crashed owner was last known alive are kept for the restore too. */
const CRASH_REPLAY_MARGIN_MS = 5_000

/** What the claim script found besides the record: who held the session and when it last wrote it. */
interface Claimed {
  readonly previousInstance: string
  /** Remaining TTL (ms) of the hash before the claim, from its owner's last write. */
  readonly previousTtlMs: number
}

const recordOf = (id: string, h: SessionHash): SessionRecord => ({
  id,
  userId: h.user,
  subscriptions: h.subs,
  lastSequence: h.seq,
  owner: h.owner_conn === "" ? null : { instanceId: h.owner_instance, connectionId: h.owner_conn },
})

export const RedisSessionStoreLive = Layer.scoped(
  SessionStore,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const config = yield* AppConfig
    const stats = yield* GatewayStats
    const block = config.sessionSequenceBlock
    const ttlMs = config.sessionTtlS * 1000
    // A crashed owner never releases: its sessions stay restorable about SESSION_TTL_S past its last refresh.
    const attachedTtlMs = ttlMs + 2 * ATTACHED_REFRESH_MS
    const keys = sessionKeys(redis.prefix)
    const held = yield* makeAttachedSessions(redis, config, stats, keys, attachedTtlMs)

    /** A session hash read back: None when there is none, or it does not decode (reported). */
    const decodeRecord = (id: string, h: Readonly<Record<string, string>>): Option.Option<SessionRecord> =>
      Object.keys(h).length === 0
        ? Option.none()
        : Option.map(redis.decode(SessionHash, h), (s) => recordOf(id, s))

    /** When the member entry of `instance` (`RedisClusterView`) says it was last alive; 0 when unknown. */
    const lastBeatOf = (instance: string) =>
      Effect.map(
        redis.exec("HGET members", (r) => r.hget(keys.members, instance)),
        (entry) =>
          entry === null
            ? 0
            : Option.match(redis.decode(MemberEntry, entry), { onNone: () => 0, onSome: (e) => e.at }),
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
        const beat = yield* lastBeatOf(claimed.previousInstance)
        const lastWrite = claimed.previousTtlMs > 0 ? now - (attachedTtlMs - claimed.previousTtlMs) : 0
        const since = Math.max(beat, lastWrite) - CRASH_REPLAY_MARGIN_MS
        const bodies = yield* userMessagesSince(redis, userTopic(record.userId), since)
        if (bodies.length === 0) return
        yield* redis.exec("keep alerts missed in a crash", async (r) => {
          await r.rpush(keys.alerts(record.id), ...bodies)
          await r.pexpire(keys.alerts(record.id), attachedTtlMs)
        })
        yield* Effect.logInfo("alerts missed by a crashed instance kept for the restore").pipe(
          Effect.annotateLogs({ session_id: record.id, alerts: bodies.length }),
        )
      }).pipe(
        // The restore goes on without them; said in the log, not silently.
        Effect.catchAll((e) => Effect.logWarning("alerts missed in a crash not recovered", e.reason)),
      )

    /** Deletes sessions a group's cap pushed out (unless restored meanwhile); how many went. */
    const evict = (command: string, evicted: ReadonlyArray<string>) =>
      evicted.length === 0
        ? Effect.succeed(0)
        : redis
            .query(command, IntsReply, async (r: Redis) => {
              await r.zrem(keys.released, ...evicted)
              return Promise.all(evicted.map((id) => evictScript(r, [keys.session(id), keys.alerts(id)], [])))
            })
            .pipe(Effect.map((deleted) => deleted.filter((d) => d === 1).length))

    const store: SessionStoreShape = {
      create: (record) => held.write(record).pipe(Effect.mapError(fail)),
      get: (id) =>
        redis
          .exec("get session", (r) => r.hgetall(keys.session(id)))
          .pipe(
            Effect.map((h) => decodeRecord(id, h)),
            Effect.mapError(fail),
          ),
      claim: (id, owner: Owner) =>
        Effect.gen(function* () {
          const reply = yield* redis.query("claim session", ClaimReply, (r) =>
            claimScript(
              r,
              [keys.session(id), keys.alerts(id)],
              [owner.instanceId, owner.connectionId, attachedTtlMs, block],
            ),
          )
          if (reply === null) return Option.none()
          yield* redis.exec("ZREM released", (r) => r.zrem(keys.released, id))
          const found = Option.getOrUndefined(decodeRecord(id, reply.hash))
          const record =
            found === undefined || reply.jumpedFrom === ""
              ? found
              : { ...found, sequenceJump: { from: Number(reply.jumpedFrom), to: found.lastSequence } }
          if (record !== undefined) {
            held.reserved(owner.connectionId, record.lastSequence + block)
            if (record.sequenceJump !== undefined) {
              stats.sessionSequenceJumps++
              yield* keepAlertsMissedInCrash(record, reply)
            }
          }
          // Attached again: no longer one of its user's saved sessions (an anonymous one leaves
          // its address's group when it expires there or is popped past the cap).
          const userId = record?.userId
          if (userId != null)
            redis.fire("unindex claimed session", (r) =>
              r.zrem(keys.group(savedGroupOf(userId, undefined)), id),
            )
          return Option.fromNullable(record)
        }).pipe(Effect.mapError(fail)),
      release: (record, owner, addressKey, unsentAlerts) =>
        Effect.gen(function* () {
          held.released(owner.connectionId)
          const stored = yield* redis.query("release session", IntReply, (r) =>
            releaseScript(
              r,
              [keys.session(record.id), keys.alerts(record.id)],
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
            const dropped = yield* redis.query("keep unsent alerts", IntReply, (r) =>
              appendAlertsScript(
                r,
                [keys.session(record.id), keys.alerts(record.id)],
                [config.maxAlertsPerUser, ...unsentAlerts],
              ),
            )
            if (dropped > 0) stats.sessionAlertsDropped += dropped
          }
          const now = yield* Clock.currentTimeMillis
          const cap =
            record.userId === null ? config.maxAnonymousSessionsPerAddress : config.maxSessionsPerUser
          const [inGroup, inTotal] = yield* redis.query(
            "index released session",
            StringsPairReply,
            async (r) => {
              // Pruned on every write, not only when the stats read it: expired ids never pile up.
              await r.zremrangebyscore(keys.released, "-inf", now)
              await r.zadd(keys.released, now + ttlMs, record.id)
              const group = await saveInGroupScript(
                r,
                [keys.group(savedGroupOf(record.userId, addressKey))],
                [now, record.id, now + ttlMs, cap],
              )
              // Anonymous sessions also count in one cluster-wide group (MAX_ANONYMOUS_SESSIONS).
              const total =
                record.userId === null
                  ? await saveInGroupScript(
                      r,
                      [keys.group(ANONYMOUS_GROUP)],
                      [now, record.id, now + ttlMs, config.maxAnonymousSessions],
                    )
                  : []
              return [group, total]
            },
          )
          if (inGroup.length > 0) {
            const n = yield* evict("evict saved sessions", inGroup)
            stats.sessionEvicted(record.userId === null ? "address_limit" : "user_limit", n)
          }
          if (inTotal.length > 0) {
            const n = yield* evict("evict saved anonymous sessions", inTotal)
            stats.sessionEvicted("anonymous_limit", n)
          }
        }).pipe(Effect.mapError(fail)),
      remove: (id) =>
        redis
          .exec("remove session", async (r) => {
            await r.del(keys.session(id), keys.alerts(id))
            await r.zrem(keys.released, id)
          })
          .pipe(Effect.mapError(fail)),
      appendAlerts: (userId, bodies) =>
        Effect.gen(function* () {
          if (bodies.length === 0) return
          const key = keys.group(savedGroupOf(userId, undefined))
          const now = yield* Clock.currentTimeMillis
          const ids = yield* redis.exec("saved sessions of user", (r) =>
            r.zrangebyscore(key, `(${now}`, "+inf"),
          )
          if (ids.length === 0) return
          // One pipelined round trip: every saved session of the user gets every body at once.
          const results = yield* redis.query("append alerts", IntsReply, (r) =>
            Promise.all(
              ids.map((id) =>
                appendAlertsScript(
                  r,
                  [keys.session(id), keys.alerts(id)],
                  [config.maxAlertsPerUser, ...bodies],
                ),
              ),
            ),
          )
          let dropped = 0
          const stale: Array<string> = []
          ids.forEach((id, i) => {
            const n = results[i] ?? 0
            if (n === -1 || n === -2) stale.push(id)
            else dropped += n
          })
          stats.sessionAlertsDropped += dropped
          // Gone, or restored (claimed) since: no longer a saved session of the user.
          if (stale.length > 0) redis.fire("unindex stale sessions", (r) => r.zrem(key, ...stale))
        }).pipe(Effect.mapError(fail)),
      takeAlerts: (id) =>
        redis
          .query("take alerts", StringsReply, (r) => takeAlertsScript(r, [keys.alerts(id)], []))
          .pipe(Effect.mapError(fail)),
      changed: held.changed,
      attached: held.attached,
      savedCount: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        return yield* redis.exec("count released sessions", async (r) => {
          await r.zremrangebyscore(keys.released, "-inf", now)
          return r.zcard(keys.released)
        })
      }).pipe(
        // `/v1/ws/stats` says the count is unknown rather than 0: counted and logged here too.
        Effect.tapError((e) =>
          Effect.sync(() => {
            stats.savedSessionCountFailures++
            redis.report("counting saved sessions", e.reason)
          }),
        ),
        Effect.mapError(fail),
      ),
    }
    return store
  }),
)
