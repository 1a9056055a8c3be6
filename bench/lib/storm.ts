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
import { Clock, Duration, Effect } from "effect"
import { WebSocket } from "ws"
import { codesFor, emptySummary, type LatencySummary } from "../../load/lib/index.js"
import type { CustomScenario } from "./bench.js"
import { benchCodeList } from "./codes.js"
import { LOAD_HOST_ENV, latencyOver, mb, openObservers, readMetric, round1 } from "./observe.js"
import type { Check } from "./report.js"
import { type Scenario, serverEnv } from "./scenario.js"
import { type BenchServer, type ServerKind, serverLabel, startServer } from "./server.js"

export interface StormSpec {
  readonly scenario: Scenario
  /** Connections that keep receiving through the storm (not part of it). */
  readonly observers: number
  /** Longest the storm may take before the run stops waiting (its own bound). */
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
  /** Server CPU per connection while opening and subscribing all of them (the bench's "setup CPU"). */
  readonly setupCpuUsPerConn: number | null
  /** quotecast: got `reconnected` with its subscriptions; bare ws: got `subscribed`. */
  readonly restored: number
  /** `reconnected` holding fewer subscriptions than were saved. */
  readonly partial: number
  readonly restoreFailed: number
  /** Refusals seen by clients, by kind ("close 1013", "HTTP 503", ...), each retried with backoff. */
  readonly refusals: Record<string, number>
  readonly retries: number
  /** First reconnect to last restore, ms. */
  readonly stormMs: number | null
  /** Server CPU over the storm per restore, µs; and the same net of the CPU rate before it. */
  readonly cpuUsPerRestore: number | null
  readonly netCpuUsPerRestore: number | null
  readonly serverCpuPercentBefore: number
  readonly serverCpuPercentDuring: number
  readonly serverRssPeakMb: number
  /** Admission metrics of quotecast after the storm (undefined for the baseline). */
  readonly admission: Record<string, number | undefined> | undefined
  readonly observers: {
    readonly count: number
    readonly before: LatencySummary
    readonly during: LatencySummary
    readonly dropped: number
  }
}

const SESSION_KEY = Buffer.from('"session_id":"')
const RECONNECTED = Buffer.from('"type":"reconnected"')
const SUBSCRIBED = Buffer.from('"type":"subscribed"')
const RESTORE_FAILED = Buffer.from("SESSION_RESTORATION_FAILED")
const POLL = Duration.millis(50)

/** The SDK's backoff (src/client/backoff.ts defaults): 500 ms x 2^n, at most 30 s, equal jitter. */
const backoffMs = (attempt: number): number => {
  const d = Math.min(500 * 2 ** attempt, 30_000)
  return d * (0.5 + Math.random() * 0.5)
}
const MAX_ATTEMPTS = 8

type Phase = "priming" | "primed" | "cut" | "storming" | "done" | "failed"

/** One storm client; its callbacks are cheap once it is restored (it only counts frames then). */
class StormClient {
  ws: WebSocket | undefined = undefined
  sessionId: string | undefined = undefined
  phase: Phase = "priming"
  attempts = 0
  doneAt = 0
  restoredTargets = 0
  constructor(
    readonly index: number,
    readonly codes: ReadonlyArray<string>,
  ) {}
}

class Storm {
  readonly clients: Array<StormClient>
  readonly refusals = new Map<string, number>()
  retries = 0
  primed = 0
  done = 0
  failed = 0
  readonly timers = new Set<ReturnType<typeof setTimeout>>()

  constructor(
    readonly url: string,
    readonly sessions: boolean,
    n: number,
    codes: ReadonlyArray<string>,
    subscriptions: number,
  ) {
    this.clients = Array.from({ length: n }, (_, i) => new StormClient(i, codesFor(codes, subscriptions, i)))
  }

