/**
 * A connection that closes without flushing (its reader is stuck or gone: the outbound budget,
 * a slow consumer, a message flood, the client's own close) gives up what waits for it at once,
 * not when its actor next gets a turn: its queue no longer counts against the outbound budget and
 * no longer grows with every event. Its alerts stay, for its session to deliver on restore
 * (docs/protocol.md "Slow readers and conflation": the session is kept with its alerts).
 */
import { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import WebSocket, { WebSocketServer } from "ws"
import { makeMemoryBroker } from "../../src/broker/Broker.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { Conn, type FlushScheduler } from "../../src/connection/Conn.js"
import { Flusher, FlusherLive } from "../../src/connection/Flusher.js"
import { Outbox } from "../../src/connection/Outbox.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { isAlertBody, openBody } from "../../src/protocol/encode.js"
import { CloseCode } from "../../src/protocol/errors.js"

const price = (code: string, p: number) => ({
  key: `price_update|${code}`,
  body: openBody({ type: "price_update", code, price: p }),
})
const alert = (id: string) => ({ key: undefined, body: openBody({ type: "alert", alert_id: id }) })
const answer = () => ({ key: undefined, body: openBody({ type: "subscribed", targets: ["005930"] }) })

const scheduled: Array<Conn> = []
const recording: FlushScheduler = { schedule: (c) => scheduled.push(c), conflated: () => {} }

/** The server side of a real loopback connection. */
const serverSocket = Effect.acquireRelease(
  Effect.async<{ server: WebSocket; wss: WebSocketServer; client: WebSocket }>((resume) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => {
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`)
      wss.once("connection", (server) =>
        client.once("open", () => resume(Effect.succeed({ server, wss, client }))),
      )
    })
  }),
  ({ wss, client }) =>
    Effect.sync(() => {
      client.terminate()
      wss.close()
    }),
)

/** A connection whose queue is only looked at, never flushed (its scheduler records). */
const standalone = (ws: WebSocket) =>
  new Conn("c1", ws, new Outbox(), recording, makeMemoryBroker(), 0, {
    id: "s1",
    userId: "u1",
    lastSequence: 0,
  })

describe("a close that does not flush", () => {
  it.scoped("gives up the queue at once, alerts aside, and takes no more deliveries", () =>
    Effect.gen(function* () {
      const conn = standalone((yield* serverSocket).server)
      conn.deliver(price("005930", 1))
      conn.enqueue(alert("a1"))
      conn.enqueue(answer())
      conn.deliver(price("000660", 1))
      conn.requestClose({ code: CloseCode.tryAgainLater, reason: "outbound budget exceeded", flush: false })
      expect(conn.outbox.bodiesWhere(() => true)).toEqual([alert("a1").body])
      expect(conn.outbox.bytes).toBe(alert("a1").body.length)
      scheduled.length = 0
      conn.deliver(price("005930", 2))
      conn.enqueue(alert("a2"))
      expect(conn.outbox.size).toBe(1)
      expect(scheduled).toEqual([])
    }),
  )

  it.scoped("while a close that flushes keeps the queue for its last flush", () =>
    Effect.gen(function* () {
      const conn = standalone((yield* serverSocket).server)
      conn.deliver(price("005930", 1))
      conn.enqueue(alert("a1"))
      conn.requestClose({ code: CloseCode.takenOver, reason: "session taken over", flush: true })
      expect(conn.outbox.size).toBe(2)
    }),
  )
})

const flusherLayer = FlusherLive.pipe(
  Layer.provideMerge(GatewayStats.layer),
  Layer.provide(AppConfig.layerWith({ batching: true, batchIntervalMs: 30 })),
)

describe("a flush pass that finds a connection's socket destroyed", () => {
  it.scoped("drops what can no longer be written but keeps its alerts for the session", () =>
    Effect.gen(function* () {
      const { server } = yield* serverSocket
      const flusher = yield* Flusher
      const conn = new Conn("c2", server, new Outbox(), flusher.scheduler, makeMemoryBroker(), 0, {
        id: "s2",
        userId: "u1",
        lastSequence: 0,
      })
      // The budget destroys a socket it closes at once; its actor ends the connection later.
      server.terminate()
      conn.enqueue(alert("a1"))
      conn.deliver(price("005930", 1))
      yield* TestClock.adjust("30 millis")
      yield* flusher.flushAll
      expect(conn.outbox.bodiesWhere(isAlertBody)).toEqual([alert("a1").body])
      expect(conn.outbox.size).toBe(1)
    }).pipe(Effect.provide(flusherLayer)),
  )
})
