/**
 * Sessions outlive connections (PROTOCOL.md lifecycle 4-5): user, subscriptions, last sequence,
 * and alerts that fired while the user was away. A session is "attached" while a live connection
 * owns it and kept SESSION_TTL_S after it is released. Embedded mode keeps them in memory
 * (here); cluster mode in Redis (`RedisSessionStore.ts`), behind the same interface.
 */
import { Clock, Context, Data, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { SubscriptionType } from "../protocol/client.js"

export type Subscriptions = Readonly<Record<SubscriptionType, ReadonlyArray<string>>>
/** The subscriptions of a new session (shared: records are never mutated). */
export const NO_SUBSCRIPTIONS: Subscriptions = { stock: [], market: [], sector: [] }

/** Who holds a session: one connection on one instance. */
export interface Owner {
  readonly instanceId: string
  readonly connectionId: string
}

export interface SessionRecord {
  readonly id: string
  readonly userId: string | null
  readonly subscriptions: Subscriptions
  readonly lastSequence: number
  readonly owner: Owner | null
  /**
   * Set by `claim` when the session's previous owner never released it (its instance crashed):
   * the numbers it used after `from` are unknown, so numbering resumes after `to`, the ceiling it
   * had reserved (`lastSequence` is then `to`).
   */
  readonly sequenceJump?: SequenceJump | undefined
}

export interface SequenceJump {
  readonly from: number
  readonly to: number
}

/** What the store reads of a live connection to persist its session (`Conn` is one). */
export interface LiveSession {
  /** The connection id (the session's owner). */
  readonly id: string
  readonly sessionId: string
  readonly seq: number
  readonly closing: boolean
  subscriptions(): Subscriptions
}

export class SessionStoreError extends Data.TaggedError("SessionStoreError")<{ readonly reason: string }> {}

export interface SessionStoreShape {
  /** Stores a new session owned by `record.owner`. */
  readonly create: (record: SessionRecord) => Effect.Effect<void, SessionStoreError>
  readonly get: (id: string) => Effect.Effect<Option.Option<SessionRecord>, SessionStoreError>
  /**
   * Makes `owner` the session's owner if it has none or `expected` owns it (takeover after the
   * old owner was told to go). Returns the record as claimed, or None when it is gone.
   */
  readonly claim: (id: string, owner: Owner) => Effect.Effect<Option.Option<SessionRecord>, SessionStoreError>
  /** Detaches the session if `owner` still owns it, storing its final state; starts its TTL. */
  readonly release: (
    record: Omit<SessionRecord, "owner">,
    owner: Owner,
  ) => Effect.Effect<void, SessionStoreError>
  /** Drops a session that will never be restored (replaced by a `reconnect`). */
  readonly remove: (id: string) => Effect.Effect<void, SessionStoreError>
  /** Keeps an alert (open body) for every released session of `userId`. */
  readonly appendAlert: (userId: string, body: string) => Effect.Effect<void, SessionStoreError>
  /** Alerts kept for a session, removing them. */
  readonly takeAlerts: (id: string) => Effect.Effect<ReadonlyArray<string>, SessionStoreError>
  /** Released, unexpired sessions (the stats' `saved_sessions`). */
  readonly savedCount: Effect.Effect<number, SessionStoreError>
  /**
   * The connection's subscriptions changed. Cluster mode writes them to Redis on its persistence
   * clock (coalesced: one write per changed session per tick), so they survive a crash of this
   * instance; embedded mode keeps sessions in this process and saves them on release.
   */
  readonly changed: (conn: LiveSession) => void
}

export class SessionStore extends Context.Tag("quotecast/SessionStore")<SessionStore, SessionStoreShape>() {}

interface Entry {
  record: SessionRecord
  /** Epoch ms after which a released session is gone; undefined while attached. */
  expiresAt: number | undefined
  alerts: Array<string>
}

const sameOwner = (a: Owner | null, b: Owner): boolean =>
  a !== null && a.instanceId === b.instanceId && a.connectionId === b.connectionId

export const makeMemorySessionStore = (ttlMs: number) =>
  Effect.gen(function* () {
    const entries = new Map<string, Entry>()
    const live = (id: string, now: number): Entry | undefined => {
      const e = entries.get(id)
      if (e === undefined) return undefined
      if (e.expiresAt !== undefined && e.expiresAt <= now) {
        entries.delete(id)
        return undefined
      }
      return e
    }
    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      for (const id of entries.keys()) live(id, now)
    })
    // One clock for all sessions: expired entries are dropped lazily on access and by this sweep.
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced("5 seconds")))
    const store: SessionStoreShape = {
      create: (record) =>
        Effect.sync(() => {
          entries.set(record.id, { record, expiresAt: undefined, alerts: [] })
        }),
      get: (id) => Effect.map(Clock.currentTimeMillis, (now) => Option.fromNullable(live(id, now)?.record)),
      claim: (id, owner) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const e = live(id, now)
          if (e === undefined) return Option.none()
          e.record = { ...e.record, owner }
          e.expiresAt = undefined
          return Option.some(e.record)
        }),
      release: (record, owner) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const e = live(record.id, now)
          if (e === undefined) {
            entries.set(record.id, { record: { ...record, owner: null }, expiresAt: now + ttlMs, alerts: [] })
            return
          }
          if (!sameOwner(e.record.owner, owner)) return
          e.record = { ...record, owner: null }
          e.expiresAt = now + ttlMs
        }),
      remove: (id) =>
        Effect.sync(() => {
          entries.delete(id)
        }),
      appendAlert: (userId, body) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          for (const [id, e] of entries) {
            if (e.record.userId === userId && e.record.owner === null && live(id, now) !== undefined)
              e.alerts.push(body)
          }
        }),
      takeAlerts: (id) =>
        Effect.sync(() => {
          const e = entries.get(id)
          if (e === undefined) return []
          const alerts = e.alerts
          e.alerts = []
          return alerts
        }),
      savedCount: Effect.map(Clock.currentTimeMillis, (now) => {
        let n = 0
        for (const [id, e] of entries) if (e.record.owner === null && live(id, now) !== undefined) n++
        return n
      }),
      changed: () => {},
    }
    return store
  })

export const MemorySessionStoreLive = Layer.scoped(
  SessionStore,
  Effect.flatMap(AppConfig, (c) => makeMemorySessionStore(c.sessionTtlS * 1000)),
)
