/**
 * Scenario G: a reconnect storm (issue 12, point 6). N clients with saved sessions and
 * subscriptions are all dropped at once (their sockets cut, as a network blip does) and all come
 * back at once with their session_id, while a few observer connections keep receiving a feed.
 *
 *   start server -> observers + N clients open and subscribe (ramped; "setup CPU" as in A-E)
 *   -> the N are cut -> feed on, warm-up, observers' p99 before -> all N reconnect at once
 *   -> until every one is restored (or the bound) -> stop.
 *
 * Reported per server: the storm's duration (first reconnect to last `reconnected`), server CPU
 * per restore, observers' delivery p99 during the storm (and before it), and what was refused
 * (close 1013 / HTTP 503 / 429; such clients retry as the SDK does, with its backoff). The bare
 * `ws` server has no sessions: its "storm" is N clients connecting and subscribing at once, the
 * handshake cost quotecast's is compared with.
 */
import { spawn } from "node:child_process"
import { loadavg } from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Clock, Data, Duration, Effect } from "effect"
import { emptySummary, type LatencySummary } from "../../load/lib/index.js"
import type { CustomScenario } from "./bench.js"
import { benchCodeList } from "./codes.js"
import { LOAD_HOST_ENV, latencyOver, mb, openObservers, readMetric, round1 } from "./observe.js"
import type { Check } from "./report.js"
import { type Scenario, serverEnv } from "./scenario.js"
import { type BenchServer, type ServerKind, serverLabel, startServer } from "./server.js"
import type { StormCommand, StormStatus } from "./stormClients.js"

export interface StormSpec {
  readonly scenario: Scenario
  /** Connections that keep receiving through the storm (not part of it). */
  readonly observers: number
  /**
   * Longest the storm may take before the run stops waiting. Refused clients keep retrying (as
   * the SDK does) until this bound or the session's TTL, whichever comes first: at 10,000 it is
   * the TTL, so a client is only counted as not restored once its session could not be.
   */
  readonly stormLimitSec: number
}

export interface StormRun {
  readonly server: string
  readonly kind: ServerKind
  readonly status: "ok" | "failed"
  readonly note: string | undefined
  readonly clients: number
  /** Storm clients that were open and subscribed before the drop. */
  readonly primed: number
  /** Why the others were not, by reason. */
  readonly primeFailures: Record<string, number>
  /** Server CPU per connection while opening and subscribing all of them (the bench's "setup CPU"). */
  readonly setupCpuUsPerConn: number | null
  /** quotecast: got `reconnected` with its subscriptions; bare ws: got `subscribed`. */
  readonly restored: number
  /** `reconnected` holding fewer subscriptions than were saved. */
  readonly partial: number
  readonly restoreFailed: number
  /** Clients that stopped retrying at the bound (their session's TTL, or the run's). */
  readonly gaveUp: number
  /** Storm start to each client's restore, percentiles over the restored, ms. */
  readonly restoreMs: StormStatus["restoreMs"]
  /** Most attempts one restored client needed. */
  readonly maxAttempts: number
  /** Refusals seen by clients, by kind ("close 1013", "HTTP 503", ...), each retried with backoff. */
  readonly refusals: Record<string, number>
  readonly retries: number
  /** First reconnect to last restore, ms. */
  readonly stormMs: number | null
  /**
   * Server CPU over the storm per restore, µs; and the same net of the feed: of the CPU rate
   * before the storm (the feed to the observers) and of the feed to the clients already restored
   * (the CPU rate per connected client measured for 3 s after the storm, times the
   * client-seconds each restored client was fed before the last restore).
   */
  readonly cpuUsPerRestore: number | null
  readonly netCpuUsPerRestore: number | null
  /** Server CPU % over the 3 s after the storm, every restored client receiving. */
  readonly serverCpuPercentAfter: number
  readonly serverCpuPercentBefore: number
  readonly serverCpuPercentDuring: number
  readonly serverRssPeakMb: number
  /** Admission metrics of quotecast after the storm (undefined for the baseline). */
  readonly admission: Record<string, number | undefined> | undefined
  /** quotecast: connection setups run from the storm's start until it was read (after the storm). */
  readonly setupsRun: number | null
  readonly observers: {
    readonly count: number
    readonly before: LatencySummary
    readonly during: LatencySummary
    readonly dropped: number
  }
  /** Event-loop delay p99 during the storm of the observers' process (the harness) and of the storm clients' process. */
  readonly lagP99Ms: { readonly observers: number; readonly stormClients: number }
  /** The machine's 1-minute load average when the storm began and when it ended. */
  readonly loadAvg: { readonly start: number; readonly end: number }
}

