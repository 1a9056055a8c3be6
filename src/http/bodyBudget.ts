/**
 * The request-body budget: bytes of bodies held at once across all requests
 * (HTTP_BODY_BUDGET_BYTES), and per client address (HTTP_BODY_BUDGET_PER_ADDRESS_BYTES), so many
 * concurrent bodies cannot exhaust the heap and one address cannot starve the others.
 */
import { addressBusy, type BodyRejected, busy } from "./bodyRejections.js"

/** The body bytes held by requests in flight, against `BodyLimits.budgetBytes`, and per address. */
export interface Budget {
  used: number
  readonly limit: number
  readonly perAddressLimit: number
  /** Bytes held per address key; an address holding nothing has no entry. */
  readonly byAddress: Map<string, number>
  /** Told the bytes in use after every change (the `quotecast_http_body_budget_used_bytes` gauge). */
  readonly report: (used: number) => void
}

/** What one request holds of the budget, given back when it is answered. */
export interface Held {
  bytes: number
  readonly key: string
}

/** Why `bytes` more cannot be held for `held` now; undefined when they can. */
export const overBudget = (budget: Budget, held: Held, bytes: number): BodyRejected | undefined => {
  if ((budget.byAddress.get(held.key) ?? 0) + bytes > budget.perAddressLimit)
    return addressBusy(budget.perAddressLimit)
  if (budget.used + bytes > budget.limit) return busy(budget.limit)
  return undefined
}

export const take = (budget: Budget, held: Held, bytes: number) => {
  budget.used += bytes
  budget.byAddress.set(held.key, (budget.byAddress.get(held.key) ?? 0) + bytes)
  held.bytes += bytes
  budget.report(budget.used)
}

export const giveBack = (budget: Budget, held: Held) => {
  if (held.bytes === 0) return
  budget.used -= held.bytes
  const left = (budget.byAddress.get(held.key) ?? 0) - held.bytes
  if (left > 0) budget.byAddress.set(held.key, left)
  else budget.byAddress.delete(held.key)
  held.bytes = 0
  budget.report(budget.used)
}

export const makeBudget = (
  limit: number,
  perAddressLimit: number,
  report: (used: number) => void,
): Budget => ({
  used: 0,
  limit,
  perAddressLimit,
  byAddress: new Map(),
  report,
})
