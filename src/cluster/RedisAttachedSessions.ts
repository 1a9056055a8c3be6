/**
 * The sessions this instance holds (attached to its live connections), kept alive in Redis
 * (module comment of `RedisSessionStore.ts`). The store tells it which connections hold a
 * session here (`attached`) and when they let go (`released`), so it keeps its own list rather
 * than reading the connection registry. On clocks for the whole instance:
 * - refresh: every attached session's TTL and sequence number, each in its slice of
 *   ATTACHED_REFRESH_MS (`lifecycle/Slices.ts`), so a crashed instance's sessions expire too;
 * - persistence (SESSION_PERSIST_INTERVAL_MS): changed subscriptions, and the next block of
 *   sequence numbers once half the reserved one is used, one script per session per tick;
 * - after an outage: the sessions Redis does not have (all, if it lost its data) written again.
 */
import { Effect, Schedule, type Scope } from "effect"
import type { AppConfigShape } from "../config/AppConfig.js"
import { sweepInSlices } from "../lifecycle/Slices.js"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import type { LiveSession, SessionRecord } from "../session/SessionStore.js"
import { IntsReply } from "./codec.js"
import type { RedisClientShape, RedisCommandError } from "./RedisClient.js"
import { type SessionKeys, saveScript, touchScript } from "./RedisSessionScripts.js"

/** How often the TTL and sequence number of attached sessions are refreshed. */
export const ATTACHED_REFRESH_MS = 30_000

export interface AttachedSessions {
  /** Stores a new session owned by `record.owner`, reserving its first block of numbers. */
  readonly write: (record: SessionRecord) => Effect.Effect<void, RedisCommandError>
  /** Redis holds `ceiling` for the session the connection `connectionId` claimed. */
  readonly reserved: (connectionId: string, ceiling: number) => void
  readonly attached: (conn: LiveSession) => void
  readonly changed: (conn: LiveSession) => void
  /** The connection `connectionId` lets go of its session: no longer kept alive from here. */
  readonly released: (connectionId: string) => void
}

export const makeAttachedSessions = (
  redis: RedisClientShape,
  config: AppConfigShape,
  stats: GatewayStatsImpl,
  keys: SessionKeys,
  attachedTtlMs: number,
): Effect.Effect<AttachedSessions, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { instanceId } = redis
    const block = config.sessionSequenceBlock
    /** By connection id: the connections holding a session here. */
    const held = new Map<string, LiveSession>()
    /** By connection id: the sequence ceiling Redis holds for the session that connection owns. */
    const reserved = new Map<string, number>()
    /** Connections whose subscriptions changed since the last tick. */
    const dirty = new Set<LiveSession>()
    const isLive = (conn: LiveSession) => !conn.closing && held.get(conn.id) === conn

    const write = (record: SessionRecord) =>
      redis.exec("create session", async (r) => {
        const results = await r
          .multi()
          .hset(keys.session(record.id), {
            user: JSON.stringify(record.userId),
            subs: JSON.stringify(record.subscriptions),
            seq: String(record.lastSequence),
            ceil: String(record.lastSequence + block),
            owner_instance: record.owner?.instanceId ?? "",
            owner_conn: record.owner?.connectionId ?? "",
          })
          .pexpire(keys.session(record.id), attachedTtlMs)
          .exec()
        const failed = results?.find(([err]) => err !== null)?.[0]
        if (failed) throw failed
        if (record.owner !== null) reserved.set(record.owner.connectionId, record.lastSequence + block)
      })

    // ---- persistence, on one clock ----
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
      for (const conn of held.values()) {
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
        .query("persist sessions", IntsReply, (r) =>
          Promise.all(
            batch.map(({ conn, ceiling }) =>
              saveScript(
                r,
                [keys.session(conn.sessionId)],
                [instanceId, conn.id, JSON.stringify(conn.subscriptions()), conn.seq, ceiling, attachedTtlMs],
              ),
            ),
          ),
        )
        .pipe(
          Effect.flatMap((results) =>
            Effect.sync(() => {
              batch.forEach(({ conn, ceiling }, i) => {
                if (results[i] !== 1) return
                stats.sessionsPersisted++
                const before = reserved.get(conn.id)
                if (before !== undefined && before < ceiling) reserved.set(conn.id, ceiling)
              })
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

    // One clock for every attached session of this instance (TTL and sequence number), each
    // connection's in its slice of the interval: no burst of every session's script at once.
    const refresh = (slice: ReadonlyArray<LiveSession>) =>
      redis
        .exec("refresh sessions", (r) =>
          Promise.all(
            slice.map((conn) =>
              touchScript(r, [keys.session(conn.sessionId)], [instanceId, conn.id, conn.seq, attachedTtlMs]),
            ),
          ),
        )
        .pipe(Effect.catchAll((e) => Effect.logWarning("refreshing sessions failed", e.reason)))
    yield* Effect.forkScoped(sweepInSlices(() => held.values(), ATTACHED_REFRESH_MS, refresh))

    // Redis lost its data: the sessions of our live connections exist only here now. Without a
    // loss, only the sessions whose creation failed during the outage (nothing reserved for them)
    // are missing: written now, so they too survive a later crash of this instance.
    yield* redis.onRecovered(({ dataLost }) => {
      if (dataLost) stats.redisDataLost++
      const missing = [...held.values()].filter(
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

    return {
      write,
      reserved: (connectionId, ceiling) => {
        reserved.set(connectionId, ceiling)
      },
      attached: (conn) => {
        held.set(conn.id, conn)
      },
      changed: (conn) => {
        dirty.add(conn)
      },
      released: (connectionId) => {
        held.delete(connectionId)
        reserved.delete(connectionId)
      },
    }
  })
