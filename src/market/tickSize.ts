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

/** Tick size for a price in KRW. */
export const tickSize = (price: number): number => {
  for (const [upTo, tick] of BANDS) if (price < upTo) return tick
  return 1_000
}

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
