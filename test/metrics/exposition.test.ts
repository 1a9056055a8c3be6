/**
 * `/metrics` and `/v1/metrics/summary` over real HTTP, with a real client on a real socket. The
 * text is read by a strict reader of the exposition format (`prometheusText.ts`), not matched line
 * by line: a family out of its group, a bad name or escape, or a histogram whose buckets do not add
 * up fails every test here.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { MetricsSummary, quantileBetween } from "../../src/protocol/metricsSummary.js"
import { connect, ingest, priceEvent, readJson, type TestClient, useGateway } from "../support/gateway.js"
import { type Family, histogramSeries, parsePrometheusText } from "./prometheusText.js"

/** Every family the hand-written exposition had, with its type: none may go or change. */
const EXISTING: ReadonlyArray<readonly [string, string]> = [
  ["quotecast_connections_active", "gauge"],
  ["quotecast_connections_opened_total", "counter"],
  ["quotecast_connections_closed_total", "counter"],
  ["quotecast_messages_sent_total", "counter"],
  ["quotecast_frames_sent_total", "counter"],
  ["quotecast_bytes_sent_total", "counter"],
  ["quotecast_wire_bytes_sent_total", "counter"],
  ["quotecast_compressed_frames_total", "counter"],
  ["quotecast_messages_received_total", "counter"],
  ["quotecast_queue_depth", "gauge"],
  ["quotecast_conflated_total", "counter"],
  ["quotecast_rate_limit_rejections_total", "counter"],
  ["quotecast_decode_errors_total", "counter"],
  ["quotecast_ws_frames_rejected_total", "counter"],
  ["quotecast_ws_input_cost_total", "counter"],
  ["quotecast_slow_consumer_closes_total", "counter"],
  ["quotecast_alerts_fired_total", "counter"],
  ["quotecast_alerts_cached", "gauge"],
  ["quotecast_alert_limit_rejections_total", "counter"],
  ["quotecast_sessions_evicted_total", "counter"],
  ["quotecast_session_alerts_dropped_total", "counter"],
  ["quotecast_http_body_budget_used_bytes", "gauge"],
  ["quotecast_outbound_budget_used_bytes", "gauge"],
  ["quotecast_outbound_memory_bytes", "gauge"],
  ["quotecast_outbound_budget_limit_bytes", "gauge"],
  ["quotecast_outbound_budget_conflations_total", "counter"],
  ["quotecast_outbound_budget_closes_total", "counter"],
  ["quotecast_events_published_total", "counter"],
  ["quotecast_sessions_persisted_total", "counter"],
  ["quotecast_session_persist_failures_total", "counter"],
  ["quotecast_session_sequence_jumps_total", "counter"],
  ["quotecast_session_sequence_overruns_total", "counter"],
  ["quotecast_redis_data_lost_total", "counter"],
  ["quotecast_redis_decode_failures_total", "counter"],
  ["quotecast_saved_sessions_count_failures_total", "counter"],
  ["quotecast_alert_fire_retries_total", "counter"],
  ["quotecast_unsent_user_messages", "gauge"],
  ["quotecast_unsent_user_messages_dropped_total", "counter"],
  ["quotecast_topics_local", "gauge"],
  ["quotecast_setup_admission_queued_total", "counter"],
  ["quotecast_setup_admission_rejected_total", "counter"],
  ["quotecast_setup_admission_abandoned_total", "counter"],
  ["quotecast_setups_in_flight", "gauge"],
  ["quotecast_setups_in_flight_peak", "gauge"],
  ["quotecast_setups_waiting", "gauge"],
  ["quotecast_setup_admission_wait_ms", "histogram"],
  ["quotecast_http_rejections_total", "counter"],
  ["quotecast_ws_admission_rejections_total", "counter"],
  ["quotecast_http_client_errors_total", "counter"],
  ["quotecast_token_rejections_total", "counter"],
  ["quotecast_batch_size", "histogram"],
  ["quotecast_flush_pass_ms", "histogram"],
]

const gw = useGateway()

