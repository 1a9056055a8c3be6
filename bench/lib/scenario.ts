/**
 * One measurement: one server (or a cluster pair) under one scenario's load, on a fixed timeline
 * that always ends by itself:
 *
 *   start server -> GC, base RSS -> ramp connections (feed stopped) -> all open and subscribed
 *   -> start the feed -> warm-up -> measurement window (server CPU/RSS polled) -> close -> stop.
 *
 * The load client runs in this (the harness) process; every server is its own child process.
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Clock, Duration, Effect } from "effect"
import type { ConnectionPool } from "../../load/lib/index.js"
import {
  defaultLoadConfig,
  emptySummary,
  type LatencySummary,
  type LoadConfig,
  LoadStats,
  Sampler,
} from "../../load/lib/index.js"
import type { FeedCounters, LiveMemory } from "../servers/control.js"
import { CandleCounts, type CandleLoad, makeBenchPool, type Protocol } from "./clients.js"
import { type BenchServer, type ProcSample, type ServerKind, serverLabel, startServer } from "./server.js"

export type ScenarioId = "A" | "B" | "C" | "D" | "E" | "F" | "G" | "H" | "smoke" | "smoke-G" | "smoke-H"

export interface ServerSpec {
  readonly kind: ServerKind
  /** Shown in the tables; defaults to the kind's label. */
  readonly name?: string
  /** Extra environment for this server (e.g. BENCH_DEFLATE=on). */
  readonly env?: Record<string, string>
}

export interface Scenario {
  readonly id: ScenarioId
  readonly title: string
  readonly connections: number
  readonly subscriptions: number
  /** Distinct codes the subscriptions (and the feed) spread over. */
  readonly codes: number
  /** Trade ticks per second over those codes; 0: no feed (idle). */
  readonly feedRate: number
  readonly compression: boolean
  readonly servers: ReadonlyArray<ServerSpec>
  readonly warmupSec: number
  readonly windowSec: number
  /** The server is killed (and the run marked) if its RSS passes this; protects the machine. */
  readonly rssKillBytes: number
  readonly targets: string
  /** Some connections also on the `candle` subscription (bench/candles.ts); quotecast only. */
  readonly candles?: CandleLoad
}

/** What the candle connections received in the window (`Scenario.candles`). */
export interface CandleResult {
  readonly connections: number
  readonly targets: number
  readonly updatesPerSec: number
  /** `candle_update`: receive time minus its `timestamp`, one frame in `sample` of those holding one. */
  readonly latencyMs: LatencySummary
}

/** msg/s the feed offers: ticks/s × subscribers per code. */
export const offeredMsgPerSec = (s: Scenario): number =>
  s.feedRate * ((s.connections * Math.min(s.subscriptions, s.codes)) / s.codes)

export interface RunResult {
  readonly scenario: ScenarioId
  readonly server: string
  readonly kind: ServerKind
  readonly status: "ok" | "killed" | "failed"
  readonly note: string | undefined
  readonly connections: {
    readonly target: number
    readonly established: number
    readonly failed: number
    readonly dropped: number
    readonly closes: Record<string, number>
    readonly connectErrors: Record<string, number>
  }
  readonly offeredMsgPerSec: number
  /** Trade ticks per second the server's feed produced over the window (its target: `feedRate`). */
  readonly feedTicksPerSec: number
  /** Ticks per second its feed skipped because the server could not run it on time. */
  readonly feedSkippedPerSec: number
  readonly msgPerSec: number
  readonly framesPerSec: number
  readonly msgPerFrame: number
  readonly latencyMs: LatencySummary
  readonly gaps: number
  readonly errors: Record<string, number>
  /** Server CPU over the window, percent of one core. */
  readonly serverCpuPercent: number
  readonly serverRssBaseMb: number
  readonly serverRssMb: number
  readonly serverRssPeakMb: number
  /** (RSS at the end of the window - RSS before any connection) / established connections. */
  readonly rssPerConnKb: number
  /**
   * The same after the window, once the feed is stopped, the queues drained and a full GC run
   * in the server: what it retains per connection, without the garbage of the load.
   * Null when not measured. Can be slightly negative: at 1,000 connections a few MB of RSS
   * the process had before any connection (and freed since) outweigh what they keep.
   */
  readonly rssPerConnAfterGcKb: number | null
  /**
   * Live memory per connection at the same moment: (JS heap in use + external memory) after the
   * GC, minus the same before any connection. What the server's objects and buffers hold for its
   * connections (zlib state included: Node reports it as external memory), without the heap V8
   * keeps committed after a load. Null when not measured.
   */
  readonly livePerConnAfterGcKb: number | null
  /**
   * Server CPU per connection for opening it and answering its subscriptions: CPU time from
   * before the ramp until every subscription was answered, over established connections (in
   * microseconds). What a reconnect storm costs per client; null when not measured.
   */
  readonly setupCpuUsPerConn: number | null
  /** Open connections that received nothing in the last `STALE_WINDOW_MS` of the window. */
  readonly staleConnections: number
  readonly client: {
    readonly cpuPercent: number
    readonly eventLoopLagP99Ms: number
    readonly rssMb: number
  }
  readonly candles?: CandleResult
}