const POLL = Duration.millis(50)
/** SESSION_TTL_S's default. */
const DEFAULT_SESSION_TTL_S = 300

const ADMISSION_METRICS = [
  "quotecast_setup_admission_queued_total",
  "quotecast_setup_admission_rejected_total",
  "quotecast_setups_in_flight_peak",
  "quotecast_setup_admission_wait_ms_sum",
  "quotecast_setup_admission_wait_ms_count",
  "quotecast_setup_admission_abandoned_total",
  "quotecast_connections_opened_total",
  "quotecast_ws_admission_rejections_total",
  "quotecast_http_client_errors_total",
  // A flush pass is one event-loop turn unless FLUSH_SLICE_MS slices it, and Node accepts one
  // connection per turn: long passes slow the accepts down.
  "quotecast_flush_pass_ms_sum",
  "quotecast_flush_pass_ms_count",
]

/**
 * The admission metrics, from one read of /metrics (summed over labels; a metric the server does
 * not export is undefined). Read once the storm's clients are gone: while thousands of them
 * still knock, the harness's own request waits in the same full accept queue (each of five
 * separate reads then timed out, and the table showed "-").
 */
const readAdmission = (server: BenchServer) =>
  Effect.tryPromise(async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    })
    return await res.text()
  }).pipe(
    Effect.retry({ times: 3 }),
    Effect.map((text) => {
      const lines = text.split("\n")
      // Exported counters with no sample yet (a labelled one before its first label) read 0.
      const known = (name: string) => lines.some((l) => l.startsWith(`# TYPE ${name} `))
      const closes = lines
        .filter((l) => l.startsWith("quotecast_connections_closed_total{"))
        .map((l) => [`closed ${/code="(\d+)"/.exec(l)?.[1] ?? "?"}`, Number(l.split(" ").at(-1))] as const)
      return Object.fromEntries([
        ...ADMISSION_METRICS.map((name) => {
          const found = lines.filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
          const v =
            found.length === 0
              ? known(name)
                ? 0
                : undefined
              : found.reduce((s, l) => s + Number(l.split(" ").at(-1)), 0)
          return [name, v] as const
        }),
        ...closes,
      ])
    }),
    Effect.orElseSucceed(() => Object.fromEntries(ADMISSION_METRICS.map((m) => [m, undefined] as const))),
  )

export class StormClientsError extends Data.TaggedError("StormClientsError")<{ readonly reason: string }> {}

/** The storm's clients in their own process (`stormClients.ts`), stopped with the scope. */
const startStormClients = Effect.gen(function* () {
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["--import", "tsx", "bench/lib/stormClients.ts"], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      }),
    ),
    (c) => Effect.sync(() => c.kill("SIGKILL")),
  )
  const ask = (cmd: StormCommand) =>
    Effect.async<StormStatus, StormClientsError>((resume) => {
      const onReply = (m: unknown) => {
        if (typeof m === "object" && m !== null && (m as StormStatus).ok === cmd.cmd) {
          child.off("message", onReply)
          resume(Effect.succeed(m as StormStatus))
        }
      }
      child.on("message", onReply)
      try {
        child.send(cmd)
      } catch (e) {
        child.off("message", onReply)
        resume(Effect.fail(new StormClientsError({ reason: String(e) })))
      }
      return Effect.sync(() => child.off("message", onReply))
    }).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(30),
        onTimeout: () => new StormClientsError({ reason: `no answer to ${cmd.cmd}` }),
      }),
    )
  return ask
})

/** CPU rate measured after the storm, every restored client receiving the feed. */
const AFTER_WINDOW = Duration.seconds(3)

