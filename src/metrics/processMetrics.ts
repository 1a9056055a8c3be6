/**
 * What describes the process rather than a gateway instance: prom-client's default Node.js metrics
 * (CPU, resident and heap memory, event-loop lag, GC pauses, handles), and the event-loop delay
 * window the dashboard's summary shows. Both are made once per process, on first use, however many
 * gateways it runs (the tests start several in one), and live as long as it does, as prom-client's
 * collectors do.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks"
import { collectDefaultMetrics, Registry } from "prom-client"

let defaults: Registry | undefined

/** The registry with prom-client's default metrics (`process_*`, `nodejs_*`). */
export const processRegistry = (): Registry => {
  if (defaults === undefined) {
    defaults = new Registry()
    collectDefaultMetrics({ register: defaults })
  }
  return defaults
}

/** Event-loop delay over the last window, in milliseconds. */
export interface LoopDelay {
  readonly p99Ms: number
  readonly maxMs: number
  /** How long the window the figures cover lasted. */
  readonly windowMs: number
}

/** A window closes when read at least this long after it opened. */
const WINDOW_MS = 5_000
/** Sampling resolution, as prom-client's own event-loop monitor uses. */
const RESOLUTION_MS = 10

/**
 * A delay monitor of its own: prom-client's resets its histogram at every scrape, so reading it
 * for the dashboard would shorten what Prometheus sees. This one closes a window when read 5 s or
 * more after it opened, and answers the last closed window (the open one before any closed).
 */
class LoopDelayWindow {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  private openedAt = performance.now()
  private last: LoopDelay | undefined = undefined

  constructor() {
    this.histogram.enable()
  }

  private current(now: number): LoopDelay {
    const h = this.histogram
    return h.count === 0
      ? { p99Ms: 0, maxMs: 0, windowMs: now - this.openedAt }
      : { p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6, windowMs: now - this.openedAt }
  }

  read(): LoopDelay {
    const now = performance.now()
    if (now - this.openedAt >= WINDOW_MS) {
      this.last = this.current(now)
      this.histogram.reset()
      this.openedAt = now
    }
    return this.last ?? this.current(now)
  }
}

let loopDelay: LoopDelayWindow | undefined

/** Event-loop delay of the last closed window (about 5 s when read every few seconds). */
export const readLoopDelay = (): LoopDelay => {
  if (loopDelay === undefined) loopDelay = new LoopDelayWindow()
  return loopDelay.read()
}
