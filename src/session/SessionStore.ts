/**
 * Sessions outlive connections (docs/protocol.md "Sessions"): user, subscriptions, last sequence,
 * and alerts that fired while the user was away. A session is "attached" while a live connection
 * owns it and kept SESSION_TTL_S after it is released. Embedded mode keeps them in memory
 * (here); cluster mode in Redis (`RedisSessionStore.ts`), behind the same interface.
 */
import { Clock, Context, Data, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import type { SubscriptionType } from "../protocol/client.js"

export type Subscriptions = Readonly<Record<SubscriptionType, ReadonlyArray<string>>>
/** The subscriptions of a new session (shared: records are never mutated). */
export const NO_SUBSCRIPTIONS: Subscriptions = { stock: [], market: [], sector: [], candle: [] }

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
  /** The connection's arrival number: a store's periodic work is spread over an interval by it. */
  readonly arrival: number
  readonly sessionId: string
  readonly userId: string | null
  readonly seq: number
  readonly closing: boolean
  /** Set once the connection was asked to close. */
  readonly closeRequest: { readonly code: number } | undefined
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
  /**
   * Detaches the session if `owner` still owns it, storing its final state; starts its TTL.
   * Saved sessions are bounded (`SessionLimits`): per user, and for anonymous ones per client
   * address group (`addressKey`: the address, or its /64 for IPv6) and in total; the oldest
   * saved go first. `unsentAlerts` (open bodies) are alerts the connection could not send (a
   * stuck reader closed 1013): they are kept for the session, ahead of any fired later.
   */
  readonly release: (
    record: Omit<SessionRecord, "owner">,
    owner: Owner,
    addressKey: string | undefined,
    unsentAlerts: ReadonlyArray<string>,
  ) => Effect.Effect<void, SessionStoreError>
  /** Drops a session that will never be restored (replaced by a `reconnect`). */
  readonly remove: (id: string) => Effect.Effect<void, SessionStoreError>
  /**
   * Keeps alerts (open bodies, in order) for every released session of `userId`: costs that
   * user's saved sessions (at most MAX_SESSIONS_PER_USER), not everyone's.
   */
  readonly appendAlerts: (
    userId: string,
    bodies: ReadonlyArray<string>,
  ) => Effect.Effect<void, SessionStoreError>
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
  /**
   * `conn` now holds its session on this instance (created or claimed for it), until the
   * `release` for its owner. Cluster mode keeps the sessions of its held connections alive in
   * Redis (TTL and sequence number) and writes them again should Redis lose them.
   */
  readonly attached: (conn: LiveSession) => void
}

export class SessionStore extends Context.Tag("quotecast/SessionStore")<SessionStore, SessionStoreShape>() {}

/** Bounds on saved sessions (AppConfig, "Limits: per user"); `stats` counts what they drop. */
export interface SessionLimits {
  readonly perUser: number
  readonly anonymousPerAddress: number
  /** Saved anonymous sessions of all addresses together (an attacker with many addresses). */
  readonly anonymousTotal: number
  /** Alerts kept per saved session (the oldest dropped beyond): a user's whole alert quota. */
  readonly alertsPerSession: number
  readonly stats: GatewayStatsImpl
}

export const sessionLimitsOf = (c: AppConfigShape, stats: GatewayStatsImpl): SessionLimits => ({
  perUser: c.maxSessionsPerUser,
  anonymousPerAddress: c.maxAnonymousSessionsPerAddress,
  anonymousTotal: c.maxAnonymousSessions,
  alertsPerSession: c.maxAlertsPerUser,
  stats,
})

/** The group a saved session counts in: its user's, or (anonymous) its client address's. */
export const savedGroupOf = (userId: string | null, addressKey: string | undefined): string =>
  userId !== null ? `user:${userId}` : `address:${addressKey ?? "unknown"}`

/** The group every saved anonymous session also counts in (MAX_ANONYMOUS_SESSIONS). */
export const ANONYMOUS_GROUP = "anonymous"

interface Entry {
  record: SessionRecord
  /** Epoch ms after which a released session is gone; undefined while attached. */
  expiresAt: number | undefined
  alerts: Array<string>
  /** The saved-session group it counts in while released. */
  group: string | undefined
}

const sameOwner = (a: Owner | null, b: Owner): boolean =>
  a !== null && a.instanceId === b.instanceId && a.connectionId === b.connectionId