const measureStorm = (
  spec: StormSpec,
  server: BenchServer,
  sessionTtlSec: number,
  log: (line: string) => void,
) =>
  Effect.gen(function* () {
    const s = spec.scenario
    const codes = benchCodeList(s.codes)
    yield* server.command("gc")
    yield* Effect.sleep("300 millis")
    const base = server.sample()
    const { stats: observerStats } = yield* openObservers(s, server, codes, spec.observers)
    const ask = yield* startStormClients
    log(`  ${server.name}: ${spec.observers} observers open; priming ${s.connections} clients`)
    yield* ask({
      cmd: "prime",
      url: server.wsUrl,
      sessions: server.kind === "quotecast",
      clients: s.connections,
      codes,
      subscriptions: s.subscriptions,
    })
    const primed = yield* ask({ cmd: "status" }).pipe(
      Effect.delay(POLL),
      Effect.repeat({ until: (st) => st.primed >= s.connections }),
      Effect.timeout(Duration.seconds(60)),
      Effect.orElse(() => ask({ cmd: "status" })),
    )
    const primedSample = server.sample()
    const primedAll = spec.observers + primed.primed
    const setupCpuUsPerConn =
      base !== undefined && primedSample !== undefined && primedAll > 0
        ? Math.round(((primedSample.cpuSec - base.cpuSec) * 1e6) / primedAll)
        : null
    log(`  ${server.name}: ${primed.primed} primed; cutting them`)
    const cut = yield* ask({ cmd: "cut" })
    const cutAt = yield* Clock.currentTimeMillis
    if (server.kind === "quotecast") {
      yield* Effect.sleep(POLL).pipe(
        Effect.zipRight(readMetric(server, "quotecast_connections_active")),
        Effect.repeat({ until: (n) => n !== undefined && n <= spec.observers }),
        Effect.timeout(Duration.seconds(30)),
        Effect.ignore,
      )
    } else yield* Effect.sleep("2 seconds")
    yield* server.command("start-feed")
    yield* Effect.sleep(Duration.seconds(s.warmupSec))
    const cpuBefore0 = server.sample()
    const before = yield* latencyOver(observerStats, Math.min(3, s.windowSec))
    const cpuBefore1 = server.sample()
    const cpuRateBefore =
      cpuBefore0 !== undefined && cpuBefore1 !== undefined
        ? (cpuBefore1.cpuSec - cpuBefore0.cpuSec) / Math.min(3, s.windowSec)
        : 0

    const waiting = cut.cut
    // Connection setups the server runs in the storm, against the restores clients see: the
    // difference is work done for clients that had already gone (or were refused after it).
    const openedBefore =
      server.kind === "quotecast"
        ? yield* readMetric(server, "quotecast_connections_opened_total")
        : undefined
    log(`  ${server.name}: ${waiting} clients reconnect at once`)
    observerStats.latency.reset()
    observerStats.startWindow(Date.now())
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    const s0 = server.sample()
    const t0 = yield* Clock.currentTimeMillis
    const load0 = loadavg()[0] ?? 0
    // The sessions were saved at the cut: past their TTL there is nothing left to restore.
    const giveUpAfterMs = Math.min(spec.stormLimitSec * 1000, cutAt + sessionTtlSec * 1000 - t0)
    yield* ask({ cmd: "storm", giveUpAfterMs })
    let peak = s0?.rssBytes ?? 0
    // Past it every client has restored or given up (a handshake timeout ends its last attempt).
    const deadline = t0 + giveUpAfterMs + 35_000
    let lastLog = t0
    let lastCpu = s0?.cpuSec ?? 0
    // The server's sample when the count of restored clients last grew: the storm's CPU ends
    // there, not at the run's bound (which added the feed to the restored clients for the rest
    // of the bound to "CPU per restore").
    let atLastDone = s0
    let doneSeen = 0
    observerStats.intervalLatency.reset()
    let st = yield* ask({ cmd: "status" })
    for (;;) {
      yield* Effect.sleep(POLL)
      st = yield* ask({ cmd: "status" })
      const smp = server.sample()
      if (smp !== undefined && smp.rssBytes > peak) peak = smp.rssBytes
      if (st.done > doneSeen && smp !== undefined) {
        doneSeen = st.done
        atLastDone = smp
      }
      const now = Date.now()
      if (now - lastLog >= 1000 && smp !== undefined) {
        log(
          `    ${round1((now - t0) / 1000)}s  restored ${st.done}/${waiting}  observers p99 ${round1(observerStats.intervalLatency.percentileMillis(99))} ms  server CPU ${round1(((smp.cpuSec - lastCpu) * 1e5) / (now - lastLog))}%`,
        )
        observerStats.intervalLatency.reset()
        lastLog = now
        lastCpu = smp.cpuSec
      }
      if (st.done + st.failed >= waiting || now >= deadline || !server.alive()) break
    }
    const s1 = server.sample()
    const t1 = Date.now()
    const load1 = loadavg()[0] ?? 0
    observerStats.endWindow(t1)
    lag.disable()
    const during = observerStats.latency.summary()
    const fin = yield* ask({ cmd: "status", detail: true })
    // The feed's cost per connected client: the CPU rate with every restored client receiving.
    const a0 = server.sample()
    yield* Effect.sleep(AFTER_WINDOW)
    const a1 = server.sample()
    const cpuRateAfter =
      a0 !== undefined && a1 !== undefined ? (a1.cpuSec - a0.cpuSec) / Duration.toSeconds(AFTER_WINDOW) : 0
    const feedPerClientSec = st.done > 0 ? Math.max(0, cpuRateAfter - cpuRateBefore) / st.done : 0
    // Client-seconds the restored clients were fed before the last restore (where the storm's CPU ends).
    const fedClientSec = Math.max(0, (fin.done * fin.lastDoneAt - fin.doneAtSum) / 1000)
    const stormMs = st.done > 0 && st.lastDoneAt > 0 ? st.lastDoneAt - t0 : null
    const cpuSec = s0 !== undefined && s1 !== undefined ? s1.cpuSec - s0.cpuSec : undefined
    const spanSec = Math.max(0.001, (t1 - t0) / 1000)
    const stormCpuSec =
      s0 !== undefined && atLastDone !== undefined ? atLastDone.cpuSec - s0.cpuSec : undefined
    const stormSec = Math.max(0.001, (stormMs ?? 0) / 1000)
    // The clients stop knocking first (see readAdmission).
    yield* ask({ cmd: "stop" })
    const admission = server.kind === "quotecast" ? yield* readAdmission(server) : undefined
    const openedAfter = admission?.quotecast_connections_opened_total
    yield* server.command("stop-feed").pipe(Effect.ignore)
    const run: StormRun = {
      server: server.name,
      kind: server.kind,
      status: "ok",
      note: st.done < waiting ? `${waiting - st.done} of ${waiting} not restored` : undefined,
      clients: s.connections,
      primed: primed.primed,
      primeFailures: st.primeFailures,
      setupCpuUsPerConn,
      restored: st.done,
      partial: st.partial,
      restoreFailed: st.failed - st.gaveUp,
      gaveUp: st.gaveUp,
      restoreMs: fin.restoreMs,
      maxAttempts: fin.maxAttempts,
      refusals: st.refusals,
      retries: st.retries,
      stormMs,
      cpuUsPerRestore:
        stormCpuSec !== undefined && st.done > 0 ? Math.round((stormCpuSec * 1e6) / st.done) : null,
      netCpuUsPerRestore:
        stormCpuSec !== undefined && st.done > 0
          ? Math.round(
              (Math.max(0, stormCpuSec - cpuRateBefore * stormSec - feedPerClientSec * fedClientSec) * 1e6) /
                st.done,
            )
          : null,
      serverCpuPercentBefore: round1(cpuRateBefore * 100),
      serverCpuPercentAfter: round1(cpuRateAfter * 100),
      serverCpuPercentDuring: cpuSec === undefined ? 0 : round1((cpuSec / spanSec) * 100),
      serverRssPeakMb: mb(peak),
      admission,
      setupsRun: openedBefore !== undefined && openedAfter !== undefined ? openedAfter - openedBefore : null,
      observers: {
        count: observerStats.established,
        before,
        during,
        dropped: observerStats.dropped,
      },
      lagP99Ms: {
        observers: round1(Math.max(0, lag.percentile(99) / 1e6 - 10)),
        stormClients: round1(st.lagP99Ms),
      },
      loadAvg: { start: round1(load0), end: round1(load1) },
    }
    log(
      `  ${server.name}: ${run.restored}/${waiting} restored in ${stormMs ?? "-"} ms, ${run.cpuUsPerRestore ?? "-"} µs CPU per restore, observers p99 ${before.p99} ms before, ${during.p99} ms during`,
    )
    return run
  })

