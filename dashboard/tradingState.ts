/**
 * The selected stock's trading state as the badge shows it: no badge while it trades, "VI" or
 * "Halted" with the reason, and the time left until the auction's expected end. Pure (no DOM), so
 * the rules are tested in Node (`test/dashboard/tradingState.test.ts`); `panels/tradingState.ts`
 * draws it.
 */
import type { InstrumentStatus } from "../src/protocol/server.js"

export interface Badge {
  readonly kind: "vi" | "halted"
  /** "Static VI", "Dynamic VI" or "Halted". */
  readonly label: string
  /** "1:42" until the expected end, "ending" once it passed, "" when no end is known. */
  readonly countdown: string
  readonly title: string
}

/** m:ss left until `endMillis`, never negative. */
export const countdownText = (endMillis: number, nowMillis: number): string => {
  const left = Math.ceil((endMillis - nowMillis) / 1000)
  if (left <= 0) return "ending"
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`
}

export const badgeOf = (status: InstrumentStatus | undefined, nowMillis: number): Badge | undefined => {
  if (status === undefined || status.status === "trading") return undefined
  const end = status.expected_end === undefined ? Number.NaN : Date.parse(status.expected_end)
  const countdown = Number.isNaN(end) ? "" : countdownText(end, nowMillis)
  if (status.status === "halted") return { kind: "halted", label: "Halted", countdown, title: status.reason }
  const label = status.vi_type === "static" ? "Static VI" : status.vi_type === "dynamic" ? "Dynamic VI" : "VI"
  const reference = status.reference_price === undefined ? "" : ` (reference ${status.reference_price})`
  return { kind: "vi", label, countdown, title: `${status.reason}${reference}` }
}
