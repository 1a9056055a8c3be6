/**
 * The gateway's own figures in the footer, from `GET /v1/metrics/summary` every few seconds:
 * connections, delivery p99 (market event to frame written) over the last interval, event-loop
 * delay p99, resident memory. Prometheus scrapes `/metrics`; this is the glance for whoever has the
 * page open.
 */
import { Either, Schema } from "effect"
import { type BucketCounts, MetricsSummary, quantileBetween } from "../../src/protocol/metricsSummary.js"
import { byId } from "../dom.js"
import { intFmt } from "../format.js"

const decode = Schema.decodeUnknownEither(MetricsSummary)

const ms = (v: number): string => (v < 10 ? `${v.toFixed(1)} ms` : `${intFmt.format(Math.round(v))} ms`)

/** Sets a footer figure's text and the number a test (or a stylesheet) can read from it. */
const put = (id: string, text: string, value: number | undefined) => {
  const e = byId(id)
  e.textContent = text
  if (value === undefined) e.removeAttribute("data-value")
  else e.dataset.value = String(value)
}

/** Returns the update to run on each poll: it fetches the summary and shows it. */
export const makeOpsPanel = (summaryUrl: string): (() => Promise<void>) => {
  let previous: BucketCounts | undefined
  const show = (s: MetricsSummary) => {
    const n = s.active_connections
    put("ops-conns", `${intFmt.format(n)} ${n === 1 ? "connection" : "connections"}`, n)
    // Between two polls: the deliveries of the last interval, not since the gateway started.
    const p99 = previous === undefined ? undefined : quantileBetween(previous, s.delivery_latency_ms, 0.99)
    previous = s.delivery_latency_ms
    put(
      "ops-delivery",
      p99 === undefined
        ? "delivery p99 –"
        : Number.isFinite(p99)
          ? `delivery p99 ${ms(p99)}`
          : "delivery p99 > 5 s",
      p99,
    )
    put("ops-loop", `loop p99 ${ms(s.event_loop_delay_ms.p99)}`, s.event_loop_delay_ms.p99)
    put("ops-rss", `RSS ${intFmt.format(Math.round(s.rss_bytes / 2 ** 20))} MB`, s.rss_bytes)
    byId("ops").removeAttribute("data-error")
  }
  const fail = (why: string) => {
    const e = byId("ops")
    e.dataset.error = why
    e.title = `gateway figures unavailable: ${why}`
  }
  return async () => {
    try {
      const res = await fetch(summaryUrl, { cache: "no-store" })
      if (!res.ok) return fail(`HTTP ${res.status}`)
      const decoded = decode(await res.json())
      if (Either.isLeft(decoded)) return fail("unexpected answer")
      show(decoded.right)
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e))
    }
  }
}
