/**
 * docs/protocol.md "`batch`": every BATCH_INTERVAL_MS a connection with two or more queued messages
 * gets one `batch`; a single message goes alone; sequences are assigned at send time. Driven
 * by TestClock over a real socket pair on loopback.
 */
import { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, TestClock } from "effect"
import WebSocket, { WebSocketServer } from "ws"
import { makeMemoryBroker } from "../../src/broker/Broker.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { Conn } from "../../src/connection/Conn.js"
import { Flusher, FlusherLive, flushClock } from "../../src/connection/Flusher.js"
import { Outbox } from "../../src/connection/Outbox.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { openBody } from "../../src/protocol/encode.js"

/** A connected pair: the server side as a gateway would hold it, the client side recording frames. */
const socketPair = Effect.acquireRelease(
  Effect.async<{
    server: WebSocket
    client: WebSocket
    frames: Array<Record<string, unknown>>
    wss: WebSocketServer
  }>((resume) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => {
      const frames: Array<Record<string, unknown>> = []
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`)
      client.on("message", (d) => frames.push(JSON.parse(d.toString())))
      wss.once("connection", (server) =>
        client.once("open", () => resume(Effect.succeed({ server, client, frames, wss }))),
      )
    })
  }),
  ({ client, wss }) =>
    Effect.sync(() => {
      client.terminate()
      wss.close()
    }),
)

const realWait = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

const flusherLayer = (batching: boolean) =>
  FlusherLive.pipe(
    Layer.provideMerge(GatewayStats.layer),
    Layer.provide(AppConfig.layerWith({ batching, batchIntervalMs: 30 })),
  )

const makeConn = (ws: WebSocket) =>
  Effect.gen(function* () {
    const flusher = yield* Flusher
    return new Conn("c1", ws, new Outbox(), flusher.scheduler, makeMemoryBroker(), 0, {
      id: "s1",
      userId: null,
      lastSequence: 0,
    })
  })

const state = (code: string, price: number) => ({
  key: `price_update|${code}`,
  body: openBody({ type: "price_update", code, price }),
})

describe("Flusher", () => {
  it.scoped("flushes on the 30 ms clock: one batch for several messages, a lone message as itself", () =>
    Effect.gen(function* () {
      const { server, frames } = yield* socketPair
      const conn = yield* makeConn(server)
      yield* Effect.yieldNow()
      conn.deliver(state("005930", 1))
      conn.deliver(state("000660", 2))
      conn.deliver(state("005930", 3)) // conflates with the first
      yield* TestClock.adjust("29 millis")
      yield* realWait(50)
      expect(frames).toHaveLength(0)
      yield* TestClock.adjust("1 millis")
      yield* realWait(50)
      expect(frames).toHaveLength(1)
      expect(frames[0]).toMatchObject({ type: "batch", batch_size: 2, sequence: 2 })
      expect(frames[0]?.messages).toEqual([
        { type: "price_update", code: "005930", price: 3, sequence: 1 },
        { type: "price_update", code: "000660", price: 2, sequence: 2 },
      ])
      conn.deliver(state("035720", 4))
      yield* TestClock.adjust("30 millis")
      yield* realWait(50)
      expect(frames[1]).toEqual({ type: "price_update", code: "035720", price: 4, sequence: 3 })
    }).pipe(Effect.provide(flusherLayer(true))),
  )

  it.scoped("with BATCHING=off sends each message at once, in order", () =>
    Effect.gen(function* () {
      const { server, frames } = yield* socketPair
      const conn = yield* makeConn(server)
      conn.deliver(state("005930", 1))
      conn.deliver(state("000660", 2))
      yield* realWait(50)
      expect(frames.map((f) => f.sequence)).toEqual([1, 2])
      expect(frames.every((f) => f.type === "price_update")).toBe(true)
    }).pipe(Effect.provide(flusherLayer(false))),
  )

  it.scoped("holds a connection whose socket is over its send-buffer limit, conflating meanwhile", () =>
    Effect.gen(function* () {
      const { server, frames } = yield* socketPair
      const flusher = yield* Flusher
      const conn = yield* makeConn(server)
      yield* Effect.yieldNow()
      conn.deliver(state("A", 1))
      yield* TestClock.adjust("30 millis")
      yield* realWait(30)
      // Stands for a socket whose reader stopped reading (the gateway tests do it for real).
      Object.defineProperty(server, "bufferedAmount", { value: 10_000_000, configurable: true })
      for (let i = 2; i <= 100; i++) conn.deliver(state("A", i))
      yield* TestClock.adjust("30 millis")
      expect(flusher.queuedMessages()).toBe(1)
      Object.defineProperty(server, "bufferedAmount", { value: 0, configurable: true })
      yield* TestClock.adjust("30 millis")
      yield* realWait(50)
      expect(frames.map((f) => [f.price, f.sequence])).toEqual([
        [1, 1],
        [100, 2],
      ])
    }).pipe(Effect.provide(flusherLayer(true))),
  )

  it.scoped("starts a pass every interval, counted from the start of the previous pass", () =>
    Effect.gen(function* () {
      // Passes that "take" 20 ms, then 45 ms (longer than the interval), then 0 ms.
      const durations = [20, 45, 0, 0]
      const starts: Array<number> = []
      let last = 0
      const pass = Effect.map(Clock.currentTimeMillis, (t) => {
        starts.push(t)
        last = durations[starts.length - 1] ?? 0
      })
      yield* Effect.forkScoped(
        Effect.repeat(
          pass,
          flushClock(30, () => last),
        ),
      )
      yield* Effect.yieldNow()
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("5 millis")
      // 0 -> +10 (30 - 20) -> +1 (the 45 ms pass overran: the next starts after one turn of the
      // event loop) -> +30
      expect(starts).toEqual([0, 10, 11, 41])
    }),
  )

  it.scoped("rests after a pass as long as the pass took while setups wait", () =>
    Effect.gen(function* () {
      // A 45 ms pass while setups wait, a 20 ms one while they wait, then a 45 ms one after.
      const durations = [45, 20, 45, 0]
      const accepting = [true, true, false, false]
      const starts: Array<number> = []
      let last = 0
      let rest = 0
      const pass = Effect.map(Clock.currentTimeMillis, (t) => {
        starts.push(t)
        last = durations[starts.length - 1] ?? 0
        rest = accepting[starts.length - 1] === true ? last : 0
      })
      yield* Effect.forkScoped(
        Effect.repeat(
          pass,
          flushClock(
            30,
            () => last,
            () => rest,
          ),
        ),
      )
      yield* Effect.yieldNow()
      for (let i = 0; i < 25; i++) yield* TestClock.adjust("5 millis")
      // 0 -> +45 (rests as long as the pass) -> +20 (30 - 20 = 10, but it rests 20) -> +1 (no
      // longer waiting: the overrun pass is followed after one turn) -> +30
      expect(starts).toEqual([0, 45, 65, 66, 96])
    }),
  )
})