  #subscribe(c: StormClient, ws: WebSocket): void {
    ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: c.codes }))
  }

  #refused(c: StormClient, why: string): void {
    if (c.phase !== "storming") return
    // Later events of the refused socket are not this client's any more.
    c.ws = undefined
    this.refusals.set(why, (this.refusals.get(why) ?? 0) + 1)
    if (c.attempts >= MAX_ATTEMPTS) {
      c.phase = "failed"
      this.failed++
      return
    }
    this.retries++
    const t = setTimeout(
      () => {
        this.timers.delete(t)
        this.#open(c)
      },
      backoffMs(c.attempts - 1),
    )
    this.timers.add(t)
  }

  /** Opens client `c`: priming (new session, subscribe) or storming (restore its session). */
  #open(c: StormClient): void {
    c.attempts++
    const restoring = c.phase === "storming" && this.sessions && c.sessionId !== undefined
    const url = restoring ? `${this.url}?session_id=${c.sessionId}` : this.url
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: 30_000,
      localAddress: `127.0.0.${1 + (c.index % 8)}`,
    })
    c.ws = ws
    ws.on("open", () => {
      if (!restoring) this.#subscribe(c, ws)
    })
    ws.on("unexpected-response", (_req, res) => {
      res.resume()
      if (c.ws === ws) this.#refused(c, `HTTP ${res.statusCode}`)
      ws.terminate()
    })
    ws.on("error", () => {})
    ws.on("close", (code) => {
      if (c.ws !== ws) return
      if (c.phase === "storming") this.#refused(c, `close ${code}`)
    })
    ws.on("message", (data: Buffer, isBinary) => {
      if (isBinary || c.ws !== ws) return
      if (c.phase === "priming") {
        if (c.sessionId === undefined) {
          const at = data.indexOf(SESSION_KEY)
          if (at >= 0)
            c.sessionId = data.toString("latin1", at + SESSION_KEY.length, at + SESSION_KEY.length + 36)
        }
        if (data.indexOf(SUBSCRIBED) >= 0) {
          c.phase = "primed"
          this.primed++
        }
        return
      }
      if (c.phase !== "storming") return
      if (restoring) {
        if (data.indexOf(RESTORE_FAILED) >= 0) {
          c.phase = "failed"
          this.failed++
          return
        }
        if (data.indexOf(RECONNECTED) < 0) return
        c.restoredTargets = restoredTargetsOf(data)
      } else if (data.indexOf(SUBSCRIBED) < 0) return
      c.phase = "done"
      c.doneAt = Date.now()
      this.done++
    })
  }

  prime(from: number, to: number): void {
    for (let i = from; i < Math.min(to, this.clients.length); i++) this.#open(this.clients[i] as StormClient)
  }

  /** Cuts every primed client's socket (no close handshake: a network blip). */
  cut(): void {
    for (const c of this.clients) {
      if (c.phase === "primed") c.phase = "cut"
      c.ws?.terminate()
    }
  }

  /** Every cut client reconnects, in one go. */
  storm(): void {
    for (const c of this.clients) {
      if (c.phase !== "cut") continue
      c.phase = "storming"
      c.attempts = 0
      this.#open(c)
    }
  }

  get storming(): number {
    return this.clients.filter((c) => c.phase === "cut").length
  }

  lastDoneAt(): number {
    let last = 0
    for (const c of this.clients) if (c.doneAt > last) last = c.doneAt
    return last
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const c of this.clients) {
      const ws = c.ws
      c.ws = undefined
      ws?.terminate()
    }
  }
}

/** Targets in the frame's `reconnected` message (parsed once per client). */
const restoredTargetsOf = (data: Buffer): number => {
  try {
    const frame = JSON.parse(data.toString("utf8")) as {
      type?: string
      messages?: Array<{ type?: string; restored_subscriptions?: Record<string, Array<string>> }>
      restored_subscriptions?: Record<string, Array<string>>
    }
    const msg = frame.type === "batch" ? frame.messages?.find((m) => m.type === "reconnected") : frame
    return Object.values(msg?.restored_subscriptions ?? {}).reduce((n, l) => n + l.length, 0)
  } catch {
    return -1
  }
}

const waitUntil = (cond: () => boolean, limit: Duration.DurationInput) =>
  Effect.sleep(POLL).pipe(Effect.repeat({ until: cond }), Effect.timeout(limit), Effect.ignore)

const ADMISSION_METRICS = [
  "quotecast_setup_admission_queued_total",
  "quotecast_setup_admission_rejected_total",
  "quotecast_setups_in_flight_peak",
  "quotecast_setup_admission_wait_ms_sum",
  "quotecast_setup_admission_wait_ms_count",
]