const failedStorm = (spec: StormSpec, kind: ServerKind, name: string, note: string): StormRun => ({
  server: name,
  kind,
  status: "failed",
  note,
  clients: spec.scenario.connections,
  primed: 0,
  primeFailures: {},
  setupCpuUsPerConn: null,
  restored: 0,
  partial: 0,
  restoreFailed: 0,
  gaveUp: 0,
  restoreMs: { p50: 0, p90: 0, p99: 0 },
  maxAttempts: 0,
  refusals: {},
  retries: 0,
  stormMs: null,
  cpuUsPerRestore: null,
  netCpuUsPerRestore: null,
  serverCpuPercentBefore: 0,
  serverCpuPercentDuring: 0,
  serverCpuPercentAfter: 0,
  serverRssPeakMb: 0,
  admission: undefined,
  setupsRun: null,
  observers: { count: 0, before: emptySummary, during: emptySummary, dropped: 0 },
  lagP99Ms: { observers: 0, stormClients: 0 },
  loadAvg: { start: 0, end: 0 },
})

/** Runs the storm against each of the scenario's servers in turn. Never fails. */
export const runStorm = (
  spec: StormSpec,
  log: (line: string) => void,
): Effect.Effect<ReadonlyArray<StormRun>> =>
  Effect.forEach(spec.scenario.servers, (srv) => {
    const name = srv.name ?? serverLabel[srv.kind]
    return Effect.scoped(
      Effect.gen(function* () {
        const env = {
          ...serverEnv(spec.scenario),
          ...(srv.kind === "quotecast" ? LOAD_HOST_ENV : {}),
          ...srv.env,
        }
        const server = yield* startServer(srv.kind, env, name)
        // quotecast's default (config/AppConfig.ts) unless the scenario sets it; the bare ws
        // server keeps no sessions, and its clients give up at the same time.
        const ttl = Number(env.SESSION_TTL_S ?? DEFAULT_SESSION_TTL_S)
        return yield* measureStorm(spec, server, ttl, log)
      }),
    ).pipe(
      Effect.timeout(Duration.seconds(spec.stormLimitSec + 200)),
      Effect.catchAll((e) =>
        Effect.succeed(
          failedStorm(spec, srv.kind, name, e._tag === "TimeoutException" ? "run timed out" : e._tag),
        ),
      ),
    )
  })

