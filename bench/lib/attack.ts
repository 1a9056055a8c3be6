/**
 * Scenario H: one attacker beside observers (issue 12, points 2 and 8). quotecast runs a feed
 * to observer connections, some of which also ping it; the observers' delivery latency and pong
 * round trip are measured over a window without the attacker, then over a window with one
 * anonymous attacker sending worst-case frames at its rate limit (RATE_LIMIT frames/s), in the
 * same run, on the same server. The target: the attacker adds at most 50 ms to either p99.
 *
 * The attacker's frames, in turn, each just under MAX_PAYLOAD_BYTES (a larger one is closed
 * with 1009 before it is decoded, which costs nothing):
 * - a `subscribe` whose `targets` hold tens of thousands of numbers;
 * - JSON nested as deep as fits (about 32,000 levels in 64 KB; 100,000 levels would need 200 KB);
 * - an unknown `type` that is one huge string.
 * If the server closes the attacker (rate-limit abuse, 1008), it reconnects at once and goes on.
 */
import { Clock, Duration, Effect, Fiber } from "effect"
import { SignJWT } from "jose"
import { WebSocket } from "ws"
import { emptySummary, LatencyHistogram, type LatencySummary } from "../../load/lib/index.js"
import type { CustomScenario } from "./bench.js"
import { benchCodeList } from "./codes.js"
import { LOAD_HOST_ENV, latencyOver, mb, openObservers, round1 } from "./observe.js"
import type { Check } from "./report.js"
import { type Scenario, serverEnv } from "./scenario.js"
import { type BenchServer, serverLabel, startServer } from "./server.js"

export interface AttackSpec {
  readonly scenario: Scenario
  /** Observer connections (delivery latency); the first `pingers` of them also ping. */
  readonly observers: number
  readonly pingers: number
  /** Pings per second per pinger. */
  readonly pingRate: number
  /** Attacker frames per second: the server's RATE_LIMIT. */
  readonly attackRate: number
  readonly maxPayloadBytes: number
  /**
   * After the attacker: rounds in which one user's alerts (`alertsPerUser`, each round a new
   * user with `sessionsPerUser` saved sessions and one live connection) are all crossed by one
   * ingested price; 0 leaves the phase out.
   */
  readonly alertRounds: number
  readonly alertsPerUser: number
  readonly sessionsPerUser: number
}

/** One user's alerts all firing at once: observers' latency in the 3 s before and after. */
export interface AlertStormResult {
  readonly rounds: number
  readonly created: number
  readonly refused: number
  /** Alerts the user's live connection received (of `created`). */
  readonly delivered: number
  readonly ingestStatus: ReadonlyArray<number>
  readonly calm: { readonly delivery: LatencySummary; readonly pong: LatencySummary }
  readonly storm: { readonly delivery: LatencySummary; readonly pong: LatencySummary }
}

export interface AttackRun {
  readonly server: string
  readonly status: "ok" | "failed"
  readonly note: string | undefined
  readonly observers: number
  readonly without: { readonly delivery: LatencySummary; readonly pong: LatencySummary }
  readonly with: { readonly delivery: LatencySummary; readonly pong: LatencySummary }
  readonly attacker: {
    readonly framesSent: number
    readonly bytesSent: number
    /** Error codes the attacker got back, and the largest error frame. */
    readonly errors: Record<string, number>
    /** The largest message it received (messages of a batch counted one by one). */
    readonly largestAnswerBytes: number
    readonly closes: Record<string, number>
    readonly connections: number
  }
  readonly serverCpuPercentWithout: number
  readonly serverCpuPercentWith: number
  readonly observersDropped: number
  readonly serverRssPeakMb: number
  readonly alerts: AlertStormResult | undefined
}

/** The three worst-case frames, each at most `max` bytes. */
export const attackFrames = (max: number): ReadonlyArray<string> => {
  const room = max - 100
  const head = '{"type":"subscribe","subscription_type":"stock","targets":['
  const numbers: Array<string> = []
  let len = head.length + 2
  for (let i = 0; len + String(i).length + 1 < room; i++) {
    numbers.push(String(i))
    len += String(i).length + 1
  }
  const depth = Math.floor((room - 60) / 2)
  return [
    `${head}${numbers.join(",")}]}`,
    `{"type":"subscribe","subscription_type":"stock","targets":${"[".repeat(depth)}${"]".repeat(depth)}}`,
    `{"type":"${"x".repeat(room - 20)}"}`,
  ]
}

