/**
 * The load connections: raw `ws` clients whose callbacks update `LoadStats` directly. A
 * connection subscribes as soon as it is open and never reconnects: a drop is a result to
 * report, not something to hide. What a connection says and how its frames are counted is its
 * `Dialect`: quotecast's protocol here; the benchmark adds Socket.IO's (`bench/lib/clients.ts`).
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

export class LoadConnection {
  state: ConnState = "connecting"
  /** Last sequence number seen (0 before `connected`). */
  last = 0
  frames = 0
  /** Wall-clock ms of the last counted frame (0: none yet), for "is it still receiving?". */
  lastFrameAt = 0
  failed = false
  constructor(
    readonly ws: WebSocket,
    /** The connection's number: it picks its codes and source address. */
    readonly index: number,
    readonly startedAt: number,
  ) {}
}

/** The protocol a pool's connections speak. */
export interface Dialect {
  /** The URL to dial, from the configured one. */
  readonly url: (configured: string) => string
  /** The connection is open (and the run is not ending): subscribe. */
  readonly opened: (pool: ConnectionPool, conn: LoadConnection) => void
  /** One text frame: count it (`pool.count`), sample it, answer protocol pings. */
  readonly frame: (pool: ConnectionPool, conn: LoadConnection, buf: Buffer) => void
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/** Frames fully parsed regardless of sampling: `connected` and the first answer. */
const ALWAYS_PARSED_FIRST_FRAMES = 2

/** Counts a frame's messages by scanning it, and checks its sequence numbers against the last. */
export const countFrame = (pool: ConnectionPool, conn: LoadConnection, buf: Buffer) => {
  const { stats } = pool
  const scan = scanFrame(buf)
  pool.count(conn, scan.messages)
  if (scan.lastSequence > 0) {
    // A batch holds consecutive numbers ending at its envelope's, so its first is derived.
    const first = scan.lastSequence - scan.messages + 1
    if (first !== conn.last + 1) {
      stats.gaps++
      if (first > conn.last + 1) stats.missing += first - (conn.last + 1)
    }
    conn.last = scan.lastSequence
  }
  return scan
}

/** quotecast's protocol: subscribe in chunks of 100, count by scanning, parse one frame in N. */
export const quotecastDialect: Dialect = {
  url: (configured) => configured,
  opened: (pool, conn) => {
    const codes = pool.codesOf(conn)
    for (let i = 0; i < codes.length; i += 100) {
      conn.ws.send(
        JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: codes.slice(i, i + 100) }),
      )
    }
  },
  // The hot path: count every frame cheaply, parse the sampled ones.
  frame: (pool, conn, buf) => {
    const { stats } = pool
    const scan = countFrame(pool, conn, buf)
    const sampled = pool.sampler.next()
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
  },
}

export class ConnectionPool {
  readonly #connections: Array<LoadConnection> = []
  /** Decides which frames are fully parsed (one in `config.sample`). */
  readonly sampler: Sampler
  #closing = false

  constructor(
    readonly config: LoadConfig,
    readonly stats: LoadStats,
    readonly dialect: Dialect = quotecastDialect,
  ) {
    this.sampler = new Sampler(config.sample)
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

  /** Open connections whose last frame is older than `sinceMs` (or that never got one). */
  staleSince(sinceMs: number): number {
    let n = 0
    for (const c of this.#connections) if (c.state === "open" && c.lastFrameAt < sinceMs) n++
    return n
  }

  /** The codes connection `conn` subscribes to. */
  codesOf(conn: LoadConnection): ReadonlyArray<string> {
    return codesFor(this.config.codes, this.config.subscriptions, conn.index)
  }

  /** Counts one received frame of `messages` messages. */
  count(conn: LoadConnection, messages: number): void {
    const { stats } = this
    stats.frames++
    stats.messages += messages
    if (stats.measuring) {
      stats.windowFrames++
      stats.windowMessages += messages
    }
    conn.frames++
    conn.lastFrameAt = Date.now()
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
      ws = new WebSocket(this.dialect.url(config.url), options)
    } catch (e) {
      stats.failed++
      stats.countConnectError(e instanceof Error ? failureReason(e) : String(e))
      return
    }
    const conn = new LoadConnection(ws, index, nowMs())
    this.#connections.push(conn)
    ws.on("open", () => this.#onOpen(conn))
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.dialect.frame(this, conn, toBuffer(data))
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

  #onOpen(conn: LoadConnection): void {
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
    if (config.subscriptions > 0) this.dialect.opened(this, conn)
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
