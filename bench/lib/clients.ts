/**
 * The benchmark's load connections. The quotecast protocol side is the load runner's frame
 * handling (load/lib: `scanFrame` on every frame, `parseFrame` on one in N, `LoadStats`,
 * sync inflate), applied per connection here so that the harness can also see when each
 * connection last received something (scenario E: "every connection keeps receiving").
 * `load/lib/pool.ts` keeps its connections private, hence this small pool.
 *
 * The Socket.IO side speaks Engine.IO 4 over a raw `ws` socket (no socket.io-client: its
 * per-packet decoding and event-emitter plumbing would make the client the bottleneck): `0`
 * open -> send `40`; `40` namespace connected -> `42["subscribe",[codes]]`; `2` ping -> `3`;
 * `42[...]` an event: one message, parsed one in N for latency.
 */
import { Duration, Effect } from "effect"
import { type ClientOptions, type RawData, WebSocket } from "ws"
import {
  codesFor,
  compressionOffer,
  failureReason,
  LATENCY_TYPES,
  type LoadConfig,
  type LoadStats,
  nowMs,
  parseFrame,
  Sampler,
  scanFrame,
  useSyncInflate,
} from "../../load/lib/index.js"

export type Protocol = "quotecast" | "socketio"

class BenchConnection {
  state: "connecting" | "open" | "closed" = "connecting"
  failed = false
  /** Last sequence number seen (quotecast protocol). */
  last = 0
  frames = 0
  /** Market messages received (not the handshake answers). */
  lastFrameAt = 0
  constructor(
    readonly ws: WebSocket,
    readonly index: number,
    readonly startedAt: number,
  ) {}
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

const ALWAYS_PARSED_FIRST_FRAMES = 2
const EVENT_PREFIX = "42"

export class BenchPool {
  readonly #connections: Array<BenchConnection> = []
  readonly #sampler: Sampler
  #closing = false

  constructor(
    readonly protocol: Protocol,
    readonly config: LoadConfig,
    readonly stats: LoadStats,
  ) {
    this.#sampler = new Sampler(config.sample)
  }

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

  open(index: number): void {
    const { config, stats } = this
    if (this.#closing) return
    stats.attempted++
    const options: ClientOptions = {
      perMessageDeflate: config.compression ? compressionOffer : false,
      skipUTF8Validation: true,
      handshakeTimeout: Math.round(config.connectTimeoutSec * 1000),
      ...(config.sourceIps > 1 ? { localAddress: `127.0.0.${1 + (index % config.sourceIps)}` } : {}),
    }
    const url =
      this.protocol === "socketio" ? `${config.url}?EIO=4&transport=websocket` : (config.url as string)
    let ws: WebSocket
    try {
      ws = new WebSocket(url, options)
    } catch (e) {
      stats.failed++
      stats.countConnectError(e instanceof Error ? failureReason(e) : String(e))
      return
    }
    const conn = new BenchConnection(ws, index, nowMs())
    this.#connections.push(conn)
    ws.on("open", () => this.#onOpen(conn))
    ws.on("message", (data, isBinary) => {
      if (isBinary) return
      const buf = toBuffer(data)
      if (this.protocol === "socketio") this.#onSioFrame(conn, buf)
      else this.#onFrame(conn, buf)
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

  #codes(conn: BenchConnection): ReadonlyArray<string> {
    return codesFor(this.config.codes, this.config.subscriptions, conn.index)
  }

  #onOpen(conn: BenchConnection): void {
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
    // Socket.IO subscribes once the namespace handshake is done (#onSioFrame).
    if (this.protocol === "socketio" || config.subscriptions === 0) return
    const codes = this.#codes(conn)
    for (let i = 0; i < codes.length; i += 100) {
      conn.ws.send(
        JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: codes.slice(i, i + 100) }),
      )
    }
  }

  #onClose(conn: BenchConnection, code: number): void {
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

  #count(conn: BenchConnection, messages: number): void {
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

  /** quotecast protocol (and the ws baseline): the load runner's per-frame handling. */
  #onFrame(conn: BenchConnection, buf: Buffer): void {
    const { stats } = this
    const scan = scanFrame(buf)
    this.#count(conn, scan.messages)
    if (scan.lastSequence > 0) {
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

  /** Engine.IO 4 / Socket.IO 5 packets, one per frame. */
  #onSioFrame(conn: BenchConnection, buf: Buffer): void {
    const { stats } = this
    const first = buf[0]
    if (first === 0x32 /* "2" ping */ && buf.length === 1) {
      conn.ws.send("3")
      return
    }
    if (first === 0x30 /* "0" open */) {
      conn.ws.send("40")
      return
    }
    const text = buf.toString("utf8")
    if (text.startsWith("40")) {
      if (this.config.subscriptions > 0) conn.ws.send(`42${JSON.stringify(["subscribe", this.#codes(conn)])}`)
      return
    }
    if (!text.startsWith(EVENT_PREFIX)) return
    this.#count(conn, 1)
    const sampled = this.#sampler.next()
    const subscribed = text.startsWith('42["subscribed"')
    if (!sampled && !subscribed) return
    const receivedAt = nowMs()
    let packet: unknown
    try {
      packet = JSON.parse(text.slice(EVENT_PREFIX.length))
    } catch {
      stats.unparsableFrames++
      return
    }
    if (!Array.isArray(packet)) return
    const [type, data] = packet as [unknown, unknown]
    if (typeof type !== "string" || typeof data !== "object" || data === null) return
    const d = data as { readonly timestamp?: unknown; readonly targets?: unknown }
    if (type === "subscribed" && Array.isArray(d.targets)) stats.subscribedTargets += d.targets.length
    if (!sampled) return
    stats.sampledFrames++
    stats.countType(type)
    if (LATENCY_TYPES.has(type) && typeof d.timestamp === "string") {
      const t = Date.parse(d.timestamp)
      if (Number.isFinite(t)) stats.recordLatency(receivedAt - t)
    }
  }

  /** Closes every connection (1000), waits up to `timeout`, terminates the rest. */
  closeAll(timeout: Duration.DurationInput): Effect.Effect<void> {
    return Effect.gen(this, function* () {
      this.#closing = true
      for (const c of this.#connections) if (c.state !== "closed") c.ws.close(1000, "load test done")
      yield* Effect.sleep("20 millis").pipe(
        Effect.repeat({ until: () => this.pending === 0 }),
        Effect.timeout(timeout),
        Effect.ignore,
      )
      for (const c of this.#connections) if (c.state !== "closed") c.ws.terminate()
      yield* Effect.sleep(Duration.millis(10)).pipe(
        Effect.repeat({ until: () => this.pending === 0, times: 100 }),
        Effect.ignore,
      )
    })
  }
}