const CODE_KEY = Buffer.from('"code":"')
const PONG = Buffer.from('"type":"pong"')

/** The largest message in a frame (a batch is measured message by message). */
const largestMessage = (data: Buffer): number => {
  if (data.length < 4096) return data.length
  try {
    const frame = JSON.parse(data.toString("utf8")) as { type?: string; messages?: Array<unknown> }
    if (frame.type !== "batch") return data.length
    return Math.max(0, ...(frame.messages ?? []).map((m) => Buffer.byteLength(JSON.stringify(m))))
  } catch {
    return data.length
  }
}

/** One attacker connection at a time, reconnecting when closed, sending `rate` frames/s. */
class Attacker {
  ws: WebSocket | undefined = undefined
  framesSent = 0
  bytesSent = 0
  connections = 0
  largestAnswer = 0
  readonly errors = new Map<string, number>()
  readonly closes = new Map<string, number>()
  #timer: ReturnType<typeof setInterval> | undefined = undefined
  #next = 0
  #stopped = false

  constructor(
    readonly url: string,
    readonly frames: ReadonlyArray<string>,
    readonly rate: number,
  ) {}

  #connect(): void {
    if (this.#stopped) return
    this.connections++
    const ws = new WebSocket(this.url, { perMessageDeflate: false, localAddress: "127.0.0.9" })
    this.ws = ws
    ws.on("error", () => {})
    ws.on("message", (data: Buffer) => {
      if (data.length > this.largestAnswer) this.largestAnswer = largestMessage(data)
      let at = data.indexOf(CODE_KEY)
      while (at >= 0) {
        const end = data.indexOf(0x22, at + CODE_KEY.length)
        const code = data.toString("latin1", at + CODE_KEY.length, end)
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
        at = data.indexOf(CODE_KEY, end)
      }
    })
    ws.on("close", (code) => {
      this.closes.set(String(code), (this.closes.get(String(code)) ?? 0) + 1)
      // A closed attacker comes back (bounded by the run's window), as a real one would.
      if (this.ws === ws) setTimeout(() => this.#connect(), 100)
    })
  }

  start(): void {
    this.#connect()
    // Frames are sent in bursts every 10 ms, `rate` per second in all.
    const perTick = this.rate / 100
    let owed = 0
    this.#timer = setInterval(() => {
      const ws = this.ws
      owed += perTick
      if (ws === undefined || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > 1_000_000) return
      for (; owed >= 1; owed--) {
        const frame = this.frames[this.#next++ % this.frames.length] as string
        ws.send(frame)
        this.framesSent++
        this.bytesSent += frame.length
      }
    }, 10)
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    const ws = this.ws
    this.ws = undefined
    ws?.terminate()
  }
}

/** Connections that ping every 1/rate s and measure the pong's round trip. */
class Pingers {
  readonly sockets: Array<WebSocket> = []
  readonly rtt = new LatencyHistogram()
  measuring = false
  #timer: ReturnType<typeof setInterval> | undefined = undefined

  constructor(
    readonly url: string,
    readonly n: number,
    readonly rate: number,
  ) {}

  open(): void {
    for (let i = 0; i < this.n; i++) {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, localAddress: `127.0.0.${1 + (i % 8)}` })
      ws.on("error", () => {})
      ws.on("message", (data: Buffer) => {
        if (!this.measuring || data.indexOf(PONG) < 0) return
        const now = Date.now()
        try {
          const frame = JSON.parse(data.toString("utf8")) as {
            type?: string
            id?: unknown
            messages?: Array<{ type?: string; id?: unknown }>
          }
          const pongs = frame.type === "batch" ? (frame.messages ?? []) : [frame]
          for (const m of pongs)
            if (m.type === "pong" && typeof m.id === "string") this.rtt.recordMillis(now - Number(m.id))
        } catch {
          // not a frame of ours
        }
      })
      this.sockets.push(ws)
    }
    this.#timer = setInterval(() => {
      const id = String(Date.now())
      for (const ws of this.sockets)
        if (ws.readyState === WebSocket.OPEN) ws.send(`{"type":"ping","id":"${id}"}`)
    }, 1000 / this.rate)
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    for (const ws of this.sockets) ws.terminate()
  }
}

