/**
 * A loopback stand-in for the gateway's fan-out, for load-runner tests: `connected`, `subscribed`
 * plus snapshots, then every `intervalMs` a `batch` (or a single message) of price updates per
 * connection, numbered per connection. Knobs inject gaps, errors and closes.
 */
import { randomUUID } from "node:crypto"
import type { AddressInfo } from "node:net"
import { Effect, Either, Schema, type Scope } from "effect"
import { type WebSocket, WebSocketServer } from "ws"
import { ClientMessage } from "../../src/protocol/client.js"
import type { NumberedPriceUpdate, ServerSingle } from "../../src/protocol/server.js"

/** A server message as JSON holds it, before `#body` adds its timestamp and number. */
type Unnumbered<M> = M extends unknown ? Omit<M, "timestamp" | "sequence"> : never
type Answer = Unnumbered<typeof ServerSingle.Encoded>

const decodeClientMessage = Schema.decodeUnknownEither(Schema.parseJson(ClientMessage))

export interface FakeFeedOptions {
  readonly intervalMs?: number
  /** Price updates per connection per interval. */
  readonly perTick?: number
  /** Compress with no context takeover (what the load client offers). */
  readonly compression?: boolean
  /** How old the event timestamps are when sent (simulated pipeline latency). */
  readonly ageMs?: number
}

interface Conn {
  readonly socket: WebSocket
  seq: number
  codes: Array<string>
}

export class FakeFeed {
  readonly conns = new Set<Conn>()
  /** Skip this many numbers on the next tick of every connection. */
  skipNext = 0
  /** Send one RATE_LIMIT_EXCEEDED error to every connection on the next tick. */
  errorNext = false
  readonly #timer: NodeJS.Timeout

  constructor(
    readonly wss: WebSocketServer,
    readonly options: FakeFeedOptions,
  ) {
    wss.on("connection", (socket) => this.#accept(socket))
    this.#timer = setInterval(() => this.#tick(), options.intervalMs ?? 30)
  }

  get url(): string {
    return `ws://localhost:${(this.wss.address() as AddressInfo).port}/v1/ws`
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  #body(conn: Conn, payload: Answer, timestamp = new Date().toISOString()): string {
    conn.seq += 1
    return JSON.stringify({ ...payload, timestamp, sequence: conn.seq })
  }

  #accept(socket: WebSocket): void {
    const conn: Conn = { socket, seq: 0, codes: [] }
    this.conns.add(conn)
    socket.on("close", () => this.conns.delete(conn))
    socket.send(
      this.#body(conn, {
        type: "connected",
        connection_id: randomUUID(),
        session_id: randomUUID(),
        user_id: null,
      }),
    )
    socket.on("message", (data) => {
      // The load client sends only valid messages; anything else is not answered.
      const decoded = decodeClientMessage(String(data))
      if (Either.isLeft(decoded) || decoded.right.type !== "subscribe") return
      const msg = decoded.right
      conn.codes.push(...msg.targets)
      const subscribed = this.#body(conn, {
        type: "subscribed",
        subscription_type: "stock",
        targets: msg.targets,
      })
      // Snapshots carry an old timestamp: the runner must not count them as latency.
      const old = new Date(Date.now() - 60_000).toISOString()
      const snapshots = msg.targets.map((code) => this.#body(conn, price(code, true), old))
      socket.send(subscribed)
      socket.send(batch(snapshots, conn.seq))
    })
  }

  #tick(): void {
    const perTick = this.options.perTick ?? 5
    const timestamp = new Date(Date.now() - (this.options.ageMs ?? 0)).toISOString()
    const skip = this.skipNext
    const error = this.errorNext
    this.skipNext = 0
    this.errorNext = false
    for (const conn of this.conns) {
      if (conn.codes.length === 0) continue
      conn.seq += skip
      const messages: Array<string> = []
      if (error) {
        messages.push(
          this.#body(conn, {
            type: "error",
            code: "RATE_LIMIT_EXCEEDED",
            message: "Rate limit exceeded (100 messages/second)",
            details: { rate_limit: 100 },
          }),
        )
      }
      for (let i = 0; i < perTick; i++) {
        messages.push(this.#body(conn, price(conn.codes[i % conn.codes.length] as string, false), timestamp))
      }
      conn.socket.send(messages.length === 1 ? (messages[0] as string) : batch(messages, conn.seq))
    }
  }
}

const price = (code: string, snapshot: boolean): Unnumbered<typeof NumberedPriceUpdate.Encoded> => ({
  type: "price_update",
  code,
  name: `Name ${code}`,
  price: 73000,
  change: 100,
  change_percent: 0.14,
  volume: 1000,
  ...(snapshot ? { snapshot: true } : {}),
})

const batch = (messages: ReadonlyArray<string>, last: number): string =>
  `{"type":"batch","batch_size":${messages.length},"messages":[${messages.join(",")}],"timestamp":"${new Date().toISOString()}","sequence":${last}}`

export const fakeFeed = (options: FakeFeedOptions = {}): Effect.Effect<FakeFeed, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<FakeFeed>((resume) => {
      const wss: WebSocketServer = new WebSocketServer(
        {
          host: "127.0.0.1",
          port: 0,
          perMessageDeflate: options.compression ? { threshold: 0 } : false,
        },
        (): void => resume(Effect.succeed(feed)),
      )
      const feed: FakeFeed = new FakeFeed(wss, options)
    }),
    (feed) =>
      Effect.async<void>((resume) => {
        feed.stop()
        for (const client of feed.wss.clients) client.terminate()
        feed.wss.close(() => resume(Effect.void))
      }),
  )
