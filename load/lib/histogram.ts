/**
 * Latency histogram: HDR (hdr-histogram-js), microsecond resolution, 3 significant digits, up to
 * one hour. Values arrive in milliseconds (fractional) and are reported in milliseconds.
 */
import * as hdr from "hdr-histogram-js"

/** One hour in microseconds: anything slower is clamped (and still counted). */
const HIGHEST_US = 3_600_000_000

export interface LatencySummary {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

export const emptySummary: LatencySummary = { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 }

const round3 = (n: number): number => Math.round(n * 1000) / 1000

export class LatencyHistogram {
  readonly #h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  })
  /** Samples below zero (receive time before the event time: clock or timestamp trouble), recorded as 0. */
  negative = 0

  recordMillis(ms: number): void {
    if (!Number.isFinite(ms)) return
    if (ms < 0) this.negative++
    const us = Math.round(Math.max(0, ms) * 1000)
    this.#h.recordValue(Math.min(us, HIGHEST_US))
  }

  get count(): number {
    return this.#h.totalCount
  }

  /** Percentile (0..100) in ms. */
  percentileMillis(p: number): number {
    return this.#h.totalCount === 0 ? 0 : round3(this.#h.getValueAtPercentile(p) / 1000)
  }

  summary(): LatencySummary {
    if (this.#h.totalCount === 0) return emptySummary
    return {
      count: this.#h.totalCount,
      p50: this.percentileMillis(50),
      p90: this.percentileMillis(90),
      p99: this.percentileMillis(99),
      p999: this.percentileMillis(99.9),
      max: round3(this.#h.maxValue / 1000),
      mean: round3(this.#h.mean / 1000),
    }
  }

  add(other: LatencyHistogram): void {
    this.#h.add(other.#h)
    this.negative += other.negative
  }

  reset(): void {
    this.#h.reset()
    this.negative = 0
  }
}
