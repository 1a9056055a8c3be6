/**
 * Users' price alerts. The store is the source of truth and the arbiter of "fires once":
 * `markFired` succeeds for exactly one caller per alert, which is what makes an alert fire once
 * even when several instances evaluate it (the Redis store does it atomically).
 */
import { Context, Data, Effect, Layer } from "effect"
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

export class AlertStoreError extends Data.TaggedError("AlertStoreError")<{ readonly reason: string }> {}

export interface AlertStoreShape {
  readonly create: (alert: AlertRecord) => Effect.Effect<void, AlertStoreError>
  readonly list: (userId: string) => Effect.Effect<ReadonlyArray<AlertRecord>, AlertStoreError>
  /** Deletes the user's own alert; false when there is no such alert of that user. */
  readonly remove: (userId: string, id: string) => Effect.Effect<boolean, AlertStoreError>
  /** Active (unfired) alerts on a code. Called per price update: must be cheap. */
  readonly activeFor: (code: string) => Effect.Effect<ReadonlyArray<AlertRecord>, AlertStoreError>
  /** Marks fired; true for exactly one caller. */
  readonly markFired: (id: string, at: number) => Effect.Effect<boolean, AlertStoreError>
}

export class AlertStore extends Context.Tag("quotecast/AlertStore")<AlertStore, AlertStoreShape>() {}

export const makeMemoryAlertStore = (): AlertStoreShape => {
  const byId = new Map<string, AlertRecord>()
  const activeByCode = new Map<string, Map<string, AlertRecord>>()
  return {
    create: (alert) =>
      Effect.sync(() => {
        byId.set(alert.id, alert)
        let m = activeByCode.get(alert.code)
        if (m === undefined) {
          m = new Map()
          activeByCode.set(alert.code, m)
        }
        m.set(alert.id, alert)
      }),
    list: (userId) => Effect.sync(() => [...byId.values()].filter((a) => a.userId === userId)),
    remove: (userId, id) =>
      Effect.sync(() => {
        const a = byId.get(id)
        if (a === undefined || a.userId !== userId) return false
        byId.delete(id)
        activeByCode.get(a.code)?.delete(id)
        return true
      }),
    activeFor: (code) => Effect.sync(() => [...(activeByCode.get(code)?.values() ?? [])]),
    markFired: (id, at) =>
      Effect.sync(() => {
        const a = byId.get(id)
        if (a === undefined || a.firedAt !== null) return false
        byId.set(id, { ...a, firedAt: at })
        activeByCode.get(a.code)?.delete(id)
        return true
      }),
  }
}

export const MemoryAlertStoreLive = Layer.sync(AlertStore, makeMemoryAlertStore)