const scrape = async (): Promise<ReadonlyMap<string, Family>> => {
  const res = await fetch(`${gw.httpUrl}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
  return parsePrometheusText(await res.text())
}

const family = (families: ReadonlyMap<string, Family>, name: string): Family => {
  const f = families.get(name)
  if (f === undefined) throw new Error(`no metric family ${name}`)
  return f
}

/** The one series of an unlabelled histogram, with its buckets by bound ("5000", "+Inf"). */
const histogramOf = (families: ReadonlyMap<string, Family>, name: string) => {
  const [series, ...more] = histogramSeries(family(families, name))
  if (series === undefined || more.length > 0) throw new Error(`${name}: not one series`)
  const bucket = (le: number) => series.buckets.find(([b]) => b === le)?.[1] ?? Number.NaN
  return { ...series, bucket }
}

const sampleOf = (families: ReadonlyMap<string, Family>, name: string): number => {
  const [sample] = family(families, name).samples
  if (sample === undefined) throw new Error(`${name} has no sample`)
  return sample.value
}

const DELIVERY = "quotecast_delivery_latency_ms"

describe("GET /metrics (prom-client)", () => {
  let client: TestClient
  beforeAll(async () => {
    client = (await connect(gw)).client
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    await client.nextOfType("subscribed")
    await client.settle()
  })
  afterAll(() => client.close())

  it("keeps every family of the previous exposition, with its type", async () => {
    const families = await scrape()
    for (const [name, type] of EXISTING) expect(family(families, name).type, name).toBe(type)
    expect(sampleOf(families, "quotecast_connections_active")).toBe(1)
  })

  it("has the Node.js process metrics: CPU, memory, event-loop lag, GC", async () => {
    const families = await scrape()
    expect(sampleOf(families, "process_cpu_seconds_total")).toBeGreaterThan(0)
    expect(sampleOf(families, "process_resident_memory_bytes")).toBeGreaterThan(0)
    expect(sampleOf(families, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0)
    expect(sampleOf(families, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0)
    // Per kind of collection (minor, major, ...), each series checked as a histogram.
    expect(family(families, "nodejs_gc_duration_seconds").type).toBe("histogram")
    histogramSeries(family(families, "nodejs_gc_duration_seconds"))
  })

  it("counts a delivered frame in the delivery histogram, aged from the event's own timestamp", async () => {
    const before = histogramOf(await scrape(), DELIVERY)
    // A minute old when ingested: whatever the machine's speed, past the last bound (5 s).
    const minuteAgo = new Date(Date.now() - 60_000).toISOString()
    const seen = client.frames.length
    const res = await ingest(gw, [
      { ...priceEvent("005930", 74100), timestamp: minuteAgo },
      { ...priceEvent("000660", 180500), timestamp: minuteAgo },
    ])
    expect(res.status).toBe(202)
    await client.next((m) => m.type === "price_update" && m.code === "005930" && !m.snapshot)
    await client.next((m) => m.type === "price_update" && m.code === "000660" && !m.snapshot)
    // One observation per frame that carried them (one batch, unless a pass fell between the two).
    const frames = client.frames
      .slice(seen)
      .filter((f) =>
        f.type === "batch" ? f.messages.some((m) => m.type === "price_update") : f.type === "price_update",
      ).length
    expect(frames).toBeGreaterThanOrEqual(1)
    const after = histogramOf(await scrape(), DELIVERY)
    expect(after.count - before.count).toBe(frames)
    expect(after.bucket(Number.POSITIVE_INFINITY) - before.bucket(Number.POSITIVE_INFINITY)).toBe(frames)
    // None within 5 s: the age runs from the event's timestamp, not from when the gateway got it.
    expect(after.bucket(5000)).toBe(before.bucket(5000))
    expect(after.sum - before.sum).toBeGreaterThanOrEqual(60_000 * frames)
  })

  it("counts a current event, in buckets from 1 ms to 5 s", async () => {
    const before = histogramOf(await scrape(), DELIVERY)
    expect((await ingest(gw, [priceEvent("005930", 74200)])).status).toBe(202)
    await client.next((m) => m.type === "price_update" && m.code === "005930" && !m.snapshot)
    const after = histogramOf(await scrape(), DELIVERY)
    expect(after.count).toBe(before.count + 1)
    // The reader checked that buckets are cumulative and end at +Inf = count; these are the bounds.
    expect(after.buckets.map(([le]) => le)).toEqual([
      1,
      2,
      5,
      10,
      25,
      50,
      100,
      250,
      500,
      1000,
      2500,
      5000,
      Number.POSITIVE_INFINITY,
    ])
  })

  it("answers the dashboard's summary from the same counts (GET /v1/metrics/summary)", async () => {
    const families = await scrape()
    const summary = await readJson(await fetch(`${gw.httpUrl}/v1/metrics/summary`), MetricsSummary)
    expect(summary.active_connections).toBe(1)
    const delivery = histogramOf(families, DELIVERY)
    expect(summary.delivery_latency_ms.count).toBe(delivery.count)
    expect(summary.delivery_latency_ms.bounds).toEqual([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000])
    expect(summary.delivery_latency_ms.cumulative).toEqual(
      summary.delivery_latency_ms.bounds.map((b) => delivery.bucket(b)),
    )
    expect(summary.rss_bytes).toBeGreaterThan(0)
    expect(summary.heap_used_bytes).toBeGreaterThan(0)
    expect(summary.event_loop_delay_ms.p99).toBeGreaterThanOrEqual(0)
  })
})

describe("quantileBetween (the dashboard's p99 from two readings)", () => {
  const bounds = [1, 2, 5, 10]
  const reading = (cumulative: Array<number>, count: number) => ({ bounds, cumulative, count, sum: 0 })

  it("interpolates within the bucket the rank falls in, over what was counted in between", () => {
    const before = reading([5, 5, 5, 5], 5)
    // 100 new: 90 at or below 2 (all in (1, 2]), 10 in (2, 5].
    const after = reading([5, 95, 105, 105], 105)
    expect(quantileBetween(before, after, 0.5)).toBeCloseTo(1 + 50 / 90)
    expect(quantileBetween(before, after, 0.99)).toBeCloseTo(2 + (3 * 9) / 10)
  })

  it("is undefined with nothing new, and Infinity past the last bound", () => {
    const r = reading([1, 1, 1, 1], 1)
    expect(quantileBetween(r, r, 0.99)).toBeUndefined()
    expect(quantileBetween(r, reading([1, 1, 1, 1], 3), 0.99)).toBe(Number.POSITIVE_INFINITY)
  })
})

describe("the exposition reader refuses what the format does not allow", () => {
  it.each([
    ["a family split in two groups", "# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n"],
    ["a bad escape in a label value", '# TYPE a counter\na{x="\\t"} 1\n'],
    ["a TYPE after the samples", "a 1\n# TYPE a counter\n"],
    ["a value that is not a number", "# TYPE a gauge\na one\n"],
    [
      "buckets that do not add up",
      '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
    ],
    ["a histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ])("%s", (_, text) => {
    expect(() => parsePrometheusText(text)).toThrow()
  })

  it("reads labelled histograms with le first, as prom-client writes them", () => {
    const text = [
      "# HELP h A histogram.",
      "# TYPE h histogram",
      'h_bucket{le="1",kind="a"} 1',
      'h_bucket{le="+Inf",kind="a"} 2',
      'h_sum{kind="a"} 3.5',
      'h_count{kind="a"} 2',
      'h_bucket{le="1",kind="b"} 0',
      'h_bucket{le="+Inf",kind="b"} 1',
      'h_sum{kind="b"} 9',
      'h_count{kind="b"} 1',
      "",
    ].join("\n")
    const h = parsePrometheusText(text).get("h")
    if (h === undefined) throw new Error("no family h")
    expect(histogramSeries(h)).toEqual([
      {
        labels: { kind: "a" },
        buckets: [
          [1, 1],
          [Number.POSITIVE_INFINITY, 2],
        ],
        sum: 3.5,
        count: 2,
      },
      {
        labels: { kind: "b" },
        buckets: [
          [1, 0],
          [Number.POSITIVE_INFINITY, 1],
        ],
        sum: 9,
        count: 1,
      },
    ])
  })
})
