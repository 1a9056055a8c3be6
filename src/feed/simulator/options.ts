/**
 * The simulator's settings: what FEED_RATE, FEED_BOOKS and MARKET_CLOCK give it, and what tests and
 * the benchmark's feed set beside them. A module of their own because the engine and its per-stock
 * state both read them.
 */
export interface SimulatorOptions {
  readonly seed: number
  /** Trade ticks per second over the whole universe (FEED_RATE). */
  readonly rate: number
  /** Group interval in ms. */
  readonly intervalMs?: number
  /** Minimum ms between two index updates of a market. */
  readonly indexIntervalMs?: number
  /**
   * Daily volatility (standard deviation of the daily log return) of a typical stock; each stock
   * gets its own around it (KOSPI 200 constituents lower, KOSDAQ higher).
   */
  readonly dailySigma?: number
  /**
   * Whether a trade tick also emits an `orderbook_update` (FEED_BOOKS, default true). Off, a tick
   * is exactly one message per subscriber, which is what the benchmark's baselines are fed. The
   * book is still computed (and recorded in MarketState), so the PRNG sequence does not change.
   */
  readonly books?: boolean
  /**
   * Only these stocks trade (benchmarks: the same N codes in every server). Unknown codes are
   * ignored; undefined means the whole universe.
   */
  readonly codes?: ReadonlyArray<string>
  /**
   * KRX sessions (MARKET_CLOCK=krx): opening auction at 09:00, closing auction 15:20-15:30 with
   * its single execution at 15:30, and the U-shaped trade rate across the continuous session.
   * Off (always_open), the day opens when the engine starts and never closes.
   */
  readonly krxSessions?: boolean
  /** The day's shape: opening gaps, jumps and a few news-driven small caps (default true). */
  readonly dayShape?: boolean
}
