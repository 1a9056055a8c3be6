/**
 * Candles' settings (docs/market-data.md "Candles", docs/limits.md): how much history each bar
 * series keeps, how much of it a subscription starts with, how often the bar in progress is sent,
 * and how long the day's last bars wait for the closing auction's print past its latest end.
 */
import { Config } from "effect"

const positiveInt = (name: string, def: number) =>
  Config.integer(name).pipe(
    Config.withDefault(def),
    Config.validate({ message: `${name} must be a positive integer`, validation: (n) => n > 0 }),
  )

export const candleConfig = Config.all({
  // Closed bars kept per series (code x interval), in memory or in Redis; also the most
  // GET /v1/candles returns. 400 holds a KRX day of 1m bars (381).
  historyBars: positiveInt("CANDLE_HISTORY_BARS", 400),
  // Closed bars in a subscription's snapshot (at most CANDLE_HISTORY_BARS), and the endpoint's default limit.
  snapshotBars: positiveInt("CANDLE_SNAPSHOT_BARS", 120),
  // The bar in progress goes out at most this often per series; closed bars go out on the next tick.
  updateIntervalMs: positiveInt("CANDLE_UPDATE_INTERVAL_MS", 250),
  // MARKET_CLOCK=krx: slack for the closing auction's print. A print up to this long after the
  // auction's latest end (15:30, extended to 15:32:30 by a closing VI: candles/calendar.ts
  // CLOSING_VI_EXTENSION_MS, not a setting) still belongs to the day.
  closeGraceMs: positiveInt("CANDLE_CLOSE_GRACE_MS", 30_000),
})
export type CandleConfig = Config.Config.Success<typeof candleConfig>
