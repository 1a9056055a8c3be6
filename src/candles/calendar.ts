/**
 * Which bar a trade belongs to. Pure arithmetic on epoch millis, in Asia/Seoul wall-clock time
 * (UTC+9 all year, no daylight saving time):
 *
 * - `continuous` (MARKET_CLOCK=always_open): intraday bars on the clock (1m, 5m, 15m on their
 *   minutes, 1h on the hour), a `1d` bar per Seoul calendar day; every trade has a bar.
 * - `krx` (MARKET_CLOCK=krx): only trades in the regular session have bars, weekdays 09:00-15:30
 *   (no lunch break: KRX trades through midday). Intraday bars are aligned to 09:00, so the 1h
 *   bars are 09:00, 10:00, ... and 15:00-15:30. The closing single-price auction (15:20-15:30)
 *   ends in one execution at 15:30, or, when that price calls a VI, KRX extends the auction by
 *   the VI's (`CLOSING_VI_EXTENSION_MS`) and its one execution, up to 15:32:30, is the closing
 *   price. A print from 15:30 until that latest end plus the grace (`CANDLE_CLOSE_GRACE_MS`, slack
 *   for a print stamped or arriving late) belongs to the session's last bar of each interval, and
 *   those bars close only then. A `1d` bar is a trading day. Exchange holidays are not modelled
 *   (as in `feed/MarketClock.ts`).
 *
 * A `1d` bar's `time` is its day's midnight in Seoul; an intraday bar's is its first instant.
 */
import { VI_DURATION_MS, VI_RANDOM_END_MS } from "../feed/volatility.js"
import type { CandleInterval } from "../protocol/client.js"

export type Calendar = "krx" | "continuous"

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const KST_OFFSET_MS = 9 * HOUR
const OPEN = 9 * HOUR
const CLOSE = 15 * HOUR + 30 * MINUTE

/**
 * How much later than 15:30 the closing auction can end: a VI called by the closing price turns
 * into a 2-minute single-price auction (ending within 30 s after that on KRX), whose execution is
 * the day's close. A market rule rather than a setting, so no CANDLE_CLOSE_GRACE_MS can leave a
 * closing VI's execution out of the day's bars.
 */
export const CLOSING_VI_EXTENSION_MS = VI_DURATION_MS + VI_RANDOM_END_MS

export const INTERVAL_MS: Readonly<Record<Exclude<CandleInterval, "1d">, number>> = {
  "1m": MINUTE,
  "5m": 5 * MINUTE,
  "15m": 15 * MINUTE,
  "1h": HOUR,
}

export interface Bucket {
  /** Epoch millis of the bar's `time`. */
  readonly start: number
  /** Epoch millis from which the bar is over: it closes then, and no trade joins it after. */
  readonly closeAt: number
}

const isWeekday = (localDayStart: number): boolean => {
  const dow = new Date(localDayStart).getUTCDay()
  return dow >= 1 && dow <= 5
}

/** The bar of `interval` that a trade at `t` belongs to; undefined outside the sessions. */
export const bucketOf = (
  calendar: Calendar,
  interval: CandleInterval,
  t: number,
  closeGraceMs: number,
): Bucket | undefined => {
  // "Seoul wall clock as if it were UTC" millis; answers are converted back.
  const local = t + KST_OFFSET_MS
  const day = Math.floor(local / DAY) * DAY
  if (calendar === "continuous") {
    if (interval === "1d") return { start: day - KST_OFFSET_MS, closeAt: day + DAY - KST_OFFSET_MS }
    const len = INTERVAL_MS[interval]
    const start = Math.floor(local / len) * len
    return { start: start - KST_OFFSET_MS, closeAt: start + len - KST_OFFSET_MS }
  }
  if (!isWeekday(day)) return undefined
  const inDay = local - day
  // Prints are the day's until the closing auction's latest end (a closing VI's) plus the grace.
  const lastPrint = CLOSE + CLOSING_VI_EXTENSION_MS + closeGraceMs
  if (inDay < OPEN || inDay >= lastPrint) return undefined
  const sessionEnd = day + lastPrint - KST_OFFSET_MS
  if (interval === "1d") return { start: day - KST_OFFSET_MS, closeAt: sessionEnd }
  const len = INTERVAL_MS[interval]
  // The closing print (at 15:30, or a closing VI's later) joins the last bar that starts before the close.
  const at = Math.min(inDay, CLOSE - 1)
  const start = OPEN + Math.floor((at - OPEN) / len) * len
  const closeAt = start + len >= CLOSE ? sessionEnd : start + len + day - KST_OFFSET_MS
  return { start: start + day - KST_OFFSET_MS, closeAt }
}