const ms = (n: number | null): string => (n === null ? "-" : Math.round(n).toLocaleString("en-US"))

export const STORM_HEADER = [
  "server",
  "restored / primed",
  "storm ms (first reconnect to last restored)",
  "restore ms p50 / p90 / p99 (max attempts)",
  "server CPU µs/restore (net of the feed)",
  "setup CPU µs/conn (ramped)",
  "server CPU % during / after",
  "observer p99 ms before",
  "observer p99 ms during",
  "observer max ms during",
  "refused (retried)",
  "RSS peak MB",
  "load-client lag p99 ms (observers / storm)",
  "load avg at start / end",
  "note",
]

export const stormRow = (r: StormRun): ReadonlyArray<string> => [
  r.server,
  `${r.restored.toLocaleString("en-US")}/${r.primed.toLocaleString("en-US")}${r.partial > 0 ? ` (${r.partial} partial)` : ""}`,
  ms(r.stormMs),
  `${ms(r.restoreMs.p50)} / ${ms(r.restoreMs.p90)} / ${ms(r.restoreMs.p99)} (${r.maxAttempts})`,
  `${ms(r.cpuUsPerRestore)} (${ms(r.netCpuUsPerRestore)})`,
  ms(r.setupCpuUsPerConn),
  `${r.serverCpuPercentDuring.toFixed(0)} / ${r.serverCpuPercentAfter.toFixed(0)}`,
  r.observers.before.p99.toFixed(0),
  r.observers.during.p99.toFixed(0),
  r.observers.during.max.toFixed(0),
  `${
    Object.entries(r.refusals)
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ") || "0"
  } (${r.retries})`,
  r.serverRssPeakMb.toFixed(0),
  `${r.lagP99Ms.observers.toFixed(0)} / ${r.lagP99Ms.stormClients.toFixed(0)}`,
  `${r.loadAvg.start.toFixed(1)} / ${r.loadAvg.end.toFixed(1)}`,
  [
    r.status === "ok" ? "" : r.status,
    r.note ?? "",
    r.restoreFailed > 0 ? `${r.restoreFailed} failed` : "",
    r.gaveUp > 0 ? `${r.gaveUp} gave up` : "",
  ]
    .filter((x) => x !== "")
    .join("; "),
]

