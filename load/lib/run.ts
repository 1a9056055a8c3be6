/**
 * One load run: ramp connections up in batches, hold them for the duration while a progress
 * snapshot is taken every second, close them, and build the report. Bounded: the run is
 * interrupted if it outlives its own schedule by more than a margin, and the scope closes every
 * socket whichever way it ends (including Ctrl+C through NodeRuntime).
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Clock, Data, Duration, Effect, Schedule } from "effect"
import { type LoadConfig, type LoadConfigError, validateConfig } from "./config.js"
import { ConnectionPool } from "./pool.js"
import { buildReport, type LoadReport, type Progress } from "./report.js"
import { LoadStats } from "./stats.js"

export interface RunHooks {
  /** Called every second with a progress snapshot (the CLI prints it). */
  readonly onProgress?: ((progress: Progress) => void) | undefined
  /** Called once the pool exists, e.g. for a harness that wants live counters. */
  readonly onStart?: ((stats: LoadStats) => void) | undefined
}

/** The run exceeded its schedule (ramp-up + duration + timeouts + margin) and was stopped. */
export class LoadRunOverran extends Data.TaggedError("LoadRunOverran")<{ readonly limitSec: number }> {}

const OVERRUN_MARGIN_SEC = 30

const LOOP_RESOLUTION_MS = 10

/** The monitor records whole timer intervals; the lag is what exceeds its resolution. */
const lagMillis = (ns: number): number =>
  Number.isFinite(ns) ? Math.max(0, Math.round((ns / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100) : 0

const errorTotal = (stats: LoadStats): number => {
  let n = 0
  for (const v of stats.errors.values()) n += v
  return n
}

export const runLoad = (
  input: LoadConfig,
  hooks: RunHooks = {},
): Effect.Effect<LoadReport, LoadConfigError | LoadRunOverran> =>
  Effect.gen(function* () {
    const config = yield* validateConfig(input)
    const limitSec =
      config.rampUpSec +
      config.durationSec +
      config.connectTimeoutSec +
      config.closeTimeoutSec * 2 +
      OVERRUN_MARGIN_SEC
    return yield* Effect.scoped(runValidated(config, hooks)).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(limitSec),
        onTimeout: () => new LoadRunOverran({ limitSec }),
      }),
    )
  })

const runValidated = (config: LoadConfig, hooks: RunHooks) =>
  Effect.gen(function* () {
    const stats = new LoadStats()
    const closeTimeout = Duration.seconds(config.closeTimeoutSec)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => new ConnectionPool(config, stats)),
      (pool) => pool.closeAll(closeTimeout),
    )
    hooks.onStart?.(stats)
    const loopDelay = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
        h.enable()
        return h
      }),
      (h) => Effect.sync(() => h.disable()),
    )
    const cpuAtStart = process.cpuUsage()
    const startedAt = yield* Clock.currentTimeMillis
    const rampEnd = startedAt + config.rampUpSec * 1000
    let phase: Progress["phase"] = "ramp-up"

    // Progress: deltas since the previous tick, percentiles of this tick's samples only.
    let lastMessages = 0
    let lastFrames = 0
    let lastTick = startedAt
    const tick = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const seconds = Math.max(0.001, (now - lastTick) / 1000)
      const progress: Progress = {
        elapsedSec: (now - startedAt) / 1000,
        phase,
        attempted: stats.attempted,
        open: stats.open,
        failed: stats.failed,
        target: config.connections,
        messagesPerSec: (stats.messages - lastMessages) / seconds,
        framesPerSec: (stats.frames - lastFrames) / seconds,
        p50Ms: stats.intervalLatency.percentileMillis(50),
        p99Ms: stats.intervalLatency.percentileMillis(99),
        gaps: stats.gaps,
        errors: errorTotal(stats),
        dropped: stats.dropped,
      }
      lastMessages = stats.messages
      lastFrames = stats.frames
      lastTick = now
      stats.intervalLatency.reset()
      hooks.onProgress?.(progress)
    })
    yield* tick.pipe(Effect.repeat(Schedule.fixed("1 second")), Effect.delay("1 second"), Effect.forkScoped)

    // Ramp-up: batch i starts at i * (ramp-up / batches); a batch opens its sockets together.
    const batches = Math.ceil(config.connections / config.batchSize)
    const step = batches > 0 ? (config.rampUpSec * 1000) / batches : 0
    for (let b = 0; b < batches; b++) {
      const due = startedAt + b * step
      const now = yield* Clock.currentTimeMillis
      if (due > now) yield* Effect.sleep(Duration.millis(due - now))
      const end = Math.min(config.connections, (b + 1) * config.batchSize)
      for (let i = b * config.batchSize; i < end; i++) pool.open(i)
    }
    const afterRamp = yield* Clock.currentTimeMillis
    if (rampEnd > afterRamp) yield* Effect.sleep(Duration.millis(rampEnd - afterRamp))

    phase = "steady"
    // Event-loop lag is judged over the window only: ramp-up handshakes and the final close
    // storm stall the loop too, but they do not distort the latency figures.
    loopDelay.reset()
    stats.startWindow(yield* Clock.currentTimeMillis)
    yield* Effect.sleep(Duration.seconds(config.durationSec))
    stats.endWindow(yield* Clock.currentTimeMillis)
    const loopP99 = lagMillis(loopDelay.percentile(99))
    const loopMax = lagMillis(loopDelay.max)

    phase = "closing"
    yield* pool.closeAll(closeTimeout)
    const endedAt = yield* Clock.currentTimeMillis
    const cpu = process.cpuUsage(cpuAtStart)
    const wallUs = Math.max(1, (endedAt - startedAt) * 1000)
    return buildReport({
      config,
      stats,
      startedAtMs: startedAt,
      endedAtMs: endedAt,
      client: {
        cpuPercent: Math.round(((cpu.user + cpu.system) / wallUs) * 1000) / 10,
        eventLoopDelayP99Ms: loopP99,
        eventLoopDelayMaxMs: loopMax,
        rssMb: Math.round(process.memoryUsage().rss / 1e6),
      },
    })
  })
