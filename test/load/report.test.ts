import { describe, expect, it } from "@effect/vitest"
import { LatencyHistogram } from "../../load/lib/histogram.js"
import { defaultLoadConfig } from "../../load/lib/index.js"
import { buildReport, checkThresholds, formatProgress, formatReport } from "../../load/lib/report.js"
import { LoadStats } from "../../load/lib/stats.js"

const health = { cpuPercent: 12.5, eventLoopDelayP99Ms: 1.2, eventLoopDelayMaxMs: 4, rssMb: 180 }

const sampleStats = (): LoadStats => {
  const stats = new LoadStats()
  stats.attempted = 100
  stats.established = 98
  stats.failed = 2
  stats.peakOpen = 98
  stats.dropped = 1
  stats.countConnectError("ECONNREFUSED")
  stats.countConnectError("ECONNREFUSED")
  stats.countClose(1013)
  stats.countError("RATE_LIMIT_EXCEEDED")
  stats.messages = 120_000
  stats.frames = 12_000
  stats.startWindow(1_000)
  stats.windowMessages = 100_000
  stats.windowFrames = 10_000
  for (let ms = 1; ms <= 100; ms++) stats.recordLatency(ms)
  stats.endWindow(11_000)
  stats.gaps = 3
  stats.missing = 17
  return stats
}

describe("LatencyHistogram", () => {
  it("summarizes percentiles in ms with microsecond resolution", () => {
    const h = new LatencyHistogram()
    for (let i = 1; i <= 1000; i++) h.recordMillis(i / 10) // 0.1 .. 100 ms
    const s = h.summary()
    expect(s.count).toBe(1000)
    expect(s.p50).toBeCloseTo(50, 0)
    expect(s.p99).toBeCloseTo(99, 0)
    expect(s.max).toBeCloseTo(100, 0)
  })

  it("records negative samples as 0 and counts them", () => {
    const h = new LatencyHistogram()
    h.recordMillis(-3)
    h.recordMillis(Number.NaN)
    expect(h.count).toBe(1)
    expect(h.negative).toBe(1)
    expect(h.summary().max).toBe(0)
  })
})

describe("report", () => {
  const stats = sampleStats()
  const report = buildReport({
    config: defaultLoadConfig,
    stats,
    startedAtMs: 0,
    endedAtMs: 12_000,
    client: health,
  })

  it("derives rates from the measurement window", () => {
    expect(report.windowSec).toBe(10)
    expect(report.messages.perSecond).toBe(10_000)
    expect(report.messages.framesPerSecond).toBe(1_000)
    expect(report.messages.perFrame).toBe(10)
    expect(report.latency.count).toBe(100)
    expect(report.latency.p50).toBeCloseTo(50, 0)
    expect(report.connections.connectErrors).toEqual({ ECONNREFUSED: 2 })
    expect(report.closes).toEqual({ "1013": 1 })
    expect(report.errors).toEqual({ RATE_LIMIT_EXCEEDED: 1 })
  })

  it("is plain JSON", () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report)
  })

  it("redacts the token in the URL", () => {
    const withToken = buildReport({
      config: { ...defaultLoadConfig, url: "ws://127.0.0.1:8000/v1/ws?token=secret" },
      stats,
      startedAtMs: 0,
      endedAtMs: 1,
      client: health,
    })
    expect(withToken.config.url).not.toContain("secret")
  })

  it("formats every section", () => {
    const text = formatReport(report)
    for (const line of [
      "connections  attempted 100, established 98, failed 2",
      "10,000 msg/s",
      "p99",
      "gaps 3, missing 17",
    ]) {
      expect(text).toContain(line)
    }
    expect(text).toContain("errors       RATE_LIMIT_EXCEEDED=1")
    expect(text).toContain("closes       1013=1")
    expect(text).not.toContain("FAILED")
    expect(formatReport(report, ["p99 too high"])).toContain("FAILED       p99 too high")
  })

  it("checks thresholds", () => {
    expect(checkThresholds(report, {})).toEqual([])
    expect(checkThresholds(report, { maxP99Ms: 1000, minConnected: 98 })).toEqual([])
    expect(checkThresholds(report, { maxP99Ms: 10, minConnected: 99 })).toHaveLength(2)
    const empty = buildReport({
      config: defaultLoadConfig,
      stats: new LoadStats(),
      startedAtMs: 0,
      endedAtMs: 1,
      client: health,
    })
    expect(checkThresholds(empty, { maxP99Ms: 100 })[0]).toContain("no latency samples")
  })

  it("formats a progress line", () => {
    const line = formatProgress({
      elapsedSec: 3,
      phase: "steady",
      attempted: 10,
      open: 9,
      failed: 1,
      target: 10,
      messagesPerSec: 52341,
      framesPerSec: 870,
      p50Ms: 12.1,
      p99Ms: 48.3,
      gaps: 0,
      errors: 0,
      dropped: 0,
    })
    expect(line).toContain("open 9/10")
    expect(line).toContain("52,341 msg/s")
    expect(line).toContain("p50 12.1 ms p99 48.3 ms")
  })
})
