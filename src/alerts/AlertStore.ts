/**
 * Users' price alerts. The store is the source of truth and the arbiter of "fires once":
 * `markFired` wins each alert for exactly one caller, which is what makes an alert fire once
 * even when several instances evaluate it (the Redis store does it atomically).
 *
 * Every per-user operation (create with its cap, list, remove) touches only that user's alerts:
 * the stores index alerts by user, and a user holds at most MAX_ALERTS_PER_USER of them, active
 * or fired (a fired alert stays listed for FIRED_RETENTION_MS, then it is gone and frees its slot).
 */
import { Clock, Context, Data, Effect, Layer } from "effect"
import type { AlertType } from "../protocol/server.js"

export interface AlertRecord {
  readonly id: string
  readonly userId: string
  readonly code: string
  readonly alertType: AlertType
  readonly threshold: number
  readonly createdAt: number
  readonly firedAt: number | null
}

/** How long a fired alert stays listed (and counts toward its user's cap). */
export const FIRED_RETENTION_MS = 7 * 24 * 3600 * 1000

export class AlertStoreError extends Data.TaggedError("AlertStoreError")<{ readonly reason: string }> {}

/** The user already holds `limit` alerts (active, or fired within the retention). */
export class AlertLimitReached extends Data.TaggedError("AlertLimitReached")<{ readonly limit: number }> {}

export interface AlertStoreShape {
  /** Stores a new alert unless its user already holds `limit` alerts. */
  readonly create: (
    alert: AlertRecord,
    limit: number,
  ) => Effect.Effect<void, AlertStoreError | AlertLimitReached>
  /** The user's alerts, oldest first: costs the user's own alerts, not everyone's. */
  readonly list: (userId: string) => Effect.Effect<ReadonlyArray<AlertRecord>, AlertStoreError>
  /** Deletes the user's own alert; false when there is no such alert of that user. */
  readonly remove: (userId: string, id: string) => Effect.Effect<boolean, AlertStoreError>
  /** Active (unfired) alerts on a code. Called per price update: must be cheap. */
  readonly activeFor: (code: string) => Effect.Effect<ReadonlyArray<AlertRecord>, AlertStoreError>
  /**
   * Marks the alerts fired at `at` under the caller's `token`, all in one go (one Redis round
   * trip). Each alert is won by exactly one token, on any instance; a call repeated with the
   * same token wins again what that token already won, so the alerts of `unknown` must be tried
   * again with the same token (never a new one: Redis may have marked them under this one).
   */
  readonly markFired: (
    alerts: ReadonlyArray<AlertRecord>,
    at: number,
    token: string,
  ) => Effect.Effect<MarkFiredResult, AlertStoreError>
}

export interface MarkFiredResult {
  /** Ids won by this call's token: fired now, to be delivered by the caller. */
  readonly won: ReadonlySet<string>
  /** Ids whose outcome is unknown (the command failed or timed out, and may have run). */
  readonly unknown: ReadonlyArray<string>
}

export class AlertStore extends Context.Tag("quotecast/AlertStore")<AlertStore, AlertStoreShape>() {}

export const makeMemoryAlertStore = (): AlertStoreShape => {
  const byId = new Map<string, AlertRecord>()
  /** Each user's alerts in creation order. */
  const byUser = new Map<string, Map<string, AlertRecord>>()
  const activeByCode = new Map<string, Map<string, AlertRecord>>()
  /** The token that fired each fired alert (the same contract as Redis's `fired_by`). */
  const firedBy = new Map<string, string>()
  const drop = (a: AlertRecord) => {
    byId.delete(a.id)
    firedBy.delete(a.id)
    activeByCode.get(a.code)?.delete(a.id)
    const mine = byUser.get(a.userId)
    mine?.delete(a.id)
    if (mine?.size === 0) byUser.delete(a.userId)
  }
  /** The user's alerts with fired ones past the retention dropped (they are gone in Redis too). */
  const alertsOf = (userId: string, now: number): Map<string, AlertRecord> | undefined => {
    const mine = byUser.get(userId)
    if (mine === undefined) return undefined
    for (const a of mine.values()) if (a.firedAt !== null && a.firedAt + FIRED_RETENTION_MS <= now) drop(a)
    return byUser.get(userId)
  }
  return {
    create: (alert, limit) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if ((alertsOf(alert.userId, now)?.size ?? 0) >= limit)
          return Effect.fail(new AlertLimitReached({ limit }))
        byId.set(alert.id, alert)
        let mine = byUser.get(alert.userId)
        if (mine === undefined) {
          mine = new Map()
          byUser.set(alert.userId, mine)
        }
        mine.set(alert.id, alert)
        let m = activeByCode.get(alert.code)
        if (m === undefined) {
          m = new Map()
          activeByCode.set(alert.code, m)
        }
        m.set(alert.id, alert)
        return Effect.void
      }),
    list: (userId) =>
      Effect.map(Clock.currentTimeMillis, (now) => [...(alertsOf(userId, now)?.values() ?? [])]),
    remove: (userId, id) =>
      Effect.sync(() => {
        const a = byId.get(id)
        if (a === undefined || a.userId !== userId) return false
        drop(a)
        return true
      }),
    activeFor: (code) => Effect.sync(() => [...(activeByCode.get(code)?.values() ?? [])]),
    markFired: (alerts, at, token) =>
      Effect.sync(() => {
        const won = new Set<string>()
        for (const { id } of alerts) {
          const a = byId.get(id)
          if (a === undefined) continue
          if (a.firedAt !== null) {
            if (firedBy.get(id) === token) won.add(id)
            continue
          }
          firedBy.set(id, token)
          const fired = { ...a, firedAt: at }
          byId.set(id, fired)
          byUser.get(a.userId)?.set(id, fired)
          activeByCode.get(a.code)?.delete(id)
          won.add(id)
        }
        return { won, unknown: [] }
      }),
  }
}

export const MemoryAlertStoreLive = Layer.sync(AlertStore, makeMemoryAlertStore)
