/**
 * The engine wired together, over an in-memory WebSocket the test plays the server on (no
 * sockets), with TestClock for the handshake timeout and the backoff: the client lifecycle of
 * docs/protocol.md across connections.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream, TestClock } from "effect"
import * as Client from "../../src/client/Client.js"
import type { ClientEvent } from "../../src/client/events.js"
import type { CloseEventLike, MessageEventLike, WebSocketLike } from "../../src/client/socket.js"
import type { ServerSingle } from "../../src/protocol/server.js"

/** The server's end of one in-memory WebSocket: what the client sent, and ways to answer. */
class ScriptedSocket implements WebSocketLike {
  readyState = 0
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: MessageEventLike) => void) | null = null
  onclose: ((event: CloseEventLike) => void) | null = null
  onerror: ((event: unknown) => void) | null = null
  readonly sent: Array<Record<string, unknown>> = []
  #sequence = 0

  constructor(readonly url: URL) {}

  get query(): URLSearchParams {
    return this.url.searchParams
  }

  open(): void {
    this.readyState = 1
    this.onopen?.({})
  }

  /** Sends `message` numbered `sequence` (default: one more than the last sent on this socket). */
  deliver(message: Record<string, unknown>, sequence = this.#sequence + 1): void {
    this.#sequence = sequence
    const timestamp = "2025-11-11T09:30:00.030Z"
    this.onmessage?.({ data: JSON.stringify({ timestamp, ...message, sequence }) })
  }

  /** The connection ends (the server closed it, or it was lost). */
  drop(code: number, reason = ""): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code, reason })
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data))
  }

  close(code?: number, reason?: string): void {
    this.drop(code ?? 1005, reason ?? "")
  }
}

/** A WebSocket constructor whose instances the test drives. */
const scriptedServer = () => {
  const sockets: Array<ScriptedSocket> = []
  const WebSocket = class extends ScriptedSocket {
    constructor(url: string) {
      super(new URL(url))
      sockets.push(this)
    }
  }
  /** Lets the client's fibers run until `predicate` holds (bounded). */
  const until = (predicate: () => boolean, what: string) =>
    Effect.gen(function* () {
      for (let i = 0; i < 1000 && !predicate(); i++) yield* Effect.yieldNow()
      if (!predicate()) throw new Error(`never happened: ${what}`)
    })
  /** Lets the client's fibers run what is ready to run. */
  const settle = Effect.repeatN(Effect.yieldNow(), 100)
  const socket = (n: number) => {
    const s = sockets[n]
    if (s === undefined) throw new Error(`no socket ${n}`)
    return s
  }
  return { sockets, WebSocket, until, settle, socket }
}

const connected = (sessionId: string) => ({
  type: "connected",
  connection_id: `c-${sessionId}`,
  session_id: sessionId,
  user_id: null,
})

const collect = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.gen(function* () {
    const items: Array<A> = []
    yield* Effect.forkScoped(Stream.runForEach(stream, (a) => Effect.sync(() => items.push(a))))
    return items
  })

const count = (events: ReadonlyArray<ClientEvent>, tag: ClientEvent["_tag"]) =>
  events.filter((e) => e._tag === tag).length

describe("engine over a scripted server", () => {
  it.scoped("fails connect with ConnectFailed when the server opens but never completes the handshake", () =>
    Effect.gen(function* () {
      const server = scriptedServer()
      const connecting = yield* Effect.fork(
        Client.connect({
          url: "ws://gateway/v1/ws",
          WebSocket: server.WebSocket,
          connectTimeout: "5 seconds",
        }),
      )
      yield* server.until(() => server.sockets.length === 1, "a socket")
      server.socket(0).open()
      yield* server.settle // the handshake's timer starts once the client has seen the open
      yield* TestClock.adjust("4999 millis")
      expect(server.socket(0).readyState).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* server.until(() => connecting.unsafePoll() !== null, "connect to end")
      const error = yield* Effect.flip(Fiber.join(connecting))
      expect(error).toMatchObject({
        _tag: "ConnectFailed",
        reason: "closed during handshake (1000 handshake timeout)",
      })
      expect(server.sockets).toHaveLength(1)
    }),
  )

  it.scoped("after a lost connection waits the backoff delay, restores its session and keeps numbering", () =>
    Effect.gen(function* () {
      const server = scriptedServer()
      const connecting = yield* Effect.fork(
        Client.connect({
          url: "ws://gateway/v1/ws",
          token: "tok",
          WebSocket: server.WebSocket,
          reconnect: { initialDelay: 500, jitter: 0 },
        }),
      )
      yield* server.until(() => server.sockets.length === 1, "the first socket")
      const first = server.socket(0)
      expect(first.query.get("session_id")).toBeNull()
      first.open()
      first.deliver(connected("s1"))
      const client = yield* Fiber.join(connecting)
      const messages = yield* collect(client.messages)
      const events = yield* collect(client.events)
      yield* client.subscribe("stock", ["005930"])
      expect(first.sent).toEqual([{ type: "subscribe", subscription_type: "stock", targets: ["005930"] }])
      first.deliver({ type: "subscribed", subscription_type: "stock", targets: ["005930"] })
      first.drop(1006)
      yield* server.until(() => events.some((e) => e._tag === "Reconnecting"), "Reconnecting")
      expect((yield* client.state).status).toBe("reconnecting")
      yield* client.subscribe("stock", ["000660"]) // while away: sent once the session is back

      yield* TestClock.adjust("499 millis")
      expect(server.sockets).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      yield* server.until(() => server.sockets.length === 2, "the second socket")
      const second = server.socket(1)
      expect(second.query.get("session_id")).toBe("s1")
      expect(second.query.get("token")).toBe("tok")
      second.open()
      // The session's instance crashed: the numbers jump, and reconnected says so.
      second.deliver(connected("s1"), 1003)
      yield* server.until(() => count(events, "Connected") === 2, "the second Connected")
      expect((yield* client.state).status).toBe("handshaking") // until reconnected arrives
      second.deliver({
        type: "reconnected",
        session_id: "s1",
        restored_subscriptions: { stock: ["005930"] },
        missed_messages_count: 0,
        sequence_jumped: true,
        sequence_jumped_from: 2,
        sequence_jumped_to: 1002,
      })
      yield* server.until(
        () => events.some((e) => e._tag === "Ready" && events.indexOf(e) > 2),
        "Ready again",
      )
      expect(second.sent).toEqual([{ type: "subscribe", subscription_type: "stock", targets: ["000660"] }])
      expect(messages.map((m: ServerSingle) => [m.type, m.sequence])).toEqual([
        ["connected", 1],
        ["subscribed", 2],
        ["connected", 1003],
        ["reconnected", 1004],
      ])
      expect(events.map((e: ClientEvent) => e._tag)).toEqual([
        "Connected",
        "Ready",
        "Disconnected",
        "Reconnecting",
        "Connected",
        "Restored",
        "Ready",
      ])
      expect(yield* client.state).toMatchObject({
        status: "ready",
        sessionId: "s1",
        lastSequence: 1004,
        subscriptions: { stock: ["005930", "000660"] },
      })
    }),
  )
})
