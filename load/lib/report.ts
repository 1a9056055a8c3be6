/**
 * The final report: a plain JSON-able object (for `--json` and benchmark harnesses), its text
 * rendering, and threshold checks.
 */
import type { LoadConfig } from "./config.js"
import { emptySummary, type LatencySummary } from "./histogram.js"
import { type LoadStats, toRecord } from "./stats.js"

export interface ClientHealth {
  /** CPU time of this process over the whole run, in percent of one core. */
  readonly cpuPercent: number
  /** Event-loop lag of this process during the measurement window (beyond the 10 ms sampling timer). */
  readonly eventLoopDelayP99Ms: number
  readonly eventLoopDelayMaxMs: number
  readonly rssMb: number
}

export interface LoadReport {
  readonly config: {
    readonly url: string
    readonly connections: number
    readonly durationSec: number
    readonly rampUpSec: number
    readonly batchSize: number
    readonly subscriptions: number
    readonly codes: number
    readonly compression: boolean
    readonly sample: number
    readonly sourceIps: number
  }
  readonly startedAt: string
  readonly elapsedSec: number
  /** The measurement window: from the end of the ramp-up for `duration` seconds. */
  readonly windowSec: number
  readonly connections: {
    readonly attempted: number
    readonly established: number
    readonly failed: number
    readonly peakOpen: number
    /** Closed by the server or the network during the run. */
    readonly dropped: number
    readonly connectErrors: Record<string, number>
    /** Opening handshake time (ms). */
    readonly connectTime: LatencySummary
    readonly syncInflate: number
  }
  readonly messages: {
    readonly total: number
    readonly frames: number
    /** Counted inside the measurement window. */
    readonly window: number
    readonly windowFrames: number
    readonly perSecond: number
    readonly framesPerSecond: number
    readonly perFrame: number
    readonly sampledFrames: number
    readonly unparsableFrames: number
    /** Message types seen in sampled frames. */
    readonly sampledTypes: Record<string, number>
    readonly subscribedTargets: number
  }
  /** End-to-end latency (ms): receive time minus `timestamp` of sampled non-snapshot market messages. */
  readonly latency: LatencySummary & { readonly negative: number }
  readonly sequence: {
    /** Frames whose first sequence number was not the one expected. */
    readonly gaps: number
    /** Sequence numbers skipped over all gaps. */
    readonly missing: number
    /** Sampled batches whose inner numbers were not consecutive. */
    readonly nonConsecutiveBatches: number
  }
  /** Server `error` messages by code. */
  readonly errors: Record<string, number>
  /** Unexpected closes by WebSocket close code. */
  readonly closes: Record<string, number>
  readonly client: ClientHealth
}

const redact = (url: string): string => {
  const u = new URL(url)
  if (u.searchParams.has("token")) u.searchParams.set("token", "***")
  return u.toString()
}

const rate = (count: number, seconds: number): number => (seconds > 0 ? Math.round(count / seconds) : 0)

export const buildReport = (input: {
  readonly config: LoadConfig
  readonly stats: LoadStats
  readonly startedAtMs: number
  readonly endedAtMs: number
  readonly client: ClientHealth
}): LoadReport => {
  const { config, stats } = input
  const windowSec = Math.max(0, (stats.windowEndMs - stats.windowStartMs) / 1000)
  return {
    config: {
      url: redact(config.url),
      connections: config.connections,
      durationSec: config.durationSec,
      rampUpSec: config.rampUpSec,
      batchSize: config.batchSize,
      subscriptions: config.subscriptions,
      codes: config.codes.length,
      compression: config.compression,
      sample: config.sample,
      sourceIps: config.sourceIps,
    },
    startedAt: new Date(input.startedAtMs).toISOString(),
    elapsedSec: Math.round((input.endedAtMs - input.startedAtMs) / 10) / 100,
    windowSec: Math.round(windowSec * 100) / 100,
    connections: {
      attempted: stats.attempted,
      established: stats.established,
      failed: stats.failed,
      peakOpen: stats.peakOpen,
      dropped: stats.dropped,
      connectErrors: toRecord(stats.connectErrors),
      connectTime: stats.connectTime.count > 0 ? stats.connectTime.summary() : emptySummary,
      syncInflate: stats.syncInflate,
    },
    messages: {
      total: stats.messages,
      frames: stats.frames,
      window: stats.windowMessages,
      windowFrames: stats.windowFrames,
      perSecond: rate(stats.windowMessages, windowSec),
      framesPerSecond: rate(stats.windowFrames, windowSec),
      perFrame: stats.frames > 0 ? Math.round((stats.messages / stats.frames) * 100) / 100 : 0,
      sampledFrames: stats.sampledFrames,
      unparsableFrames: stats.unparsableFrames,
      sampledTypes: toRecord(stats.sampledTypes),
      subscribedTargets: stats.subscribedTargets,
    },
    latency: { ...stats.latency.summary(), negative: stats.latency.negative },
    sequence: { gaps: stats.gaps, missing: stats.missing, nonConsecutiveBatches: stats.nonConsecutive },
    errors: toRecord(stats.errors),
    closes: toRecord(stats.closes),
    client: input.client,
  }
}

