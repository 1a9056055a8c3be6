/**
 * Derived price fields shared by the simulator, ingest and sector aggregation, so every source
 * reports `change` and `change_percent` the same way.
 */

/** Rounds half away from zero to 2 decimals (percentages, index levels). */
export const round2 = (x: number): number => {
  const r = Math.round(Math.abs(x) * 100 + 1e-9) / 100
  return x < 0 && r !== 0 ? -r : r
}

/** Unrounded percent change vs the previous close. */
export const percentChange = (prevClose: number, price: number): number =>
  prevClose > 0 ? ((price - prevClose) / prevClose) * 100 : 0

/**
 * `change` is exact for stocks (integer KRW) and rounded to 2 decimals for indices;
 * `change_percent` is rounded to 2 decimals.
 */
export const priceChange = (
  prevClose: number,
  price: number,
): { readonly change: number; readonly change_percent: number } => ({
  change: round2(price - prevClose),
  change_percent: round2(percentChange(prevClose, price)),
})
