/**
 * The client's desired subscriptions: what it re-sends after a failed restore, and what it
 * reconciles against `restored_subscriptions` after a successful one.
 */
import type { Subscribe, SubscriptionType, Unsubscribe } from "../protocol/client.js"
import type { SubscriptionSet } from "../protocol/server.js"

export type Desired = Readonly<Record<SubscriptionType, ReadonlySet<string>>>

export const emptyDesired: Desired = {
  stock: new Set(),
  market: new Set(),
  sector: new Set(),
  candle: new Set(),
}

/** The server accepts 1..100 targets per message. */
export const MAX_TARGETS_PER_MESSAGE = 100

export const TYPES: ReadonlyArray<SubscriptionType> = ["stock", "market", "sector", "candle"]

export const addTargets = (d: Desired, type: SubscriptionType, targets: Iterable<string>): Desired => ({
  ...d,
  [type]: new Set([...d[type], ...targets]),
})

export const removeTargets = (d: Desired, type: SubscriptionType, targets: Iterable<string>): Desired => {
  const next = new Set(d[type])
  for (const t of targets) next.delete(t)
  return { ...d, [type]: next }
}

export const toSubscriptionSet = (d: Desired): SubscriptionSet => {
  const out: { -readonly [K in SubscriptionType]?: Array<string> } = {}
  for (const type of TYPES) if (d[type].size > 0) out[type] = [...d[type]]
  return out
}

export const fromSubscriptionSet = (s: SubscriptionSet): Desired => ({
  stock: new Set(s.stock ?? []),
  market: new Set(s.market ?? []),
  sector: new Set(s.sector ?? []),
  candle: new Set(s.candle ?? []),
})

/** Messages that subscribe (or unsubscribe) `targets`, at most 100 per message. */
export const chunkedMessages = (
  kind: "subscribe" | "unsubscribe",
  type: SubscriptionType,
  targets: ReadonlyArray<string>,
): Array<Subscribe | Unsubscribe> => {
  const out: Array<Subscribe | Unsubscribe> = []
  for (let i = 0; i < targets.length; i += MAX_TARGETS_PER_MESSAGE) {
    out.push({ type: kind, subscription_type: type, targets: targets.slice(i, i + MAX_TARGETS_PER_MESSAGE) })
  }
  return out
}

/** Everything in `d`, as subscribe messages (after a failed restore or on a fresh session). */
export const subscribeAll = (d: Desired): Array<Subscribe | Unsubscribe> =>
  TYPES.flatMap((type) => chunkedMessages("subscribe", type, [...d[type]]))

/**
 * After a successful restore the server holds `restored`; send only the difference from what
 * the caller wants now (changes made while disconnected).
 */
export const reconcile = (desired: Desired, restored: SubscriptionSet): Array<Subscribe | Unsubscribe> => {
  const server = fromSubscriptionSet(restored)
  return TYPES.flatMap((type) => [
    ...chunkedMessages(
      "subscribe",
      type,
      [...desired[type]].filter((t) => !server[type].has(t)),
    ),
    ...chunkedMessages(
      "unsubscribe",
      type,
      [...server[type]].filter((t) => !desired[type].has(t)),
    ),
  ])
}
