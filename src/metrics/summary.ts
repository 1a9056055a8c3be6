/**
 * What the dashboard's footer shows (`GET /v1/metrics/summary`), read together: connections,
 * messages sent, the delivery-latency histogram's buckets, event-loop delay and memory.
 */
import type { Histogram } from "prom-client"
import { DELIVERY_LATENCY_BUCKETS_MS, type GatewayStatsImpl } from "./GatewayStats.js"
import { readLoopDelay } from "./processMetrics.js"

/** A histogram's buckets as counted so far: cumulative counts per bound (the +Inf one is `count`). */
export interface BucketCounts {
  readonly bounds: ReadonlyArray<number>
  readonly cumulative: ReadonlyArray<number>
  readonly count: number
  readonly sum: number
}

/** The summary's fields. */
export interface MetricsSummary {
  readonly active_connections: number
  readonly messages_sent: number
  readonly delivery_latency_ms: BucketCounts
  readonly event_loop_delay_ms: { readonly p99: number; readonly max: number; readonly window_ms: number }
  readonly rss_bytes: number
  readonly heap_used_bytes: number
}

/** The bucket counts of a prom-client histogram without labels, in `bounds` order. */
const bucketCounts = async (h: Histogram, bounds: ReadonlyArray<number>): Promise<BucketCounts> => {
  const { name, values } = await h.get()
  const cumulative = bounds.map(
    (b) => values.find((v) => v.metricName === `${name}_bucket` && v.labels.le === b)?.value ?? 0,
  )
  const read = (suffix: string) => values.find((v) => v.metricName === `${name}${suffix}`)?.value ?? 0
  return { bounds, cumulative, count: read("_count"), sum: read("_sum") }
}

/** Reads the summary now. */
export const readSummary = async (
  s: GatewayStatsImpl,
  g: () => { readonly activeConnections: number },
): Promise<MetricsSummary> => {
  const loop = readLoopDelay()
  const memory = process.memoryUsage()
  return {
    active_connections: g().activeConnections,
    messages_sent: s.messagesSent,
    delivery_latency_ms: await bucketCounts(s.deliveryLatencyMs, DELIVERY_LATENCY_BUCKETS_MS),
    event_loop_delay_ms: { p99: loop.p99Ms, max: loop.maxMs, window_ms: Math.round(loop.windowMs) },
    rss_bytes: memory.rss,
    heap_used_bytes: memory.heapUsed,
  }
}
