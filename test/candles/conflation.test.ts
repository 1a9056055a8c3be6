/**
 * docs/protocol.md "Slow readers and conflation" for candles: a reader that falls behind gets, of
 * the many `candle_update`s of a bar in progress, only the latest (in the place of the first one
 * it missed), while every `closed: true` update reaches it, once, in the order published, after
 * its bar's last in-progress update: a closed bar is never conflated away, and an update of the
 * next bar never takes its place.
 *
 * The messages are what the pipeline publishes (`encodeEvent`: the one encoding, with its
 * conflation key); they are queued in a connection's outbox, as the TopicHub does, and written by
 * the flusher to a real socket on loopback whose reader stops reading and then resumes.
 */
import type { Duplex } from "node:stream"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, Schema } from "effect"
import { decodeWire, encodeWire } from "../../src/cluster/codec.js"
import type { Conn } from "../../src/connection/Conn.js"
import { makeFlusher } from "../../src/connection/Flusher.js"
import { Outbox } from "../../src/connection/Outbox.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { encodeEvent } from "../../src/pipeline/MarketPipeline.js"
import { nowIso, type Outgoing, openBody } from "../../src/protocol/encode.js"
import { CandleUpdate } from "../../src/protocol/server.js"
import { connsOver, flushOptions, openLoopback } from "../support/loopback.js"

const MINUTE = 60_000
/** 09:00 in Seoul on a Monday. */
const T0 = Date.parse("2026-12-07T09:00:00+09:00")

/** The `n`-th update of a bar of `code`:`interval`: its close moves with `n`, so updates tell apart. */
const update = (
  code: string,
  interval: "1m" | "5m",
  bar: number,
  n: number,
  closed: boolean,
): CandleUpdate => {
  const len = interval === "1m" ? MINUTE : 5 * MINUTE
  const price = 70_000 + 100 * n
  return {
    type: "candle_update",
    code,
    interval,
    time: nowIso(T0 + bar * len),
    open: 70_000,
    high: Math.max(70_000, price),
    low: 70_000,
    close: price,
    volume: 10 * (n + 1),
    value: 700_000 * (n + 1),
    trades: n + 1,
    closed,
    timestamp: nowIso(T0 + bar * len + n),
  }
}

const decodeCandle = Schema.decodeUnknownSync(CandleUpdate)
/** The event of a queued message (an open body), as a client would parse it. */
const decode = (m: Outgoing): CandleUpdate => decodeCandle(JSON.parse(`${m.body}}`))

/** What a client can compare: the bar and its content (sequence numbers aside). */
const seen = (u: CandleUpdate) => `${u.code}:${u.interval}@${u.time} close=${u.close} closed=${u.closed}`
const barOf = (u: CandleUpdate) => `${u.code}:${u.interval}@${u.time}`

/**
 * The delivery rules, checked on what a reader that missed everything published got:
 * every closed update once, in the order published; of a bar in progress, only its latest
 * update, and not after that bar's closed one.
 */
const expectConflated = (published: ReadonlyArray<CandleUpdate>, received: ReadonlyArray<CandleUpdate>) => {
  expect(received.filter((u) => u.closed).map(seen)).toEqual(published.filter((u) => u.closed).map(seen))
  const bars = new Set(published.map(barOf))
  for (const bar of bars) {
    const mine = published.filter((u) => barOf(u) === bar)
    const got = received.filter((u) => barOf(u) === bar)
    const lastInProgress = mine.filter((u) => !u.closed).at(-1)
    const closed = mine.find((u) => u.closed)
    // Of a bar's in-progress updates: the latest only.
    expect(got.filter((u) => !u.closed).map(seen), bar).toEqual(
      lastInProgress === undefined ? [] : [seen(lastInProgress)],
    )
    // ...before the bar's close, which comes last.
    if (closed !== undefined) expect(got.map(seen).at(-1), bar).toBe(seen(closed))
  }
}

/** A bar's life as the builder publishes it: in-progress updates every pass, its close at its end. */
const arbitraryDay = FastCheck.array(
  FastCheck.record({
    code: FastCheck.constantFrom("005930", "000660"),
    interval: FastCheck.constantFrom("1m" as const, "5m" as const),
    // Updates of this bar in progress before it closes (0: it closed at its first trade's pass).
    updates: FastCheck.integer({ min: 0, max: 12 }),
    closes: FastCheck.boolean(),
  }),
  { maxLength: 12 },
).map((steps) => {
  // Series run one bar after another; their updates interleave in the order the steps come.
  const nextBar = new Map<string, number>()
  const published: Array<CandleUpdate> = []
  const open: Array<{ readonly code: string; readonly interval: "1m" | "5m"; readonly bar: number }> = []
  for (const s of steps) {
    const series = `${s.code}:${s.interval}`
    if (open.some((o) => `${o.code}:${o.interval}` === series)) continue
    const bar = nextBar.get(series) ?? 0
    nextBar.set(series, bar + (s.closes ? 1 : 0))
    for (let n = 0; n < s.updates; n++) published.push(update(s.code, s.interval, bar, n, false))
    if (s.closes) published.push(update(s.code, s.interval, bar, s.updates, true))
    else open.push({ code: s.code, interval: s.interval, bar })
  }
  return published
})

