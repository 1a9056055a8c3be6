/**
 * The SDK against an in-test gateway on loopback: handshake, batches, gaps, reconnect with
 * session restore (and the failed-restore path), requests, terminal closes, and the facade.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, Option, Stream } from "effect"
import { WebSocket } from "ws"
import * as Client from "../../src/client/Client.js"
import type { ClientEvent } from "../../src/client/events.js"
import { QuotecastClient } from "../../src/client/QuotecastClient.js"
import type { ServerSingle } from "../../src/protocol/server.js"
import { type FakeConnection, type FakeGateway, fakeGateway, priceUpdate } from "./fakeGateway.js"

const fastReconnect = { initialDelay: 20, maxDelay: 100, jitter: 0.5 } as const

/** Collects a stream into an array in the background; `read` gives what arrived so far. */
const collect = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.gen(function* () {
    const items: Array<A> = []
    const fiber = yield* Effect.forkScoped(Stream.runForEach(stream, (a) => Effect.sync(() => items.push(a))))
    return { items, fiber }
  })

/** Polls until `predicate` holds (sockets are real, so the test waits in real time). */
const eventually = <A>(
  read: () => A | undefined,
  what: string,
  timeout: Duration.DurationInput = "5 seconds",
) =>
  Effect.gen(function* () {
    for (;;) {
      const value = read()
      if (value !== undefined && value !== false) return value
      yield* Effect.sleep("5 millis")
    }
  }).pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting for ${what}`) }),
  )

const ofType =
  <K extends ServerSingle["type"]>(type: K) =>
  (items: ReadonlyArray<ServerSingle>) =>
    items.filter((m): m is Extract<ServerSingle, { readonly type: K }> => m.type === type)

const eventsOf =
  <K extends ClientEvent["_tag"]>(tag: K) =>
  (items: ReadonlyArray<ClientEvent>) =>
    items.filter((e): e is Extract<ClientEvent, { readonly _tag: K }> => e._tag === tag)

const connectTo = (gateway: FakeGateway, extra: Partial<Client.ConnectOptions> = {}) =>
  Client.connect({ url: gateway.url, WebSocket, reconnect: fastReconnect, ...extra })

const subscribeOn = (conn: FakeConnection) => conn.received.filter((m) => m.type === "subscribe")

describe("Client (Effect API)", () => {
  it.scopedLive("connects, subscribes and unpacks batches in sequence order", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const messages = yield* collect(client.messages)
      const events = yield* collect(client.events)
      yield* client.subscribe("stock", ["005930", "000660"])
      const conn = gateway.latest
      yield* gateway.awaitReceived(conn, (m) => m.type === "subscribe")
      expect(subscribeOn(conn)).toEqual([
        { type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] },
      ])
      gateway.sendBatch(conn, [
        priceUpdate("005930", 73000),
        priceUpdate("000660", 145000),
        priceUpdate("005930", 73100),
      ])
      yield* eventually(() => ofType("price_update")(messages.items).length === 3, "3 price updates")
      expect(messages.items.map((m) => m.type)).toEqual([
        "connected",
        "subscribed",
        "price_update",
        "price_update",
        "price_update",
      ])
      expect(messages.items.map((m) => m.sequence)).toEqual([1, 2, 3, 4, 5])
      expect(eventsOf("Gap")(events.items)).toEqual([])
      const state = yield* client.state
      expect(state).toMatchObject({
        status: "ready",
        lastSequence: 5,
        subscriptions: { stock: ["005930", "000660"] },
      })
    }),
  )

  it.scopedLive("reports sequence gaps with expected and received numbers", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const messages = yield* collect(client.messages)
      const events = yield* collect(client.events)
      const conn = gateway.latest
      gateway.skip(conn, 3) // 2..4 lost
      gateway.send(conn, priceUpdate("005930", 73000)) // 5
      // A gap inside a batch: 6, (7 lost), 8
      const first = gateway.number(conn, priceUpdate("005930", 73100))
      gateway.skip(conn, 1)
      const third = gateway.number(conn, priceUpdate("005930", 73200))
      conn.socket.send(
        `{"type":"batch","batch_size":2,"messages":[${first},${third}],"timestamp":"${new Date().toISOString()}","sequence":8}`,
      )
      yield* eventually(() => ofType("price_update")(messages.items).length === 3, "3 price updates")
      const gaps = eventsOf("Gap")(events.items)
      expect(gaps.map(({ expected, received }) => ({ expected, received }))).toEqual([
        { expected: 2, received: 5 },
        { expected: 7, received: 8 },
      ])
      expect(gaps[0]?.sessionId).toBe(conn.session.id)
    }),
  )

  it.scopedLive("reconnects with session_id and token, restores without re-subscribing", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway, { token: "tok-1" })
      const messages = yield* collect(client.messages)
      const events = yield* collect(client.events)
      yield* client.subscribe("stock", ["005930"])
      const first = gateway.latest
      yield* gateway.awaitReceived(first, (m) => m.type === "subscribe")
      yield* eventually(() => ofType("subscribed")(messages.items).length === 1, "subscribed")
      first.socket.terminate() // abrupt loss, no close frame

      yield* gateway.awaitConnections(2)
      const second = gateway.latest
      expect(second.query.get("session_id")).toBe(first.session.id)
      expect(second.query.get("token")).toBe("tok-1")
      yield* eventually(() => eventsOf("Restored")(events.items).length === 1, "Restored")
      gateway.send(second, priceUpdate("005930", 74000))
      yield* eventually(() => ofType("price_update")(messages.items).length === 1, "price after restore")

      // The restored session kept the subscription: nothing re-sent, numbering continued without a gap.
      expect(subscribeOn(second)).toEqual([])
      expect(eventsOf("Gap")(events.items)).toEqual([])
      expect(messages.items.map((m) => [m.type, m.sequence])).toEqual([
        ["connected", 1],
        ["subscribed", 2],
        ["connected", 3],
        ["reconnected", 4],
        ["price_update", 5],
      ])
      expect(events.items.map((e) => e._tag)).toEqual([
        "Connected",
        "Ready",
        "Disconnected",
        "Reconnecting",
        "Connected",
        "Restored",
        "Ready",
      ])
      expect((yield* client.state).sessionId).toBe(first.session.id)
    }),
  )

  it.scopedLive("does not report a jump the server announced in reconnected (a crash) as a gap", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const events = yield* collect(client.events)
      const messages = yield* collect(client.messages)
      gateway.jumpOnRestore = 1000
      gateway.latest.socket.terminate()
      yield* eventually(() => eventsOf("Restored")(events.items).length === 1, "Restored")
      expect(eventsOf("Restored")(events.items)[0]?.sequenceJumped).toBe(true)
      expect(eventsOf("Gap")(events.items)).toEqual([])
      expect(messages.items.map((m) => [m.type, m.sequence])).toEqual([
        ["connected", 1],
        ["connected", 1002],
        ["reconnected", 1003],
      ])
    }),
  )

  it.scopedLive("reports messages lost in flight across a restore as a gap", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const events = yield* collect(client.events)
      const first = gateway.latest
      gateway.skip(first, 2) // sent by the server, never received
      first.socket.terminate()
      yield* eventually(() => eventsOf("Restored")(events.items).length === 1, "Restored")
      expect(eventsOf("Gap")(events.items).map(({ expected, received }) => ({ expected, received }))).toEqual(
        [{ expected: 2, received: 4 }],
      )
    }),
  )

  it.scopedLive("re-subscribes on a new session when the restore fails, numbering from 1", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const messages = yield* collect(client.messages)
      const events = yield* collect(client.events)
      yield* client.subscribe("stock", ["005930", "000660"])
      yield* client.subscribe("market", ["KOSPI"])
      const first = gateway.latest
      yield* gateway.awaitReceived(first, (m) => m.subscription_type === "market")
      gateway.restore = false
      first.socket.close(1012, "restart")

      yield* gateway.awaitConnections(2)
      const second = gateway.latest
      expect(second.query.get("session_id")).toBe(first.session.id)
      yield* gateway.awaitReceived(second, (m) => m.subscription_type === "market")
      expect(subscribeOn(second)).toEqual([
        { type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] },
        { type: "subscribe", subscription_type: "market", targets: ["KOSPI"] },
      ])
      const failed = eventsOf("RestoreFailed")(events.items)
      expect(failed).toHaveLength(1)
      expect(failed[0]).toMatchObject({ previousSessionId: first.session.id, sessionId: second.session.id })
      expect(eventsOf("Gap")(events.items)).toEqual([])
      expect(eventsOf("Disconnected")(events.items)[0]).toMatchObject({ code: 1012, willReconnect: true })
      yield* eventually(() => ofType("error")(messages.items).length === 1, "restore error message")
      expect(ofType("error")(messages.items)[0]?.code).toBe("SESSION_RESTORATION_FAILED")
      expect((yield* client.state).sessionId).toBe(second.session.id)
    }),
  )

  it.scopedLive("forgets targets the server rejected", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const messages = yield* collect(client.messages)
      yield* client.subscribe("stock", ["005930", "UNKNOWN"])
      yield* eventually(() => ofType("error")(messages.items).length === 1, "SUBSCRIPTION_FAILED")
      expect((yield* client.state).subscriptions).toEqual({ stock: ["005930"] })
    }),
  )

  it.scopedLive("answers ping and refresh_token, and reconnects with the refreshed token", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway, { token: "old" })
      const rtt = yield* client.ping
      expect(Duration.toMillis(rtt)).toBeGreaterThanOrEqual(0)
      const refused = yield* Effect.flip(client.refreshToken("bad"))
      expect(refused._tag).toBe("TokenRefreshFailed")
      const refreshed = yield* client.refreshToken("new")
      expect(refreshed).toMatchObject({ type: "token_refreshed", user_id: "user-1" })
      gateway.latest.socket.terminate()
      yield* gateway.awaitConnections(2)
      expect(gateway.latest.query.get("token")).toBe("new")
    }),
  )

  it.scopedLive("asks the token provider before every connect", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      let n = 0
      const client = yield* connectTo(gateway, { tokenProvider: Effect.sync(() => `t${++n}`) })
      expect(gateway.latest.query.get("token")).toBe("t1")
      gateway.latest.socket.terminate()
      yield* gateway.awaitConnections(2)
      expect(gateway.latest.query.get("token")).toBe("t2")
      expect((yield* client.state).status).not.toBe("closed")
    }),
  )

  it.scopedLive("fails ping while disconnected", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway, { reconnect: { initialDelay: 2000, jitter: 0 } })
      const events = yield* collect(client.events)
      gateway.latest.socket.terminate()
      yield* eventually(() => eventsOf("Disconnected")(events.items).length === 1, "Disconnected")
      const error = yield* Effect.flip(client.ping)
      expect(error._tag).toBe("NotConnected")
    }),
  )

  it.scopedLive("stops for good when the session is taken over (4000)", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const messages = yield* collect(client.messages)
      gateway.latest.socket.close(4000, "session taken over")
      const exit = yield* Fiber.await(messages.fiber)
      expect(Exit.isFailure(exit) && Option.getOrUndefined(Exit.causeOption(exit))).toBeTruthy()
      const error = yield* Effect.flip(client.await)
      expect(error._tag).toBe("SessionTakenOver")
      yield* Effect.sleep("200 millis")
      expect(gateway.connections).toHaveLength(1)
    }),
  )

  it.scopedLive("gives up after maxAttempts with ConnectionLost", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway, {
        reconnect: { initialDelay: 10, maxDelay: 40, maxAttempts: 3 },
      })
      const events = yield* collect(client.events)
      // Refuse every reconnect: stop listening, then drop the live socket.
      gateway.wss.close()
      gateway.latest.socket.terminate()
      const error = yield* Effect.flip(client.await)
      expect(error).toMatchObject({ _tag: "ConnectionLost", attempts: 3 })
      yield* eventually(() => eventsOf("Closed")(events.items).length === 1, "Closed")
      const delays = eventsOf("Reconnecting")(events.items).map((e) => [e.attempt, e.delayMillis] as const)
      expect(delays.map(([a]) => a)).toEqual([1, 2, 3])
      delays.forEach(([attempt, delay]) => {
        const nominal = Math.min(10 * 2 ** (attempt - 1), 40)
        expect(delay).toBeGreaterThanOrEqual(nominal * 0.5)
        expect(delay).toBeLessThanOrEqual(nominal)
      })
    }),
  )

  it.scopedLive("fails to connect to a closed port with ConnectFailed", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const url = gateway.url
      yield* Effect.async<void>((resume) => gateway.wss.close(() => resume(Effect.void)))
      const error = yield* Effect.flip(Client.connect({ url, WebSocket, connectTimeout: "2 seconds" }))
      expect(error._tag).toBe("ConnectFailed")
    }),
  )

  it.scopedLive("reports invalid messages without delivering them or counting a gap", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = yield* connectTo(gateway)
      const messages = yield* collect(client.messages)
      const events = yield* collect(client.events)
      const conn = gateway.latest
      gateway.send(conn, { type: "price_update", code: "005930", price: "not a number" })
      gateway.send(conn, priceUpdate("005930", 73000))
      conn.socket.send("{oops")
      yield* eventually(() => eventsOf("InvalidMessage")(events.items).length === 2, "2 invalid messages")
      expect(ofType("price_update")(messages.items)).toHaveLength(1)
      expect(eventsOf("Gap")(events.items)).toEqual([])
    }),
  )

  it.scopedLive("ends the message stream when its scope closes", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const received = yield* Effect.scoped(
        Effect.gen(function* () {
          const client = yield* connectTo(gateway)
          gateway.send(gateway.latest, priceUpdate("005930", 73000))
          return yield* client.messages.pipe(Stream.take(2), Stream.runCollect)
        }),
      )
      expect(Chunk.toReadonlyArray(received).map((m) => m.type)).toEqual(["connected", "price_update"])
      yield* eventually(() => gateway.latest.socket.readyState === WebSocket.CLOSED, "socket closed")
    }),
  )
})

describe("QuotecastClient (facade)", () => {
  it.scopedLive("delivers typed handlers, gaps and restores through callbacks", () =>
    Effect.gen(function* () {
      const gateway = yield* fakeGateway()
      const client = new QuotecastClient({
        url: gateway.url,
        WebSocket,
        reconnect: fastReconnect,
        token: "t",
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))

      const prices: Array<number> = []
      const gaps: Array<readonly [number, number]> = []
      const log: Array<string> = []
      client.on("price_update", (m) => prices.push(m.price))
      client.on("gap", ({ expected, received }) => gaps.push([expected, received]))
      client.on("reconnected", (m) => log.push(`reconnected ${m.session_id}`))
      client.on("close", ({ error }) => log.push(`close ${error?._tag ?? "owner"}`))
      const off = client.on("message", (m) => log.push(m.type))
      client.on("price_update", () => {
        throw new Error("a broken handler must not stop the others")
      })
      const originalReportError = (globalThis as { reportError?: unknown }).reportError
      const reported: Array<unknown> = []
      ;(globalThis as { reportError?: (e: unknown) => void }).reportError = (e) => reported.push(e)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          ;(globalThis as { reportError?: unknown }).reportError = originalReportError
        }),
      )

      yield* Effect.promise(() => client.subscribe("stock", ["005930"])) // before connect: sent once connected
      const connecting = client.connect()
      yield* Effect.promise(() => client.subscribe("market", ["KOSPI"])) // mid-connect: applied after the handshake
      yield* Effect.promise(() => connecting)
      const first = gateway.latest
      yield* gateway.awaitReceived(first, (m) => m.subscription_type === "market")
      expect(subscribeOn(first)).toEqual([
        { type: "subscribe", subscription_type: "stock", targets: ["005930"] },
        { type: "subscribe", subscription_type: "market", targets: ["KOSPI"] },
      ])
      gateway.sendBatch(first, [priceUpdate("005930", 1), priceUpdate("005930", 2)])
      gateway.skip(first, 1)
      gateway.send(first, priceUpdate("005930", 3))
      yield* eventually(() => prices.length === 3, "3 prices")
      expect(prices).toEqual([1, 2, 3])
      expect(gaps).toEqual([[6, 7]])
      expect(reported).toHaveLength(3)

      first.socket.terminate()
      yield* eventually(() => log.includes(`reconnected ${first.session.id}`), "reconnected")
      expect(client.sessionId).toBe(first.session.id)
      expect(client.state.status).toBe("ready")
      expect(subscribeOn(gateway.latest)).toEqual([])
      off()
      expect(yield* Effect.promise(() => client.ping())).toBeGreaterThanOrEqual(0)
      yield* Effect.promise(() => client.close())
      expect(log.at(-1)).toBe("close owner")
      expect(client.closed).toBe(true)
    }),
  )

  it.live("rejects connect() with the typed error", () =>
    Effect.gen(function* () {
      const client = new QuotecastClient({ url: "ws://127.0.0.1:9/v1/ws", WebSocket, connectTimeout: 2000 })
      const error = yield* Effect.promise(() =>
        client.connect().then(
          () => undefined,
          (e: unknown) => e,
        ),
      )
      expect(error).toMatchObject({ _tag: "ConnectFailed" })
    }),
  )
})
