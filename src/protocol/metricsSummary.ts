/**
 * `GET /v1/metrics/summary`: the few live figures the dashboard's footer shows, as JSON, so a
 * browser need not parse Prometheus text. Here, beside the WebSocket contract, because both the
 * HTTP API (`http/Api.ts`) and the dashboard decode it. `/metrics` stays the Prometheus source.
 */
import { Schema } from "effect"

const Count = Schema.Number.pipe(Schema.nonNegative())

/** A histogram as counted since the instance started: cumulative counts per upper bound. */
export const BucketCounts = Schema.Struct({
  bounds: Schema.Array(Schema.Number),
  /** Observations at or below each bound (the last bucket, +Inf, is `count`). */
  cumulative: Schema.Array(Count),
  count: Count,
  sum: Schema.Number,
})
export type BucketCounts = typeof BucketCounts.Type

export const MetricsSummary = Schema.Struct({
  active_connections: Count,
  messages_sent: Count,
  /** `quotecast_delivery_latency_ms`: market event to frame written, oldest event per frame. */
  delivery_latency_ms: BucketCounts,
  /** Event-loop delay over the last window of about 5 s (`window_ms` says how long). */
  event_loop_delay_ms: Schema.Struct({ p99: Count, max: Count, window_ms: Count }),
  rss_bytes: Count,
  heap_used_bytes: Count,
}).annotations({ identifier: "MetricsSummary" })
export type MetricsSummary = typeof MetricsSummary.Type

/**
 * The q-quantile of the observations counted between two readings of one histogram, estimated as
 * Prometheus' `histogram_quantile` does (linear within the bucket it falls in). Undefined when
 * nothing was observed in between; `Infinity` when it falls past the last bound.
 */
export const quantileBetween = (before: BucketCounts, after: BucketCounts, q: number): number | undefined => {
  const total = after.count - before.count
  if (total <= 0) return undefined
  const rank = q * total
  let lower = 0
  let below = 0
  for (let i = 0; i < after.bounds.length; i++) {
    const upper = after.bounds[i] ?? lower
    const upTo = (after.cumulative[i] ?? 0) - (before.cumulative[i] ?? 0)
    if (upTo >= rank) {
      const inBucket = upTo - below
      return inBucket === 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket
    }
    lower = upper
    below = upTo
  }
  return Number.POSITIVE_INFINITY
}