const STALE_WINDOW_MS = 3000
const RAMP_BATCH = 100
const RAMP_STEP = Duration.millis(100)
const RAMP_LIMIT = Duration.seconds(45)
const SUBSCRIBE_LIMIT = Duration.seconds(15)
const POLL = Duration.millis(250)
const AFTER_GC_SETTLE = Duration.millis(500)
const liveBytes = (m: LiveMemory): number => m.heapUsedBytes + m.externalBytes
/** After the feed stops: many flush passes, for the queues and socket buffers to empty. */
const AFTER_FEED_DRAIN = Duration.seconds(1)

const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10
const round1 = (n: number): number => Math.round(n * 10) / 10

export const loadConfigFor = (scenario: Scenario, url: string, codes: ReadonlyArray<string>): LoadConfig => ({
  ...defaultLoadConfig,
  url,
  connections: scenario.connections,
  subscriptions: scenario.subscriptions,
  codes,
  compression: scenario.compression,
  // Parse one frame in 20: at 200,000+ msg/s full parsing would measure the client (STACK.md).
  sample: 20,
  // Each source address has its own ephemeral ports; consecutive 10,000-connection runs leave
  // TIME_WAIT sockets behind.
  sourceIps: 8,
  connectTimeoutSec: 30,
  closeTimeoutSec: 5,
})

const waitUntil = (cond: () => boolean, limit: Duration.DurationInput) =>
  Effect.sleep(POLL).pipe(Effect.repeat({ until: cond }), Effect.timeout(limit), Effect.ignore)

/** Opens `n` connections in steps (RAMP_BATCH per RAMP_STEP) and waits for them to settle. */
export const ramp = (pool: ConnectionPool, stats: LoadStats, n: number, offset = 0) =>
  Effect.gen(function* () {
    for (let i = 0; i < n; i += RAMP_BATCH) {
      for (let k = i; k < Math.min(n, i + RAMP_BATCH); k++) pool.open(offset + k)
      yield* Effect.sleep(RAMP_STEP)
    }
    yield* waitUntil(() => stats.established + stats.failed >= n, RAMP_LIMIT)
  })

const protocolOf = (kind: ServerKind): Protocol => (kind === "socketio" ? "socketio" : "quotecast")

export const serverEnv = (scenario: Scenario): Record<string, string> => ({
  BENCH_FEED_RATE: String(Math.max(1, scenario.feedRate)),
  BENCH_CODES: String(scenario.codes),
  // quotecast: the production defaults otherwise; compression stays on (a client must ask for it).
  LOG_LEVEL: "warning",
})

