/**
 * The reconnect storm's clients (scenario G), in a process of their own: opening 10,000
 * sockets at once, reading their handshakes and their `reconnected` batches keeps an event loop
 * busy for seconds, and the observers (in the harness) must not measure that as delivery delay.
 * The harness drives this process over Node IPC (`StormCommand` -> `StormStatus`).
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { WebSocket } from "ws"
import { codesFor, failureReason } from "../../load/lib/index.js"

export type StormCommand =
  | {
      readonly cmd: "prime"
      readonly url: string
      readonly sessions: boolean
      readonly clients: number
      readonly codes: ReadonlyArray<string>
      readonly subscriptions: number
    }
  | { readonly cmd: "cut" }
  /**
   * Every cut client reconnects; each one that is refused or times out retries with the SDK's
   * backoff until `giveUpAfterMs` after this command (the session's TTL: past it there is
   * nothing left to restore), as the SDK, which keeps trying, would.
   */
  | { readonly cmd: "storm"; readonly giveUpAfterMs: number }
  /** `detail`: also the restore-time percentiles and sums (a pass over every client; once, at the end). */
  | { readonly cmd: "status"; readonly detail?: boolean }
  /** Closes every client and stops its retries (the storm is over, measured or not). */
  | { readonly cmd: "stop" }

export interface StormStatus {
  readonly ok: StormCommand["cmd"]
  readonly primed: number
  /** Clients cut and waiting to reconnect (before the storm). */
  readonly cut: number
  readonly done: number
  /** Answered SESSION_RESTORATION_FAILED, or gave up at `giveUpAfterMs`. */
  readonly failed: number
  readonly gaveUp: number
  /** Restored with fewer subscriptions than were saved. */
  readonly partial: number
  readonly lastDoneAt: number
  /**
   * Sum over restored clients of their restore time (ms since epoch): with `done` and the
   * storm's end it gives the client-seconds the restored clients were fed during the storm.
   */
  readonly doneAtSum: number
  /** Restore time (storm start to `reconnected`) percentiles of the restored clients, ms. */
  readonly restoreMs: { readonly p50: number; readonly p90: number; readonly p99: number }
  /** Most attempts one restored client needed. */
  readonly maxAttempts: number
  readonly refusals: Record<string, number>
  readonly retries: number
  readonly primeFailures: Record<string, number>
  /** This process's event-loop delay p99 since the storm began, ms. */
  readonly lagP99Ms: number
}

const SESSION_KEY = Buffer.from('"session_id":"')
const RECONNECTED = Buffer.from('"type":"reconnected"')
const SUBSCRIBED = Buffer.from('"type":"subscribed"')
const RESTORE_FAILED = Buffer.from("SESSION_RESTORATION_FAILED")

/** The SDK's backoff (src/client/backoff.ts defaults): 500 ms x 2^n, at most 30 s, equal jitter. */
const backoffMs = (attempt: number): number => {
  const d = Math.min(500 * 2 ** Math.min(attempt, 16), 30_000)
  return d * (0.5 + Math.random() * 0.5)
}
/** Storm clients opened per event-loop turn of this process (see `storm`). */
const STORM_CHUNK = 100

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

export class Storm {
  readonly clients: Array<StormClient>
  readonly refusals = new Map<string, number>()
  /** Failures before a client was subscribed, by reason (retried twice; one that never made it takes no part in the storm). */
  readonly primeFailures = new Map<string, number>()
  retries = 0
  primed = 0
  done = 0
  failed = 0
  gaveUp = 0
  stormAt = 0
  giveUpAt = Number.POSITIVE_INFINITY
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
    const delay = backoffMs(c.attempts - 1)
    if (Date.now() + delay >= this.giveUpAt) {
      c.phase = "failed"
      this.failed++
      this.gaveUp++
      return
    }
    this.retries++
    const t = setTimeout(() => {
      this.timers.delete(t)
      this.#open(c)
    }, delay)
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
    let opened = false
    let failure = ""
    ws.on("open", () => {
      opened = true
      if (!restoring) this.#subscribe(c, ws)
    })
    ws.on("unexpected-response", (_req, res) => {
      res.resume()
      if (c.ws === ws) this.#refused(c, `HTTP ${res.statusCode}`)
      ws.terminate()
    })
    ws.on("error", (e) => {
      failure = failureReason(e)
    })
    ws.on("close", (code) => {
      if (c.ws !== ws) return
      // Before the handshake completed: why it failed (a timeout, a reset); after: the close code.
      const why = opened ? `close ${code}` : `connect: ${failure || code}`
      if (c.phase === "storming") this.#refused(c, why)
      else if (c.phase === "priming") {
        this.primeFailures.set(why, (this.primeFailures.get(why) ?? 0) + 1)
        // A client that could not be set up gets two more tries; the storm needs its session.
        if (c.attempts < 3) {
          c.ws = undefined
          const t = setTimeout(() => {
            this.timers.delete(t)
            this.#open(c)
          }, 500)
          this.timers.add(t)
        }
      }
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
    // Priming is over: a retry still pending would open a client that takes no part.
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const c of this.clients) {
      if (c.phase === "primed") c.phase = "cut"
      // The cut sockets' own close events are not this client's any more.
      const ws = c.ws
      c.ws = undefined
      ws?.terminate()
    }
  }

