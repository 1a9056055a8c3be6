/**
 * The load connections: raw `ws` clients whose callbacks update `LoadStats` directly. A
 * connection subscribes as soon as it is open and never reconnects: a drop is a result to
 * report, not something to hide.
 */
import { performance } from "node:perf_hooks"
import { Duration, Effect } from "effect"
import { type ClientOptions, type RawData, WebSocket } from "ws"
import { codesFor, type LoadConfig } from "./config.js"
import { parseFrame, Sampler, scanFrame } from "./frames.js"
import { compressionOffer, useSyncInflate } from "./inflate.js"
import type { LoadStats } from "./stats.js"

/** Wall-clock milliseconds with sub-millisecond precision (server timestamps are wall clock). */
export const nowMs = (): number => performance.timeOrigin + performance.now()

/** A short, groupable reason for a connection failure. */
export const failureReason = (error: Error): string => {
  const code = (error as NodeJS.ErrnoException).code
  if (typeof code === "string" && code !== "") return code
  const http = /Unexpected server response: (\d+)/.exec(error.message)
  if (http) return `HTTP ${http[1]}`
  if (/handshake has timed out/i.test(error.message)) return "handshake timeout"
  if (/closed before the connection was established/i.test(error.message)) return "aborted"
  return error.message.slice(0, 80)
}

type ConnState = "connecting" | "open" | "closed"

class LoadConnection {
  state: ConnState = "connecting"
  /** Last sequence number seen (0 before `connected`). */
  last = 0
  frames = 0
  failed = false
  constructor(
    readonly ws: WebSocket,
    readonly startedAt: number,
  ) {}
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/** Frames fully parsed regardless of sampling: `connected` and the first answer. */
const ALWAYS_PARSED_FIRST_FRAMES = 2

export class ConnectionPool {
  readonly #connections: Array<LoadConnection> = []
  readonly #sampler: Sampler
  #closing = false

  constructor(
    readonly config: LoadConfig,
    readonly stats: LoadStats,
  ) {
    this.#sampler = new Sampler(config.sample)
  }

  get size(): number {
    return this.#connections.length
  }

  /** Connections not yet closed (open or still handshaking). */
  get pending(): number {
    let n = 0
    for (const c of this.#connections) if (c.state !== "closed") n++
    return n
  }

  /** Starts connection number `index` (its index picks its codes and source address). */
  open(index: number): void {
    const { config, stats } = this
    if (this.#closing) return
    stats.attempted++
    const options: ClientOptions = {
      perMessageDeflate: config.compression ? compressionOffer : false,
      // The gateway writes JSON text; validating UTF-8 of every frame would only cost CPU here.
      skipUTF8Validation: true,
      handshakeTimeout: Math.round(config.connectTimeoutSec * 1000),
      ...(config.sourceIps > 1 ? { localAddress: `127.0.0.${1 + (index % config.sourceIps)}` } : {}),
    }
    let ws: WebSocket
    try {
      ws = new WebSocket(config.url, options)
    } catch (e) {
      stats.failed++
      stats.countConnectError(e instanceof Error ? failureReason(e) : String(e))
      return
    }
    const conn = new LoadConnection(ws, nowMs())
    this.#connections.push(conn)
    ws.on("open", () => this.#onOpen(conn, index))
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.#onFrame(conn, toBuffer(data))
    })
    ws.on("error", (error) => {
      if (conn.state === "connecting" && !conn.failed) {
        conn.failed = true
        stats.failed++
        stats.countConnectError(failureReason(error))
      }
    })
    ws.on("close", (code) => this.#onClose(conn, code))
  }

  #onOpen(conn: LoadConnection, index: number): void {
    const { config, stats } = this
    conn.state = "open"
    stats.established++
    stats.open++
    if (stats.open > stats.peakOpen) stats.peakOpen = stats.open
    stats.connectTime.recordMillis(nowMs() - conn.startedAt)
    if (this.#closing) {
      conn.ws.close(1000, "load test done")
      return
    }
    if (config.compression && useSyncInflate(conn.ws)) stats.syncInflate++
    const codes = codesFor(config.codes, config.subscriptions, index)
    for (let i = 0; i < codes.length; i += 100) {
      conn.ws.send(
        JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: codes.slice(i, i + 100) }),
      )
    }
  }

  #onClose(conn: LoadConnection, code: number): void {
    const { stats } = this
    const wasOpen = conn.state === "open"
    conn.state = "closed"
    if (wasOpen) {
      stats.open--
      if (!this.#closing) {
        stats.dropped++
        stats.countClose(code)
      }
    } else if (!conn.failed) {
      conn.failed = true
      stats.failed++
      stats.countConnectError(this.#closing ? "aborted at end" : `closed ${code}`)
    }
  }

  /** The hot path: count every frame cheaply, parse the sampled ones. */
  #onFrame(conn: LoadConnection, buf: Buffer): void {
    const { stats } = this
    const scan = scanFrame(buf)
    stats.frames++
    stats.messages += scan.messages
    if (stats.measuring) {
      stats.windowFrames++
      stats.windowMessages += scan.messages
    }
    conn.frames++
    if (scan.lastSequence > 0) {
      // A batch holds consecutive numbers ending at its envelope's, so its first is derived.
      const first = scan.lastSequence - scan.messages + 1
      if (first !== conn.last + 1) {
        stats.gaps++
        if (first > conn.last + 1) stats.missing += first - (conn.last + 1)
      }
      conn.last = scan.lastSequence
    }
    const sampled = this.#sampler.next()
    if (!sampled && !scan.hasError && conn.frames > ALWAYS_PARSED_FIRST_FRAMES) return

    const receivedAt = nowMs()
    const parsed = parseFrame(buf.toString("utf8"))
    if (parsed === undefined) {
      stats.unparsableFrames++
      return
    }
    if (parsed.nonConsecutive) stats.nonConsecutive++
    if (sampled) stats.sampledFrames++
    for (const m of parsed.messages) {
      if (m.errorCode !== undefined) stats.countError(m.errorCode)
      stats.subscribedTargets += m.subscribedTargets
      if (!sampled) continue
      stats.countType(m.type)
      if (m.eventTimeMs !== undefined) stats.recordLatency(receivedAt - m.eventTimeMs)
    }
  }

  /**
   * Closes every connection (1000) and waits up to `timeout` for the close handshakes; what is
   * left is terminated. Safe to run twice (the second run finds nothing to do).
   */
  closeAll(timeout: Duration.DurationInput): Effect.Effect<void> {
    return Effect.gen(this, function* () {
      this.#closing = true
      for (const c of this.#connections) {
        if (c.state !== "closed") c.ws.close(1000, "load test done")
      }
      yield* Effect.sleep("20 millis").pipe(
        Effect.repeat({ until: () => this.pending === 0 }),
        Effect.timeout(timeout),
        Effect.ignore,
      )
      for (const c of this.#connections) if (c.state !== "closed") c.ws.terminate()
      // Terminated sockets report their close on a later tick; give them one.
      yield* Effect.sleep(Duration.millis(10)).pipe(
        Effect.repeat({ until: () => this.pending === 0, times: 100 }),
        Effect.ignore,
      )
    })
  }
}