/** Delivery and pong p99 over `sec` seconds. */
const window = (stats: Parameters<typeof latencyOver>[0], pingers: Pingers, sec: number) =>
  Effect.gen(function* () {
    pingers.rtt.reset()
    pingers.measuring = true
    const delivery = yield* latencyOver(stats, sec)
    pingers.measuring = false
    const pong = pingers.rtt.summary()
    pingers.rtt.reset()
    return { delivery, pong }
  })

const BENCH_SECRET = "quotecast-bench-secret-0123456789-abcdef"
const sign = (sub: string, role?: string) =>
  new SignJWT(role === undefined ? { sub } : { sub, role })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(BENCH_SECRET))

const STORM_WINDOW_SEC = 3

/** Opens a socket and resolves with it and its messages (batches unpacked) once open. */
const openRecording = (url: string) =>
  new Promise<{ readonly ws: WebSocket; readonly msgs: Array<Record<string, unknown>> }>(
    (resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, localAddress: "127.0.0.10" })
      const msgs: Array<Record<string, unknown>> = []
      ws.on("message", (d: Buffer) => {
        try {
          const m = JSON.parse(d.toString("utf8")) as Record<string, unknown>
          if (m.type === "batch" && Array.isArray(m.messages))
            msgs.push(...(m.messages as Array<Record<string, unknown>>))
          else msgs.push(m)
        } catch {
          // not JSON: not ours to judge here
        }
      })
      ws.once("open", () => resolve({ ws, msgs }))
      ws.once("error", reject)
    },
  )

const until = async (cond: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return cond()
}