  /**
   * Every cut client reconnects at once: as fast as this process can open sockets, a chunk per
   * event-loop turn. Opened in one synchronous loop, 10,000 sockets blocked this process for
   * about 6 s on the 2-core machine while the kernel completed their TCP handshakes: every
   * request was then written seconds after its connection, all in one burst, with each client's
   * handshake timer running since before its socket existed. Independent clients write their
   * request as soon as they are connected.
   */
  storm(giveUpAfterMs: number): void {
    this.stormAt = Date.now()
    this.giveUpAt = this.stormAt + giveUpAfterMs
    const cut = this.clients.filter((c) => c.phase === "cut")
    for (const c of cut) {
      c.phase = "storming"
      c.attempts = 0
    }
    let next = 0
    const step = () => {
      const end = Math.min(cut.length, next + STORM_CHUNK)
      for (; next < end; next++) this.#open(cut[next] as StormClient)
      if (next < cut.length) setImmediate(step)
    }
    step()
  }

  get storming(): number {
    return this.clients.filter((c) => c.phase === "cut").length
  }

  lastDoneAt(): number {
    let last = 0
    for (const c of this.clients) if (c.doneAt > last) last = c.doneAt
    return last
  }

  doneAtSum(): number {
    let sum = 0
    for (const c of this.clients) if (c.phase === "done") sum += c.doneAt
    return sum
  }

  restoreMs(): StormStatus["restoreMs"] {
    const t = this.clients
      .filter((c) => c.phase === "done" && this.stormAt > 0)
      .map((c) => c.doneAt - this.stormAt)
      .sort((a, b) => a - b)
    const at = (q: number) => t[Math.min(t.length - 1, Math.floor(q * t.length))] ?? 0
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
  }

  maxAttempts(): number {
    let n = 0
    for (const c of this.clients) if (c.phase === "done" && c.attempts > n) n = c.attempts
    return n
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

// ---- the process: driven by the harness ----

const statusOf = (
  storm: Storm | undefined,
  ok: StormCommand["cmd"],
  lagP99Ms: number,
  detail: boolean,
): StormStatus => ({
  ok,
  primed: storm?.primed ?? 0,
  cut: storm?.storming ?? 0,
  done: storm?.done ?? 0,
  failed: storm?.failed ?? 0,
  gaveUp: storm?.gaveUp ?? 0,
  partial:
    storm === undefined || !storm.sessions
      ? 0
      : storm.clients.filter((c) => c.phase === "done" && c.restoredTargets < c.codes.length).length,
  lastDoneAt: storm?.lastDoneAt() ?? 0,
  doneAtSum: detail ? (storm?.doneAtSum() ?? 0) : 0,
  restoreMs: (detail ? storm?.restoreMs() : undefined) ?? { p50: 0, p90: 0, p99: 0 },
  maxAttempts: detail ? (storm?.maxAttempts() ?? 0) : 0,
  refusals: storm === undefined ? {} : Object.fromEntries(storm.refusals),
  retries: storm?.retries ?? 0,
  primeFailures: storm === undefined ? {} : Object.fromEntries(storm.primeFailures),
  lagP99Ms,
})

const isCommand = (u: unknown): u is StormCommand =>
  typeof u === "object" &&
  u !== null &&
  "cmd" in u &&
  ["prime", "cut", "storm", "status", "stop"].includes(String(u.cmd))

if (process.send !== undefined && process.argv[1]?.endsWith("stormClients.ts")) {
  const lag = monitorEventLoopDelay({ resolution: 10 })
  let storm: Storm | undefined
  process.on("message", (m: unknown) => {
    if (!isCommand(m)) return
    if (m.cmd === "prime" && storm === undefined) {
      const s = new Storm(m.url, m.sessions, m.clients, m.codes, m.subscriptions)
      storm = s
      // 100 per 100 ms, as the other scenarios ramp.
      let next = 0
      const step = setInterval(() => {
        s.prime(next, next + 100)
        next += 100
        if (next >= m.clients) clearInterval(step)
      }, 100)
    }
    if (m.cmd === "cut") storm?.cut()
    if (m.cmd === "stop") storm?.close()
    if (m.cmd === "storm") {
      lag.enable()
      storm?.storm(m.giveUpAfterMs)
    }
    const detail = m.cmd === "status" && m.detail === true
    process.send?.(statusOf(storm, m.cmd, Math.max(0, lag.percentile(99) / 1e6 - 10), detail))
  })
  process.on("disconnect", () => {
    storm?.close()
    process.exit(0)
  })
}
