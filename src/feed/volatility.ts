/**
 * KRX volatility interruptions (VI) as pure rules, used by the simulator:
 *
 * - static VI: the price would move 10% or more from the static base price, which is the last
 *   single-price auction price of the day (opening auction, a VI's auction), or before the open
 *   the base price (previous close);
 * - dynamic VI: the price would move from the last execution by 3% or more for a KOSPI 200
 *   constituent, 6% for other stocks, in the continuous session; 2% and 4% in the closing auction.
 *
 * A VI turns the stock into a 2-minute single-price auction: no trades, then one execution at the
 * auction price, which becomes the new static base. Real KRX ends a VI auction at a random moment
 * within 30 s after the 2 minutes; the simulator ends it at exactly 2 minutes.
 *
 * Thresholds are compared in integer per-mille so a price exactly at the threshold triggers and one
 * tick inside does not, whatever float rounding would say.
 */
import type { ViType } from "../protocol/server.js"

export const VI_DURATION_MS = 120_000

/**
 * Real KRX ends a VI auction at a random moment within this long after VI_DURATION_MS (the
 * simulator does not: its auctions end at exactly VI_DURATION_MS). A closing VI's execution, the
 * stock's closing price, can therefore come as late as 15:30 + VI_DURATION_MS + this.
 */
export const VI_RANDOM_END_MS = 30_000

export const STATIC_VI_PERMIL = 100

export type MatchingPhase = "continuous" | "closing_auction"

/** Dynamic VI threshold in per-mille of the last execution. */
export const dynamicViPermil = (kospi200: boolean, phase: MatchingPhase): number =>
  phase === "continuous" ? (kospi200 ? 30 : 60) : kospi200 ? 20 : 40

/** Whether `price` is `permil`/1000 or more away from `reference`, either way. */
export const breaches = (price: number, reference: number, permil: number): boolean =>
  Math.round(price * 1000) >= Math.round(reference * (1000 + permil)) ||
  Math.round(price * 1000) <= Math.round(reference * (1000 - permil))

export interface ViTrigger {
  readonly viType: ViType
  /** The price the move was measured from. */
  readonly reference: number
  readonly reason: string
}

/**
 * The VI a tentative execution at `price` would trigger, or undefined. Static is checked first:
 * a move that breaches both is reported as static (its band is the wider one).
 */
export const viTriggerAt = (input: {
  readonly price: number
  readonly staticBase: number
  readonly lastExecution: number
  readonly kospi200: boolean
  readonly phase: MatchingPhase
}): ViTrigger | undefined => {
  const { price, staticBase, lastExecution, kospi200, phase } = input
  if (breaches(price, staticBase, STATIC_VI_PERMIL)) {
    const pct = ((price - staticBase) / staticBase) * 100
    return {
      viType: "static",
      reference: staticBase,
      reason: `static VI: ${price} is ${pct.toFixed(2)}% from the static base price ${staticBase} (threshold ±10%)`,
    }
  }
  const permil = dynamicViPermil(kospi200, phase)
  if (breaches(price, lastExecution, permil)) {
    const pct = ((price - lastExecution) / lastExecution) * 100
    return {
      viType: "dynamic",
      reference: lastExecution,
      reason: `dynamic VI: ${price} is ${pct.toFixed(2)}% from the last execution ${lastExecution} (threshold ±${permil / 10}%${phase === "closing_auction" ? " in the closing auction" : ""}${kospi200 ? ", KOSPI 200" : ""})`,
    }
  }
  return undefined
}