describe("candle_update conflation in a connection's outbox", () => {
  it("keys a bar in progress per bar, and a closed bar not at all", () => {
    const inProgress = encodeEvent(update("005930", "1m", 0, 1, false)).msg
    const sameBar = encodeEvent(update("005930", "1m", 0, 2, false)).msg
    const nextBar = encodeEvent(update("005930", "1m", 1, 0, false)).msg
    const otherInterval = encodeEvent(update("005930", "5m", 0, 1, false)).msg
    expect(inProgress.key).toBeDefined()
    expect(sameBar.key).toBe(inProgress.key)
    expect(nextBar.key).not.toBe(inProgress.key)
    expect(otherInterval.key).not.toBe(inProgress.key)
    expect(encodeEvent(update("005930", "1m", 0, 3, true)).msg.key).toBeUndefined()
  })

  it("collapses many updates of a bar in progress to the latest, and keeps every close in order", () => {
    const published = [
      ...[0, 1, 2, 3].map((n) => update("005930", "1m", 0, n, false)),
      update("005930", "5m", 0, 0, false),
      update("005930", "1m", 0, 4, true),
      ...[0, 1, 2].map((n) => update("005930", "1m", 1, n, false)),
      update("005930", "5m", 0, 1, false),
      update("005930", "1m", 1, 3, true),
      ...[0, 1].map((n) => update("005930", "1m", 2, n, false)),
    ]
    const outbox = new Outbox()
    for (const u of published) outbox.offer(encodeEvent(u).msg)
    const received = outbox.drain().map((m) => decode(m))
    expect(received.map(seen)).toEqual(
      [
        update("005930", "1m", 0, 3, false),
        update("005930", "5m", 0, 1, false),
        update("005930", "1m", 0, 4, true),
        update("005930", "1m", 1, 2, false),
        update("005930", "1m", 1, 3, true),
        update("005930", "1m", 2, 1, false),
      ].map(seen),
    )
    expectConflated(published, received)
  })

  it.prop(
    "whatever the interleaving of series and bars, locally and from another instance",
    [arbitraryDay, FastCheck.boolean()],
    ([published, remote]) => {
      const outbox = new Outbox()
      for (const u of published) {
        const msg = encodeEvent(u).msg
        // In cluster mode the message arrives from Redis, its key read back from the wire.
        const delivered = remote ? decodeWire(encodeWire("other", msg))?.msg : msg
        expect(delivered).toBeDefined()
        if (delivered !== undefined) outbox.offer(delivered)
      }
      expectConflated(published, outbox.drain().map(decode))
    },
  )
})

describe("a reader that stops reading while a bar is in progress (real socket)", () => {
  it("gets, once it reads again, each bar's latest in-progress update and every close, in order, without a gap in sequence", async () => {
    const frames: Array<Record<string, unknown>> = []
    let socket: Duplex | undefined
    const loopback = await openLoopback(1, (client) => {
      client.on("message", (d) => frames.push(JSON.parse(d.toString())))
      socket = (client as unknown as { _socket: Duplex })._socket
    })
    try {
      const stats = new GatewayStatsImpl()
      const flusher = makeFlusher(flushOptions({ sendBufferLimitBytes: 64 * 1024 }), stats)
      const conn = connsOver(loopback.servers, flusher.scheduler)[0] as Conn
      const pass = () => Effect.runPromise(flusher.flushAll)
      // The reader stops; a large frame fills what the kernel takes and more stays queued.
      socket?.pause()
      conn.deliver({ key: undefined, body: openBody({ type: "filler", pad: "x".repeat(16 * 1024 * 1024) }) })
      await pass()
      expect(conn.ws.bufferedAmount).toBeGreaterThan(64 * 1024)

      // The builder's passes meanwhile: updates of each bar in progress, each bar's close at its end.
      const published: Array<CandleUpdate> = []
      const publish = (u: CandleUpdate) => {
        published.push(u)
        conn.deliver(encodeEvent(u).msg)
      }
      for (let bar = 0; bar < 3; bar++) {
        for (let n = 0; n < 20; n++) {
          publish(update("005930", "1m", bar, n, false))
          publish(update("000660", "1m", bar, n, false))
          publish(update("005930", "5m", 0, bar * 20 + n, false))
          await pass() // skipped: over SEND_BUFFER_LIMIT_BYTES, the outbox conflates
        }
        publish(update("005930", "1m", bar, 20, true))
        publish(update("000660", "1m", bar, 20, true))
      }
      expect(conn.outbox.size).toBeLessThan(published.length)

      // The reader reads again: passes write what waited.
      socket?.resume()
      for (let i = 0; i < 500 && (conn.outbox.size > 0 || conn.ws.bufferedAmount > 0); i++) {
        await pass()
        await new Promise((r) => setTimeout(r, 10))
      }
      const messagesIn = (f: Record<string, unknown>) =>
        f.type === "batch" ? (f.messages as Array<Record<string, unknown>>) : [f]
      for (let i = 0; i < 500 && !frames.flatMap(messagesIn).some((m) => m.sequence === conn.seq); i++)
        await new Promise((r) => setTimeout(r, 10))
      const all = frames.flatMap(messagesIn)
      expect(all.map((m) => m.sequence)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1))
      const received = all.filter((m) => m.type === "candle_update").map((m) => decodeCandle(m))
      expect(received.length).toBeLessThan(published.length)
      expectConflated(published, received)
      // Exactly: per series, [latest of bar 0, close 0, latest of bar 1, close 1, ...].
      expect(received.filter((u) => u.code === "005930" && u.interval === "1m").map(seen)).toEqual(
        [0, 1, 2].flatMap((bar) => [
          seen(update("005930", "1m", bar, 19, false)),
          seen(update("005930", "1m", bar, 20, true)),
        ]),
      )
      expect(received.filter((u) => u.interval === "5m").map(seen)).toEqual([
        seen(update("005930", "5m", 0, 59, false)),
      ])
    } finally {
      loopback.close()
    }
  }, 30_000)
})