export interface Thresholds {
  readonly maxP99Ms?: number | undefined
  readonly minConnected?: number | undefined
}

/** Human-readable violations; empty when the run passed. */
export const checkThresholds = (report: LoadReport, thresholds: Thresholds): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (thresholds.maxP99Ms !== undefined) {
    if (report.latency.count === 0)
      out.push(`p99 latency unknown (no latency samples), limit ${thresholds.maxP99Ms} ms`)
    else if (report.latency.p99 > thresholds.maxP99Ms) {
      out.push(`p99 latency ${report.latency.p99} ms > ${thresholds.maxP99Ms} ms`)
    }
  }
  if (thresholds.minConnected !== undefined && report.connections.established < thresholds.minConnected) {
    out.push(`established ${report.connections.established} < ${thresholds.minConnected} connections`)
  }
  return out
}

const int = (n: number): string => Math.round(n).toLocaleString("en-US")
const ms = (n: number): string => `${n.toFixed(n < 10 ? 2 : 1)} ms`
const entries = (r: Record<string, number>): string => {
  const list = Object.entries(r)
  return list.length === 0 ? "none" : list.map(([k, v]) => `${k}=${int(v)}`).join(", ")
}

/** The text report printed at the end of a run. */
export const formatReport = (report: LoadReport, violations: ReadonlyArray<string> = []): string => {
  const c = report.connections
  const m = report.messages
  const l = report.latency
  const lines = [
    `quotecast load report  ${report.startedAt}  ${report.config.url}`,
    `config       ${int(report.config.connections)} connections, ${report.config.subscriptions} subscriptions each over ${int(report.config.codes)} codes, ramp-up ${report.config.rampUpSec} s (batches of ${report.config.batchSize}), duration ${report.config.durationSec} s, compression ${report.config.compression ? "on" : "off"}, sample 1/${report.config.sample}`,
    `elapsed      ${report.elapsedSec} s (measurement window ${report.windowSec} s)`,
    `connections  attempted ${int(c.attempted)}, established ${int(c.established)}, failed ${int(c.failed)}, peak open ${int(c.peakOpen)}, dropped ${int(c.dropped)}`,
    `connect      p50 ${ms(c.connectTime.p50)}, p99 ${ms(c.connectTime.p99)}, max ${ms(c.connectTime.max)}; errors: ${entries(c.connectErrors)}`,
    `messages     ${int(m.total)} total, ${int(m.window)} in window = ${int(m.perSecond)} msg/s`,
    `frames       ${int(m.frames)} total, ${int(m.framesPerSecond)} frames/s in window, ${m.perFrame} msg/frame, ${int(m.sampledFrames)} sampled`,
    `latency      p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}  (${int(l.count)} samples${l.negative > 0 ? `, ${int(l.negative)} negative` : ""})`,
    `sequence     gaps ${int(report.sequence.gaps)}, missing ${int(report.sequence.missing)}, non-consecutive batches ${int(report.sequence.nonConsecutiveBatches)}`,
    `errors       ${entries(report.errors)}`,
    `closes       ${entries(report.closes)}`,
    `types        ${entries(m.sampledTypes)}`,
    `client       cpu ${report.client.cpuPercent}% of a core, event-loop lag in window p99 ${ms(report.client.eventLoopDelayP99Ms)} max ${ms(report.client.eventLoopDelayMaxMs)}, rss ${int(report.client.rssMb)} MB${c.syncInflate > 0 ? `, sync inflate on ${int(c.syncInflate)} connections` : ""}`,
  ]
  if (report.client.eventLoopDelayP99Ms > 50) {
    lines.push("warning      the load client's event loop lagged: latency figures include client-side delay")
  }
  if (violations.length > 0) lines.push(...violations.map((v) => `FAILED       ${v}`))
  return lines.join("\n")
}

export interface Progress {
  readonly elapsedSec: number
  readonly phase: "ramp-up" | "steady" | "closing"
  readonly attempted: number
  readonly open: number
  readonly failed: number
  readonly target: number
  readonly messagesPerSec: number
  readonly framesPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly gaps: number
  readonly errors: number
  readonly dropped: number
}

/** The one-line progress printed every second. */
export const formatProgress = (p: Progress): string =>
  [
    `[${p.elapsedSec.toFixed(0).padStart(4)}s ${p.phase.padEnd(7)}]`,
    `open ${int(p.open)}/${int(p.target)}`,
    `failed ${int(p.failed)}`,
    `${int(p.messagesPerSec)} msg/s`,
    `${int(p.framesPerSec)} frames/s`,
    `p50 ${ms(p.p50Ms)} p99 ${ms(p.p99Ms)}`,
    `gaps ${int(p.gaps)}`,
    `errors ${int(p.errors)}`,
    `dropped ${int(p.dropped)}`,
  ].join(" | ")