export const makeMemorySessionStore = (ttlMs: number, limits: SessionLimits) =>
  Effect.gen(function* () {
    const entries = new Map<string, Entry>()
    /** Released sessions by group, oldest release first: caps and alert appends cost one group. */
    const saved = new Map<string, Map<string, Entry>>()
    /** Saved anonymous sessions of every address, oldest release first. */
    const anonymous = new Map<string, Entry>()
    const unsave = (id: string, e: Entry) => {
      anonymous.delete(id)
      if (e.group === undefined) return
      const group = saved.get(e.group)
      group?.delete(id)
      if (group?.size === 0) saved.delete(e.group)
      e.group = undefined
    }
    const save = (id: string, e: Entry, key: string) => {
      unsave(id, e)
      let group = saved.get(key)
      if (group === undefined) {
        group = new Map()
        saved.set(key, group)
      }
      group.set(id, e)
      e.group = key
      const isAnonymous = e.record.userId === null
      const cap = isAnonymous ? limits.anonymousPerAddress : limits.perUser
      for (const [oldest, old] of group) {
        if (group.size <= cap) break
        unsave(oldest, old)
        entries.delete(oldest)
        limits.stats.sessionEvicted(isAnonymous ? "address_limit" : "user_limit")
      }
      if (!isAnonymous) return
      anonymous.set(id, e)
      for (const [oldest, old] of anonymous) {
        if (anonymous.size <= limits.anonymousTotal) break
        unsave(oldest, old)
        entries.delete(oldest)
        limits.stats.sessionEvicted("anonymous_limit")
      }
    }
    const live = (id: string, now: number): Entry | undefined => {
      const e = entries.get(id)
      if (e === undefined) return undefined
      if (e.expiresAt !== undefined && e.expiresAt <= now) {
        unsave(id, e)
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
          entries.set(record.id, { record, expiresAt: undefined, alerts: [], group: undefined })
        }),
      get: (id) => Effect.map(Clock.currentTimeMillis, (now) => Option.fromNullable(live(id, now)?.record)),
      claim: (id, owner) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const e = live(id, now)
          if (e === undefined) return Option.none()
          unsave(id, e)
          e.record = { ...e.record, owner }
          e.expiresAt = undefined
          return Option.some(e.record)
        }),
      release: (record, owner, addressKey, unsentAlerts) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const e = live(record.id, now)
          if (e !== undefined && !sameOwner(e.record.owner, owner)) return
          const entry: Entry = e ?? {
            record: { ...record, owner: null },
            expiresAt: undefined,
            alerts: [],
            group: undefined,
          }
          entry.record = { ...record, owner: null }
          entry.expiresAt = now + ttlMs
          if (unsentAlerts.length > 0) {
            entry.alerts = unsentAlerts.concat(entry.alerts)
            const over = entry.alerts.length - limits.alertsPerSession
            if (over > 0) {
              entry.alerts.splice(0, over)
              limits.stats.sessionAlertsDropped += over
            }
          }
          entries.set(record.id, entry)
          save(record.id, entry, savedGroupOf(record.userId, addressKey))
        }),
      remove: (id) =>
        Effect.sync(() => {
          const e = entries.get(id)
          if (e !== undefined) unsave(id, e)
          entries.delete(id)
        }),
      appendAlerts: (userId, bodies) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const group = saved.get(savedGroupOf(userId, undefined))
          if (group === undefined || bodies.length === 0) return
          for (const id of [...group.keys()]) {
            const e = live(id, now)
            if (e === undefined) continue
            e.alerts.push(...bodies)
            const over = e.alerts.length - limits.alertsPerSession
            if (over > 0) {
              e.alerts.splice(0, over)
              limits.stats.sessionAlertsDropped += over
            }
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
        for (const group of [...saved.values()]) for (const id of [...group.keys()]) if (live(id, now)) n++
        return n
      }),
      changed: () => {},
      attached: () => {},
    }
    return store
  })

export const MemorySessionStoreLive = Layer.scoped(
  SessionStore,
  Effect.flatMap(Effect.all([AppConfig, GatewayStats]), ([c, stats]) =>
    makeMemorySessionStore(c.sessionTtlS * 1000, sessionLimitsOf(c, stats)),
  ),
)