/** Measures one server under one scenario. Never fails: a failure is a result with its reason. */
export const runOne = (
  scenario: Scenario,
  spec: ServerSpec,
  codes: ReadonlyArray<string>,
  log: (line: string) => void,
): Effect.Effect<RunResult> => {
  const name = spec.name ?? serverLabel[spec.kind]
  return Effect.scoped(
    Effect.gen(function* () {
      const server = yield* startServer(spec.kind, { ...serverEnv(scenario), ...spec.env }, name)
      return yield* measure(scenario, spec, server, codes, log)
    }),
  ).pipe(
    Effect.timeout(Duration.seconds(scenario.windowSec + scenario.warmupSec + 150)),
    Effect.catchAll((e) =>
      Effect.succeed(
        failedResult(
          scenario,
          spec.kind,
          name,
          e._tag === "TimeoutException" ? "run timed out" : describe(e),
        ),
      ),
    ),
  )
}

const describe = (e: { readonly _tag: string }): string =>
  "reason" in e && typeof e.reason === "string"
    ? `${e._tag}: ${e.reason}`
    : "command" in e && typeof e.command === "string"
      ? `${e._tag}: ${e.command}`
      : e._tag

export const failedResult = (
  scenario: Scenario,
  kind: ServerKind,
  server: string,
  note: string,
): RunResult => ({
  scenario: scenario.id,
  server,
  kind,
  status: "failed",
  note,
  connections: {
    target: scenario.connections,
    established: 0,
    failed: 0,
    dropped: 0,
    closes: {},
    connectErrors: {},
  },
  offeredMsgPerSec: offeredMsgPerSec(scenario),
  feedTicksPerSec: 0,
  feedSkippedPerSec: 0,
  msgPerSec: 0,
  framesPerSec: 0,
  msgPerFrame: 0,
  latencyMs: emptySummary,
  gaps: 0,
  errors: {},
  serverCpuPercent: 0,
  serverRssBaseMb: 0,
  serverRssMb: 0,
  serverRssPeakMb: 0,
  rssPerConnKb: 0,
  rssPerConnAfterGcKb: null,
  livePerConnAfterGcKb: null,
  setupCpuUsPerConn: null,
  staleConnections: 0,
  client: { cpuPercent: 0, eventLoopLagP99Ms: 0, rssMb: 0 },
})