const measureStorm = (spec: StormSpec, server: BenchServer, log: (line: string) => void) =>
  Effect.gen(function* () {
    const s = spec.scenario
    const codes = benchCodeList(s.codes)
    yield* server.command("gc")
    yield* Effect.sleep("300 millis")
    const base = server.sample()
    const { stats: observerStats } = yield* openObservers(s, server, codes, spec.observers)
    const storm = new Storm(server.wsUrl, server.kind === "quotecast", s.connections, codes, s.subscriptions)
    yield* Effect.addFinalizer(() => Effect.sync(() => storm.close()))
    log(`  ${server.name}: ${spec.observers} observers open; priming ${s.connections} clients`)
    for (let i = 0; i < s.connections; i += 100) {
      storm.prime(i, i + 100)
      yield* Effect.sleep("100 millis")
    }
    yield* waitUntil(() => storm.primed >= s.connections, Duration.seconds(45))
    const primedSample = server.sample()
    const primedAll = spec.observers + storm.primed
    const setupCpuUsPerConn =
      base !== undefined && primedSample !== undefined && primedAll > 0
        ? Math.round(((primedSample.cpuSec - base.cpuSec) * 1e6) / primedAll)
        : null
    log(`  ${server.name}: ${storm.primed} primed; cutting them`)
    storm.cut()
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

    const waiting = storm.storming
    log(`  ${server.name}: ${waiting} clients reconnect at once`)
    observerStats.latency.reset()
    observerStats.startWindow(Date.now())
    const s0 = server.sample()
    const t0 = yield* Clock.currentTimeMillis
    storm.storm()
    let peak = s0?.rssBytes ?? 0
    const deadline = t0 + spec.stormLimitSec * 1000
    for (;;) {
      yield* Effect.sleep(POLL)
      const smp = server.sample()
      if (smp !== undefined && smp.rssBytes > peak) peak = smp.rssBytes
      if (storm.done + storm.failed >= waiting || Date.now() >= deadline || !server.alive()) break
    }
    const s1 = server.sample()
    observerStats.endWindow(Date.now())
    const during = observerStats.latency.summary()
    const last = storm.lastDoneAt()
    const stormMs = storm.done > 0 && last > 0 ? last - t0 : null
    const cpuSec = s0 !== undefined && s1 !== undefined ? s1.cpuSec - s0.cpuSec : undefined
    const spanSec = Math.max(0.001, ((s1 === undefined ? last : Date.now()) - t0) / 1000)
    const admission =
      server.kind === "quotecast"
        ? Object.fromEntries(
            yield* Effect.forEach(ADMISSION_METRICS, (m) =>
              Effect.map(readMetric(server, m), (v) => [m, v] as const),
            ),
          )
        : undefined
    yield* server.command("stop-feed").pipe(Effect.ignore)
    const partial = storm.clients.filter(
      (c) => c.phase === "done" && server.kind === "quotecast" && c.restoredTargets < c.codes.length,
    ).length
    const run: StormRun = {
      server: server.name,
      kind: server.kind,
      status: "ok",
      note: storm.done < waiting ? `${waiting - storm.done} of ${waiting} not restored` : undefined,
      clients: s.connections,
      primed: storm.primed,
      setupCpuUsPerConn,
      restored: storm.done,
      partial,
      restoreFailed: storm.failed,
      refusals: Object.fromEntries(storm.refusals),
      retries: storm.retries,
      stormMs,
      cpuUsPerRestore:
        cpuSec !== undefined && storm.done > 0 ? Math.round((cpuSec * 1e6) / storm.done) : null,
      netCpuUsPerRestore:
        cpuSec !== undefined && storm.done > 0
          ? Math.round((Math.max(0, cpuSec - cpuRateBefore * spanSec) * 1e6) / storm.done)
          : null,
      serverCpuPercentBefore: round1(cpuRateBefore * 100),
      serverCpuPercentDuring: cpuSec === undefined ? 0 : round1((cpuSec / spanSec) * 100),
      serverRssPeakMb: mb(peak),
      admission,
      observers: {
        count: observerStats.established,
        before,
        during,
        dropped: observerStats.dropped,
      },
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
  setupCpuUsPerConn: null,
  restored: 0,
  partial: 0,
  restoreFailed: 0,
  refusals: {},
  retries: 0,
  stormMs: null,
  cpuUsPerRestore: null,
  netCpuUsPerRestore: null,
  serverCpuPercentBefore: 0,
  serverCpuPercentDuring: 0,
  serverRssPeakMb: 0,
  admission: undefined,
  observers: { count: 0, before: emptySummary, during: emptySummary, dropped: 0 },
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
        return yield* measureStorm(spec, server, log)
      }),
    ).pipe(
      Effect.timeout(Duration.seconds(spec.stormLimitSec + 150)),
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
  "restored",
  "storm ms (first reconnect to last restored)",
  "server CPU µs/restore (net of the feed)",
  "setup CPU µs/conn (ramped)",
  "server CPU % during",
  "observer p99 ms before",
  "observer p99 ms during",
  "observer max ms during",
  "refused (retried)",
  "RSS peak MB",
  "note",
]

export const stormRow = (r: StormRun): ReadonlyArray<string> => [
  r.server,
  `${r.restored.toLocaleString("en-US")}/${r.clients.toLocaleString("en-US")}${r.partial > 0 ? ` (${r.partial} partial)` : ""}`,
  ms(r.stormMs),
  `${ms(r.cpuUsPerRestore)} (${ms(r.netCpuUsPerRestore)})`,
  ms(r.setupCpuUsPerConn),
  r.serverCpuPercentDuring.toFixed(0),
  r.observers.before.p99.toFixed(0),
  r.observers.during.p99.toFixed(0),
  r.observers.during.max.toFixed(0),
  `${
    Object.entries(r.refusals)
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ") || "0"
  } (${r.retries})`,
  r.serverRssPeakMb.toFixed(0),
  [r.status === "ok" ? "" : r.status, r.note ?? "", r.restoreFailed > 0 ? `${r.restoreFailed} failed` : ""]
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
      met: q.restored === q.clients && q.partial === 0,
      detail: `${q.restored} of ${q.clients} restored (${q.partial} partial, ${q.restoreFailed} failed), ${q.retries} retries after refusals`,
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
        "Server CPU per restore: the server's CPU time from the first reconnect to the moment the last client was restored, over restored clients; in parentheses the same net of the CPU rate measured over the 3 s before the storm (the feed to the observers). Setup CPU (ramped): the same server's CPU per connection while the clients were first opened and subscribed, 100 per 100 ms, as scenarios A-E measure it. Refused clients retry with the SDK's backoff (500 ms x 2^n, equal jitter).",
        ...stormNotes(runs),
      ],
      data: runs,
    })),
})
