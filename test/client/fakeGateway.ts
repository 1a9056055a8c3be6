/**
 * A tiny in-test gateway on loopback (port 0) speaking just enough of docs/protocol.md for the SDK:
 * connected/session_id, restore via `?session_id=` (reconnected or SESSION_RESTORATION_FAILED),
 * subscribe/unsubscribe, ping, refresh_token, numbered messages and batches. Tests drive it
 * (push messages, skip numbers, drop sockets) and inspect what clients sent.
 */
import { randomUUID } from "node:crypto"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"
import { type WebSocket, WebSocketServer } from "ws"

interface Session {
  readonly id: string
  last: number
  readonly subs: { stock: Set<string>; market: Set<string>; sector: Set<string> }
  socket: WebSocket | undefined
}

export interface FakeConnection {
  readonly socket: WebSocket
  readonly query: URLSearchParams
  readonly session: Session
  /** Client messages received on this connection, parsed. */
  readonly received: Array<Record<string, unknown>>
}

export interface FakeGatewayOptions {
  /** When false every restore fails (as after SESSION_TTL_S). */
  readonly restore?: boolean
}

const ts = (): string => new Date().toISOString()

type Payload = Record<string, unknown> & { readonly type: string }

export class FakeGateway {
  readonly sessions = new Map<string, Session>()
  readonly connections: Array<FakeConnection> = []
  restore: boolean
  /** When set, a restore skips this many numbers and `reconnected` announces the jump (as after a crash). */
  jumpOnRestore: number | undefined = undefined
  readonly #waiters: Array<() => void> = []