const measure = (
  scenario: Scenario,
  spec: ServerSpec,
  server: BenchServer,
  codes: ReadonlyArray<string>,
  log: (line: string) => void,
) =>
  Effect.gen(function* () {
    const config = loadConfigFor(scenario, server.wsUrl, codes)
    const stats = new LoadStats()
    const candleLoad = scenario.candles
    const candles =
      candleLoad !== undefined && spec.kind === "quotecast"
        ? { load: candleLoad, counts: new CandleCounts(new Sampler(config.sample)) }
        : undefined
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => makeBenchPool(protocolOf(spec.kind), config, stats, candles)),
      (p) => p.closeAll(Duration.seconds(config.closeTimeoutSec)),
    )
    const baseLive = (yield* server.command("gc")).memory
    yield* Effect.sleep("300 millis")
    const base = server.sample()
    log(`  ${server.name}: ramping ${scenario.connections} connections`)
    yield* ramp(pool, stats, scenario.connections)
    const expectedTargets =
      stats.established * Math.min(scenario.subscriptions, codes.length) +
      (candles?.counts.requestedTargets ?? 0)
    yield* waitUntil(() => stats.subscribedTargets >= expectedTargets, SUBSCRIBE_LIMIT)
    const rampEnd = server.sample()
    log(
      `  ${server.name}: ${stats.established} open, ${stats.failed} failed, ${stats.subscribedTargets}/${expectedTargets} subscribed`,
    )
    let idleLive: LiveMemory | undefined
    if (scenario.feedRate > 0) {
      yield* server.command("start-feed")
      yield* Effect.sleep(Duration.seconds(scenario.warmupSec))
    } else {
      // Idle: what the server retains per connection, after a full GC.
      idleLive = (yield* server.command("gc")).memory
      yield* Effect.sleep(Duration.seconds(scenario.warmupSec))
    }

    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    const clientCpu0 = process.cpuUsage()
    const feed0 = yield* server.feedCounters
    const s0 = server.sample()
    let peak = s0?.rssBytes ?? 0
    let killed: string | undefined
    const t0 = yield* Clock.currentTimeMillis
    stats.startWindow(t0)
    const deadline = t0 + scenario.windowSec * 1000
    let lastProgress = t0
    let lastMessages = 0
    for (;;) {
      yield* Effect.sleep(POLL)
      const now = yield* Clock.currentTimeMillis
      const s = server.sample()
      if (s !== undefined && s.rssBytes > peak) peak = s.rssBytes
      if (s !== undefined && s.rssBytes > scenario.rssKillBytes) {
        killed = `killed: RSS ${mb(s.rssBytes)} MB > ${mb(scenario.rssKillBytes)} MB after ${round1((now - t0) / 1000)} s`
        break
      }
      if (!server.alive()) {
        killed = "server exited during the window"
        break
      }
      if (now - lastProgress >= 2000) {
        const rate = Math.round(((stats.windowMessages - lastMessages) * 1000) / (now - lastProgress))
        log(
          `    ${round1((now - t0) / 1000)}s  ${rate} msg/s  p99 ${round1(stats.intervalLatency.percentileMillis(99))} ms  server RSS ${mb(s?.rssBytes ?? 0)} MB`,
        )
        stats.intervalLatency.reset()
        lastProgress = now
        lastMessages = stats.windowMessages
      }
      if (now >= deadline) break
    }
    const t1 = yield* Clock.currentTimeMillis
    const s1 = server.sample()
    stats.endWindow(t1)
    const feed1 = killed === undefined ? yield* server.feedCounters : undefined
    // Idle scenarios were measured after a GC already; loaded ones stop their feed, let the
    // queues drain, and get one now.
    const loadedAfterGc =
      killed === undefined && scenario.feedRate > 0
        ? yield* server.command("stop-feed").pipe(
            Effect.zipRight(Effect.sleep(AFTER_FEED_DRAIN)),
            Effect.zipRight(server.command("gc")),
            Effect.tap(() => Effect.sleep(AFTER_GC_SETTLE)),
            Effect.map((reply) => ({ sample: server.sample(), live: reply.memory })),
            Effect.orElseSucceed(() => undefined),
          )
        : undefined
    const afterGc = scenario.feedRate > 0 ? loadedAfterGc?.sample : s1
    const afterLive = scenario.feedRate > 0 ? loadedAfterGc?.live : idleLive
    const stale = pool.staleSince(t1 - STALE_WINDOW_MS)
    if (killed !== undefined) server.child.kill("SIGKILL")
    const clientCpu = process.cpuUsage(clientCpu0)
    lag.disable()
    const windowSec = Math.max(0.001, (t1 - t0) / 1000)
    const result = resultOf(scenario, spec, server.name, stats, {
      windowSec,
      base,
      rampEnd,
      s0,
      s1,
      peak,
      stale: scenario.feedRate > 0 ? stale : 0,
      killed,
      feed: feed0 !== undefined && feed1 !== undefined ? { start: feed0, end: feed1 } : undefined,
      afterGc,
      live:
        baseLive !== undefined && afterLive !== undefined
          ? { base: baseLive, afterGc: afterLive }
          : undefined,
      client: {
        cpuPercent: round1(((clientCpu.user + clientCpu.system) / 1e6 / windowSec) * 100),
        eventLoopLagP99Ms: round1(Math.max(0, lag.percentile(99) / 1e6 - 10)),
        rssMb: mb(process.memoryUsage().rss),
      },
    })
    const withCandles: RunResult =
      candles === undefined
        ? result
        : {
            ...result,
            candles: {
              connections: candles.counts.connections,
              targets: candles.counts.requestedTargets,
              updatesPerSec: Math.round(candles.counts.windowUpdates / windowSec),
              latencyMs: candles.counts.latency.count > 0 ? candles.counts.latency.summary() : emptySummary,
            },
          }
    log(
      `  ${server.name}: ${result.msgPerSec} msg/s, ${result.framesPerSec} frames/s, p99 ${result.latencyMs.p99} ms, CPU ${result.serverCpuPercent}%, RSS ${result.serverRssMb} MB${killed ? ` (${killed})` : ""}`,
    )
    return withCandles
  })

