/**
 * Everything a run measures. Plain mutable counters on purpose: they are bumped from `ws`
 * callbacks for every frame of thousands of sockets, where an Effect per frame would cost more
 * than the work itself. The orchestration around them (ramp, timers, shutdown) is Effect.
 */
import { LatencyHistogram } from "./histogram.js"

const bump = <K>(map: Map<K, number>, key: K, by = 1): void => {
  map.set(key, (map.get(key) ?? 0) + by)
}

export class LoadStats {
  // connections
  attempted = 0
  established = 0
  failed = 0
  open = 0
  peakOpen = 0
  /** Closed by the server (or the network) while the test was running. */
  dropped = 0
  readonly connectErrors = new Map<string, number>()
  /** Unexpected closes by WebSocket close code. */
  readonly closes = new Map<number, number>()
  readonly connectTime = new LatencyHistogram()
  syncInflate = 0

  // traffic
  frames = 0
  messages = 0
  windowFrames = 0
  windowMessages = 0
  sampledFrames = 0
  unparsableFrames = 0
  subscribedTargets = 0
  readonly sampledTypes = new Map<string, number>()
  /** Server `error` messages by code (every frame holding one is parsed, so these are exact). */
  readonly errors = new Map<string, number>()

  // sequence
  gaps = 0
  missing = 0
  nonConsecutive = 0

  // latency: the measurement window, and the current progress interval
  readonly latency = new LatencyHistogram()
  readonly intervalLatency = new LatencyHistogram()

  /** Between the end of the ramp-up and the end of the duration. */
  measuring = false
  windowStartMs = 0
  windowEndMs = 0

  countConnectError(reason: string): void {
    bump(this.connectErrors, reason)
  }

  countClose(code: number): void {
    bump(this.closes, code)
  }

  countError(code: string): void {
    bump(this.errors, code)
  }

  countType(type: string): void {
    bump(this.sampledTypes, type)
  }

  recordLatency(ms: number): void {
    this.intervalLatency.recordMillis(ms)
    if (this.measuring) this.latency.recordMillis(ms)
  }

  startWindow(nowMs: number): void {
    this.measuring = true
    this.windowStartMs = nowMs
  }

  endWindow(nowMs: number): void {
    if (!this.measuring) return
    this.measuring = false
    this.windowEndMs = nowMs
  }
}

export const toRecord = <K extends string | number>(map: ReadonlyMap<K, number>): Record<string, number> =>
  Object.fromEntries(
    [...map.entries()].sort(([a], [b]) => String(a).localeCompare(String(b))).map(([k, v]) => [String(k), v]),
  )
