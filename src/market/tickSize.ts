/**
 * KRX tick sizes by price band (unified table for KOSPI and KOSDAQ since 2023-01-25).
 */
const BANDS: ReadonlyArray<readonly [upTo: number, tick: number]> = [
  [2_000, 1],
  [5_000, 5],
  [20_000, 10],
  [50_000, 50],
  [200_000, 100],
  [500_000, 500],
  [Number.POSITIVE_INFINITY, 1_000],
]

/** Tick size for a price in KRW. Unrolled `BANDS` lookup: it runs ~20 times per simulated tick. */
export const tickSize = (price: number): number =>
  price < 2_000
    ? 1
    : price < 5_000
      ? 5
      : price < 20_000
        ? 10
        : price < 50_000
          ? 50
          : price < 200_000
            ? 100
            : price < 500_000
              ? 500
              : 1_000

/** The band table, for documentation and tests (tickSize must agree with it). */
export const TICK_BANDS = BANDS

export const isOnTickGrid = (price: number): boolean =>
  Number.isInteger(price) && price > 0 && price % tickSize(price) === 0

/** Rounds a price down to the grid of its own band. */
export const floorToTick = (price: number): number => {
  const t = tickSize(price)
  return Math.max(t, Math.floor(price / t) * t)
}

/** Next grid price above `price` (which must be on the grid). */
export const tickUp = (price: number): number => price + tickSize(price)

/** Next grid price below `price`. The band boundary uses the lower band's tick. */
export const tickDown = (price: number): number => {
  const below = price - 1
  return Math.max(1, price - tickSize(below))
}

/** Rounds a price up to the grid: the smallest grid price at or above `price`. */
export const ceilToTick = (price: number): number => {
  const down = floorToTick(price)
  return down >= price ? down : tickUp(down)
}

/** KRX daily price limit: ±30% of the previous close. */
export const LIMIT_RATE = 0.3

/**
 * The daily limit band of a stock, both ends on the grid and inside ±30%. Computed in integer
 * tenths (prevClose × 7 / 10, × 13 / 10) so float noise cannot push an exact limit one tick out.
 */
export const dailyLimits = (prevClose: number): { readonly lower: number; readonly upper: number } => {
  const lower = ceilToTick(Math.ceil((prevClose * 7) / 10))
  const upper = floorToTick(Math.floor((prevClose * 13) / 10))
  return { lower, upper: Math.max(lower, upper) }
}

/** Whether `price` is inside the ±30% band around `prevClose` (grid-independent; indices use it too). */
export const withinDailyLimit = (prevClose: number, price: number): boolean =>
  price >= prevClose * (1 - LIMIT_RATE) - 1e-9 && price <= prevClose * (1 + LIMIT_RATE) + 1e-9