/** Per second of the server's own clock between the two readings. */
const feedRate = (
  feed: { readonly start: FeedCounters; readonly end: FeedCounters } | undefined,
  counter: "produced" | "skipped",
): number => {
  if (feed === undefined || feed.end.at <= feed.start.at) return 0
  return Math.round(((feed.end[counter] - feed.start[counter]) * 1000) / (feed.end.at - feed.start.at))
}

export const resultOf = (
  scenario: Scenario,
  spec: ServerSpec,
  name: string,
  stats: LoadStats,
  m: {
    readonly windowSec: number
    readonly base: ProcSample | undefined
    /** Taken once every subscription of the ramp was answered. */
    readonly rampEnd?: ProcSample | undefined
    readonly s0: ProcSample | undefined
    readonly s1: ProcSample | undefined
    readonly peak: number
    readonly stale: number
    readonly killed: string | undefined
    readonly client: RunResult["client"]
    /** The feed's counters at the start and end of the window. */
    readonly feed?: { readonly start: FeedCounters; readonly end: FeedCounters } | undefined
    /** A sample taken after a full GC at the end of the window. */
    readonly afterGc?: ProcSample | undefined
    /** Live memory after the full GCs before any connection and at the end. */
    readonly live?: { readonly base: LiveMemory; readonly afterGc: LiveMemory } | undefined
  },
): RunResult => {
  const cpu = m.s0 !== undefined && m.s1 !== undefined ? ((m.s1.cpuSec - m.s0.cpuSec) / m.windowSec) * 100 : 0
  const rss = m.s1?.rssBytes ?? m.peak
  const baseRss = m.base?.rssBytes ?? 0
  const toRecord = (map: ReadonlyMap<string | number, number>) =>
    Object.fromEntries([...map.entries()].map(([k, v]) => [String(k), v]))
  return {
    scenario: scenario.id,
    server: name,
    kind: spec.kind,
    status: m.killed !== undefined ? "killed" : "ok",
    note: m.killed,
    connections: {
      target: scenario.connections,
      established: stats.established,
      failed: stats.failed,
      dropped: stats.dropped,
      closes: toRecord(stats.closes),
      connectErrors: toRecord(stats.connectErrors),
    },
    offeredMsgPerSec: offeredMsgPerSec(scenario),
    feedTicksPerSec: feedRate(m.feed, "produced"),
    feedSkippedPerSec: feedRate(m.feed, "skipped"),
    msgPerSec: Math.round(stats.windowMessages / m.windowSec),
    framesPerSec: Math.round(stats.windowFrames / m.windowSec),
    msgPerFrame:
      stats.windowFrames > 0 ? Math.round((stats.windowMessages / stats.windowFrames) * 100) / 100 : 0,
    latencyMs: stats.latency.count > 0 ? stats.latency.summary() : emptySummary,
    gaps: stats.gaps,
    errors: toRecord(stats.errors),
    serverCpuPercent: round1(cpu),
    serverRssBaseMb: mb(baseRss),
    serverRssMb: mb(rss),
    serverRssPeakMb: mb(m.peak),
    rssPerConnKb: stats.established > 0 ? round1((rss - baseRss) / 1024 / stats.established) : 0,
    rssPerConnAfterGcKb:
      stats.established > 0 && m.afterGc !== undefined
        ? round1((m.afterGc.rssBytes - baseRss) / 1024 / stats.established)
        : null,
    livePerConnAfterGcKb:
      stats.established > 0 && m.live !== undefined
        ? round1((liveBytes(m.live.afterGc) - liveBytes(m.live.base)) / 1024 / stats.established)
        : null,
    setupCpuUsPerConn:
      stats.established > 0 && m.base !== undefined && m.rampEnd !== undefined
        ? Math.round(((m.rampEnd.cpuSec - m.base.cpuSec) * 1e6) / stats.established)
        : null,
    staleConnections: m.stale,
    client: m.client,
  }
}