/** One round: a new user's alerts on `code` and its saved sessions, then one crossing price. */
const alertRound = async (server: BenchServer, spec: AttackSpec, code: string, round: number) => {
  const http = `http://127.0.0.1:${server.port}`
  const user = `bench-alert-user-${round}`
  const token = await sign(user)
  const peek = await openRecording(server.wsUrl)
  peek.ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: [code] }))
  await until(() => peek.msgs.some((m) => m.type === "price_update"), 10_000)
  const snap = peek.msgs.find((m) => m.type === "price_update")
  peek.ws.terminate()
  if (snap === undefined) throw new Error(`no price for ${code}`)
  const prevClose = Number(snap.price) - Number(snap.change)
  const threshold = Math.round(prevClose * 1.15)
  // A multiple of 1,000 is on every KRX tick; +25% stays inside the daily limit.
  const crossing = Math.round((prevClose * 1.25) / 1000) * 1000
  let created = 0
  let refused = 0
  for (let i = 0; i < spec.alertsPerUser; i += 25) {
    const answers = await Promise.all(
      Array.from({ length: Math.min(25, spec.alertsPerUser - i) }, (_, j) =>
        fetch(`${http}/v1/alerts`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ code, alert_type: "price_above", threshold: threshold + i + j }),
        }),
      ),
    )
    for (const r of answers) {
      if (r.status === 201) created++
      else refused++
      await r.arrayBuffer()
    }
  }
  for (let i = 0; i < spec.sessionsPerUser; i++) {
    const c = await openRecording(`${server.wsUrl}?token=${token}`)
    c.ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: [code] }))
    await until(() => c.msgs.some((m) => m.type === "subscribed"), 10_000)
    await new Promise<void>((resolve) => {
      c.ws.once("close", () => resolve())
      c.ws.close()
    })
  }
  const live = await openRecording(`${server.wsUrl}?token=${token}`)
  return {
    created,
    refused,
    live,
    fire: async () => {
      const res = await fetch(`${http}/v1/ingest`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${await sign("bench-publisher", "publisher")}`,
        },
        body: JSON.stringify({ events: [{ type: "price_update", code, price: crossing, volume: 1 }] }),
      })
      await res.arrayBuffer()
      return res.status
    },
  }
}

/** The alert-storm phase: each round's calm window, then its crossing and the window after it. */
const alertStorms = (
  spec: AttackSpec,
  server: BenchServer,
  stats: Parameters<typeof latencyOver>[0],
  pingers: Pingers,
  codes: ReadonlyArray<string>,
  log: (line: string) => void,
) =>
  Effect.gen(function* () {
    let created = 0
    let refused = 0
    let delivered = 0
    const ingestStatus: Array<number> = []
    let calm = { delivery: emptySummary, pong: emptySummary }
    let storm = { delivery: emptySummary, pong: emptySummary }
    for (let round = 0; round < spec.alertRounds; round++) {
      const code = codes[(round * 7) % codes.length] as string
      const r = yield* Effect.tryPromise(() => alertRound(server, spec, code, round))
      yield* Effect.addFinalizer(() => Effect.sync(() => r.live.ws.terminate()))
      created += r.created
      refused += r.refused
      const c = yield* window(stats, pingers, STORM_WINDOW_SEC)
      const fired = yield* Effect.fork(Effect.tryPromise(() => r.fire()).pipe(Effect.orElseSucceed(() => 0)))
      const w = yield* window(stats, pingers, STORM_WINDOW_SEC)
      ingestStatus.push(yield* Fiber.join(fired))
      delivered += r.live.msgs.filter((m) => m.type === "alert").length
      // The worst round is reported.
      if (w.delivery.p99 >= storm.delivery.p99) {
        storm = w
        calm = c
      }
      log(
        `  ${server.name}: alert round ${round + 1}: ${r.created} alerts (${r.refused} refused), ${spec.sessionsPerUser} saved sessions; delivery p99 ${c.delivery.p99} -> ${w.delivery.p99} ms, pong p99 ${c.pong.p99} -> ${w.pong.p99} ms`,
      )
    }
    const result: AlertStormResult = {
      rounds: spec.alertRounds,
      created,
      refused,
      delivered,
      ingestStatus,
      calm,
      storm,
    }
    return result
  })

const measureAttack = (spec: AttackSpec, server: BenchServer, log: (line: string) => void) =>
  Effect.gen(function* () {
    const s = spec.scenario
    const codes = benchCodeList(s.codes)
    const { stats } = yield* openObservers(s, server, codes, spec.observers)
    const pingers = new Pingers(server.wsUrl, spec.pingers, spec.pingRate)
    yield* Effect.acquireRelease(
      Effect.sync(() => pingers.open()),
      () => Effect.sync(() => pingers.close()),
    )
    const attacker = new Attacker(server.wsUrl, attackFrames(spec.maxPayloadBytes), spec.attackRate)
    yield* Effect.addFinalizer(() => Effect.sync(() => attacker.stop()))
    yield* server.command("start-feed")
    yield* Effect.sleep(Duration.seconds(s.warmupSec))
    let peak = 0
    const sampleRss = () => {
      const smp = server.sample()
      if (smp !== undefined && smp.rssBytes > peak) peak = smp.rssBytes
      return smp
    }
    log(
      `  ${server.name}: ${stats.established} observers, ${spec.pingers} pinging; window without the attacker`,
    )
    const c0 = sampleRss()
    const t0 = yield* Clock.currentTimeMillis
    const without = yield* window(stats, pingers, s.windowSec)
    const c1 = sampleRss()
    const t1 = yield* Clock.currentTimeMillis
    log(`  ${server.name}: attacker on (${spec.attackRate} frames/s)`)
    attacker.start()
    yield* Effect.sleep("1 second")
    const c2 = sampleRss()
    const t2 = yield* Clock.currentTimeMillis
    const withAttacker = yield* window(stats, pingers, s.windowSec)
    const c3 = sampleRss()
    const t3 = yield* Clock.currentTimeMillis
    attacker.stop()
    const alerts =
      spec.alertRounds > 0
        ? yield* alertStorms(spec, server, stats, pingers, codes, log).pipe(
            Effect.tapError((e) =>
              Effect.sync(() => log(`  ${server.name}: alert storm not measured: ${String(e)}`)),
            ),
            Effect.orElseSucceed(() => undefined),
          )
        : undefined
    yield* server.command("stop-feed").pipe(Effect.ignore)
    const cpu = (a: typeof c0, b: typeof c0, ms: number) =>
      a !== undefined && b !== undefined && ms > 0 ? round1(((b.cpuSec - a.cpuSec) * 1e5) / ms) : 0
    const run: AttackRun = {
      server: server.name,
      status: "ok",
      note: server.alive() ? undefined : "server exited",
      observers: stats.established,
      without,
      with: withAttacker,
      attacker: {
        framesSent: attacker.framesSent,
        bytesSent: attacker.bytesSent,
        errors: Object.fromEntries(attacker.errors),
        largestAnswerBytes: attacker.largestAnswer,
        closes: Object.fromEntries(attacker.closes),
        connections: attacker.connections,
      },
      serverCpuPercentWithout: cpu(c0, c1, t1 - t0),
      serverCpuPercentWith: cpu(c2, c3, t3 - t2),
      observersDropped: stats.dropped,
      serverRssPeakMb: mb(peak),
      alerts,
    }
    log(
      `  ${server.name}: delivery p99 ${without.delivery.p99} -> ${withAttacker.delivery.p99} ms, pong p99 ${without.pong.p99} -> ${withAttacker.pong.p99} ms; attacker sent ${attacker.framesSent} frames, got ${JSON.stringify(run.attacker.errors)}, closes ${JSON.stringify(run.attacker.closes)}`,
    )
    return run
  })

const failedAttack = (spec: AttackSpec, name: string, note: string): AttackRun => ({
  server: name,
  status: "failed",
  note,
  observers: spec.observers,
  without: { delivery: emptySummary, pong: emptySummary },
  with: { delivery: emptySummary, pong: emptySummary },
  attacker: { framesSent: 0, bytesSent: 0, errors: {}, largestAnswerBytes: 0, closes: {}, connections: 0 },
  serverCpuPercentWithout: 0,
  serverCpuPercentWith: 0,
  observersDropped: 0,
  serverRssPeakMb: 0,
  alerts: undefined,
})

export const runAttack = (
  spec: AttackSpec,
  log: (line: string) => void,
): Effect.Effect<ReadonlyArray<AttackRun>> =>
  Effect.forEach(spec.scenario.servers, (srv) => {
    const name = srv.name ?? serverLabel[srv.kind]
    return Effect.scoped(
      Effect.gen(function* () {
        const env = {
          ...serverEnv(spec.scenario),
          ...LOAD_HOST_ENV,
          RATE_LIMIT: String(spec.attackRate),
          MAX_PAYLOAD_BYTES: String(spec.maxPayloadBytes),
          JWT_SECRET: BENCH_SECRET,
          ...srv.env,
        }
        const server = yield* startServer(srv.kind, env, name)
        return yield* measureAttack(spec, server, log)
      }),
    ).pipe(
      Effect.timeout(Duration.seconds(2 * spec.scenario.windowSec + spec.scenario.warmupSec + 120)),
      Effect.catchAll((e) =>
        Effect.succeed(failedAttack(spec, name, e._tag === "TimeoutException" ? "run timed out" : e._tag)),
      ),
    )
  })

export const ATTACK_HEADER = [
  "server",
  "observers",
  "delivery p99 ms without / with",
  "pong p99 ms without / with",
  "delivery max ms without / with",
  "server CPU % without / with",
  "attacker frames (KB)",
  "attacker got",
  "largest message to it (bytes)",
  "attacker closes",
  "note",
]

const pair = (a: number, b: number) => `${a.toFixed(0)} / ${b.toFixed(0)}`
const entries = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ") || "-"

export const attackRow = (r: AttackRun): ReadonlyArray<string> => [
  r.server,
  String(r.observers),
  pair(r.without.delivery.p99, r.with.delivery.p99),
  pair(r.without.pong.p99, r.with.pong.p99),
  pair(r.without.delivery.max, r.with.delivery.max),
  pair(r.serverCpuPercentWithout, r.serverCpuPercentWith),
  `${r.attacker.framesSent} (${Math.round(r.attacker.bytesSent / 1024).toLocaleString("en-US")})`,
  entries(r.attacker.errors),
  String(r.attacker.largestAnswerBytes),
  entries(r.attacker.closes),
  [
    r.status === "ok" ? "" : r.status,
    r.note ?? "",
    r.observersDropped > 0 ? `${r.observersDropped} observers dropped` : "",
  ]
    .filter((x) => x !== "")
    .join("; "),
]

export const attackChecks = (runs: ReadonlyArray<AttackRun>): ReadonlyArray<Check> => {
  const q = runs.find((r) => r.status === "ok")
  if (q === undefined)
    return [
      { target: "the attacker adds <= 50 ms p99", met: undefined, detail: runs[0]?.note ?? "run failed" },
    ]
  const dd = q.with.delivery.p99 - q.without.delivery.p99
  const dp = q.with.pong.p99 - q.without.pong.p99
  const measured = q.with.delivery.count > 0 && q.without.delivery.count > 0 && q.with.pong.count > 0
  return [
    {
      target: "the attacker adds <= 50 ms to observers' delivery p99",
      met: measured ? dd <= 50 && q.observersDropped === 0 : undefined,
      detail: `${q.without.delivery.p99} -> ${q.with.delivery.p99} ms (${dd >= 0 ? "+" : ""}${dd.toFixed(0)} ms), ${q.attacker.framesSent} attacker frames`,
    },
    {
      target: "the attacker adds <= 50 ms to observers' pong p99",
      met: measured ? dp <= 50 : undefined,
      detail: `${q.without.pong.p99} -> ${q.with.pong.p99} ms (${dp >= 0 ? "+" : ""}${dp.toFixed(0)} ms)`,
    },
    ...(q.alerts === undefined
      ? []
      : [
          {
            target: "one user's alerts firing at once add <= 50 ms to observers' delivery and pong p99",
            met:
              q.alerts.storm.delivery.count > 0 && q.alerts.storm.pong.count > 0
                ? q.alerts.storm.delivery.p99 - q.alerts.calm.delivery.p99 <= 50 &&
                  q.alerts.storm.pong.p99 - q.alerts.calm.pong.p99 <= 50
                : undefined,
            detail: `${q.alerts.created} alerts (${q.alerts.refused} refused) with saved sessions, ${q.alerts.delivered} delivered live; 3 s before / after the crossing: delivery p99 ${q.alerts.calm.delivery.p99} / ${q.alerts.storm.delivery.p99} ms (max ${q.alerts.calm.delivery.max} / ${q.alerts.storm.delivery.max}), pong p99 ${q.alerts.calm.pong.p99} / ${q.alerts.storm.pong.p99} ms (max ${q.alerts.calm.pong.max} / ${q.alerts.storm.pong.max}); ingest answered ${q.alerts.ingestStatus.join(", ")}`,
          },
        ]),
    {
      target: "every answer to the attacker under 4 KB",
      met: q.attacker.framesSent > 0 ? q.attacker.largestAnswerBytes < 4096 : undefined,
      detail: `largest message the attacker received: ${q.attacker.largestAnswerBytes} bytes`,
    },
  ]
}

/** Scenario H (or its smoke variant) as the harness runs it. */
export const attackCustom = (spec: AttackSpec): CustomScenario => ({
  scenario: spec.scenario,
  round: (log) =>
    Effect.map(runAttack(spec, log), (runs) => ({
      table: { header: ATTACK_HEADER, rows: runs.map(attackRow) },
      checks: attackChecks(runs),
      notes: [
        `The attacker (one anonymous connection from 127.0.0.9) sends ${spec.attackRate} frames/s, the server's RATE_LIMIT, cycling the three worst-case frames of at most ${spec.maxPayloadBytes} bytes (MAX_PAYLOAD_BYTES); closed, it reconnects after 100 ms. Both windows are ${spec.scenario.windowSec} s on the same server in the same run, the attacker's starting 1 s after it connected. Pong p99: round trip of a ping sent by ${spec.pingers} observers ${spec.pingRate} times a second.`,
      ],
      data: runs,
    })),
})