export const stormChecks = (runs: ReadonlyArray<StormRun>): ReadonlyArray<Check> => {
  const q = runs.find((r) => r.kind === "quotecast" && r.status === "ok")
  const ws = runs.find((r) => r.kind === "ws" && r.status === "ok")
  if (q === undefined)
    return [
      { target: "every session restored", met: undefined, detail: runs[0]?.note ?? "quotecast run failed" },
    ]
  return [
    {
      target: "every session restored",
      met: q.primed === q.clients && q.restored === q.primed && q.partial === 0,
      detail: `${q.restored} of ${q.primed} restored (${q.partial} partial, ${q.restoreFailed} failed, ${q.gaveUp} gave up), ${q.retries} retries after refusals${
        q.primed < q.clients
          ? `; only ${q.primed} of ${q.clients} had been opened and subscribed: ${JSON.stringify(q.primeFailures)}`
          : ""
      }`,
    },
    {
      target: "observers' delivery p99 during the storm < 1 s",
      met: q.observers.during.count > 0 && q.observers.during.p99 < 1000 && q.observers.dropped === 0,
      detail: `p99 ${q.observers.during.p99} ms during (${q.observers.before.p99} ms before), ${q.observers.during.count} samples, ${q.observers.dropped} observers dropped`,
    },
    {
      target: "storm duration and CPU per restore (reported beside the bare ws handshake cost)",
      met: undefined,
      detail: `quotecast ${ms(q.stormMs)} ms, ${ms(q.cpuUsPerRestore)} µs CPU per restore (${ms(q.netCpuUsPerRestore)} net of the feed)${
        ws === undefined
          ? ""
          : `; bare ws: ${ms(ws.stormMs)} ms for ${ws.restored} connect+subscribe, ${ms(ws.cpuUsPerRestore)} µs per connection (${ms(ws.netCpuUsPerRestore)} net), setup CPU when ramped ${ms(ws.setupCpuUsPerConn)} µs vs quotecast's ${ms(q.setupCpuUsPerConn)}`
      }`,
    },
  ]
}

const stormNotes = (runs: ReadonlyArray<StormRun>): Array<string> =>
  runs.flatMap((r) => {
    const notes: Array<string> = []
    if (r.admission !== undefined)
      notes.push(
        `${r.server}: admission ${Object.entries(r.admission)
          .map(([k, v]) => `${k.replace("quotecast_", "")} ${v ?? "-"}`)
          .join(", ")}`,
      )
    if (r.setupsRun !== null)
      notes.push(`${r.server}: ${r.setupsRun} connection setups run in the storm for ${r.restored} restores`)
    if (r.observers.dropped > 0) notes.push(`${r.server}: ${r.observers.dropped} observers dropped`)
    return notes
  })

/** Scenario G (or its smoke variant) as the harness runs it. */
export const stormCustom = (spec: StormSpec): CustomScenario => ({
  scenario: spec.scenario,
  round: (log) =>
    Effect.map(runStorm(spec, log), (runs) => ({
      table: { header: STORM_HEADER, rows: runs.map(stormRow) },
      checks: stormChecks(runs),
      notes: [
        "Server CPU per restore: the server's CPU time from the first reconnect to the moment the last client was restored, over restored clients; in parentheses the same net of the feed: of the CPU rate over the 3 s before the storm (the feed to the observers) and of the feed to the clients already restored (the CPU rate per connected client over the 3 s after the storm, times the seconds each restored client was fed before the last restore). Setup CPU (ramped): the same server's CPU per connection while the clients were first opened and subscribed, 100 per 100 ms, as scenarios A-E measure it. Refused or timed-out clients (30 s handshake timeout) retry with the SDK's backoff (500 ms x 2^n up to 30 s, equal jitter) until the session's TTL since the cut or the run's bound, whichever is first. Restore ms: from the storm's start to each client's `reconnected` (bare ws: `subscribed`).",
        ...stormNotes(runs),
      ],
      data: runs,
    })),
})