  constructor(
    readonly wss: WebSocketServer,
    options: FakeGatewayOptions,
  ) {
    this.restore = options.restore ?? true
    wss.on("connection", (socket, request) => this.#accept(socket, new URL(request.url ?? "/", "http://x")))
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/v1/ws`
  }

  get latest(): FakeConnection {
    const c = this.connections.at(-1)
    if (c === undefined) throw new Error("no connection yet")
    return c
  }

  /** Numbers `payload` in the connection's session and serializes it (without sending). */
  number(conn: FakeConnection, payload: Payload): string {
    conn.session.last += 1
    return JSON.stringify({ timestamp: ts(), ...payload, sequence: conn.session.last })
  }

  send(conn: FakeConnection, payload: Payload): void {
    conn.socket.send(this.number(conn, payload))
  }

  /** One `batch` frame whose messages are numbered consecutively; the envelope carries the last number. */
  sendBatch(conn: FakeConnection, payloads: ReadonlyArray<Payload>): void {
    const messages = payloads.map((p) => this.number(conn, p))
    conn.socket.send(
      `{"type":"batch","batch_size":${messages.length},"messages":[${messages.join(",")}],"timestamp":"${ts()}","sequence":${conn.session.last}}`,
    )
  }

  /** Loses `n` numbers, as if messages were sent and never arrived. */
  skip(conn: FakeConnection, n: number): void {
    conn.session.last += n
  }

  /** Resolves when the number of connections ever accepted reaches `n`. */
  awaitConnections(n: number): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const check = () => {
        if (this.connections.length >= n) {
          resume(Effect.void)
          return true
        }
        return false
      }
      if (!check()) this.#waiters.push(() => void check())
    })
  }

  /** Resolves once `conn` has received a client message matching `predicate`. */
  awaitReceived(
    conn: FakeConnection,
    predicate: (m: Record<string, unknown>) => boolean,
  ): Effect.Effect<Record<string, unknown>> {
    return Effect.gen(function* () {
      for (;;) {
        const found = conn.received.find(predicate)
        if (found !== undefined) return found
        yield* Effect.sleep("5 millis")
      }
    })
  }

  #accept(socket: WebSocket, url: URL): void {
    const query = url.searchParams
    const requested = query.get("session_id")
    const existing = requested === null ? undefined : this.sessions.get(requested)
    const restored = existing !== undefined && this.restore
    const session: Session = restored
      ? existing
      : {
          id: randomUUID(),
          last: 0,
          subs: { stock: new Set(), market: new Set(), sector: new Set() },
          socket,
        }
    session.socket = socket
    const jumpedFrom = session.last
    if (restored && this.jumpOnRestore !== undefined) session.last += this.jumpOnRestore
    this.sessions.set(session.id, session)
    const conn: FakeConnection = { socket, query, session, received: [] }
    this.connections.push(conn)
    this.send(conn, { type: "connected", connection_id: randomUUID(), session_id: session.id, user_id: null })
    if (requested !== null) {
      if (restored) {
        this.send(conn, {
          type: "reconnected",
          session_id: session.id,
          restored_subscriptions: {
            ...(session.subs.stock.size > 0 ? { stock: [...session.subs.stock] } : {}),
            ...(session.subs.market.size > 0 ? { market: [...session.subs.market] } : {}),
            ...(session.subs.sector.size > 0 ? { sector: [...session.subs.sector] } : {}),
          },
          missed_messages_count: 0,
          ...(this.jumpOnRestore === undefined
            ? {}
            : {
                sequence_jumped: true,
                sequence_jumped_from: jumpedFrom,
                sequence_jumped_to: jumpedFrom + this.jumpOnRestore,
              }),
        })
      } else {
        this.send(conn, {
          type: "error",
          code: "SESSION_RESTORATION_FAILED",
          message: "Session not found or expired",
          details: { session_id: requested, reason: "not_found" },
        })
      }
    }
    socket.on("message", (data) => this.#onMessage(conn, String(data)))
    for (const w of this.#waiters.splice(0)) w()
  }

  #onMessage(conn: FakeConnection, text: string): void {
    const msg = JSON.parse(text) as Record<string, unknown>
    conn.received.push(msg)
    switch (msg.type) {
      case "subscribe":
      case "unsubscribe": {
        const type = msg.subscription_type as "stock" | "market" | "sector"
        const targets = msg.targets as Array<string>
        const accepted = targets.filter((t) => t !== "UNKNOWN")
        for (const t of accepted) {
          if (msg.type === "subscribe") conn.session.subs[type].add(t)
          else conn.session.subs[type].delete(t)
        }
        if (accepted.length > 0) {
          this.send(conn, {
            type: msg.type === "subscribe" ? "subscribed" : "unsubscribed",
            subscription_type: type,
            targets: accepted,
          })
        }
        if (accepted.length < targets.length) {
          this.send(conn, {
            type: "error",
            code: "SUBSCRIPTION_FAILED",
            message: "Unable to subscribe to some targets",
            details: {
              subscription_type: type,
              rejected: targets
                .filter((t) => t === "UNKNOWN")
                .map((target) => ({ target, reason: "unknown" })),
              accepted,
            },
          })
        }
        return
      }
      case "ping":
        this.send(conn, { type: "pong", ...(msg.id === undefined ? {} : { id: msg.id }) })
        return
      case "refresh_token":
        if (msg.token === "bad") {
          this.send(conn, {
            type: "error",
            code: "TOKEN_REFRESH_ERROR",
            message: "Token refresh failed",
            details: { reason: "invalid" },
          })
        } else {
          this.send(conn, { type: "token_refreshed", user_id: "user-1", expires_at: null })
        }
        return
    }
  }
}

export const priceUpdate = (code: string, price: number): Payload => ({
  type: "price_update",
  code,
  name: `Name ${code}`,
  price,
  change: 0,
  change_percent: 0,
  volume: 1,
})

/** A fake gateway for the test's scope. */
export const fakeGateway = (
  options: FakeGatewayOptions = {},
): Effect.Effect<FakeGateway, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<FakeGateway>((resume) => {
      const wss: WebSocketServer = new WebSocketServer({ host: "127.0.0.1", port: 0 }, (): void =>
        resume(Effect.succeed(gateway)),
      )
      const gateway: FakeGateway = new FakeGateway(wss, options)
    }),
    (gateway) =>
      Effect.async<void>((resume) => {
        for (const client of gateway.wss.clients) client.terminate()
        gateway.wss.close(() => resume(Effect.void))
      }),
  )
