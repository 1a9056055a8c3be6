/**
 * Frames over OUTBOUND_FREE_WRITE_BYTES (a burst of snapshots) are written for at most
 * FLUSH_LARGE_FRAMES_MS per flush pass; the rest go first in the next pass, and small frames are
 * written in every pass whatever waits. Without the bound, 4,800 clients subscribing to 200 stocks
 * at once made one pass of 24 s, during which the feed (which waits for the pass) published
 * nothing and every other client heard nothing. Real sockets on loopback.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Conn } from "../../src/connection/Conn.js"
import { makeFlusher } from "../../src/connection/Flusher.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { openBody } from "../../src/protocol/encode.js"
import { connsOver, flushOptions, type Loopback, openLoopback } from "../support/loopback.js"

/** 40 connections with a 256 KB frame each: 10 MB, far more than 1 ms of writing anywhere. */
const LARGE = 40
const PAD = "x".repeat(256 * 1024)

let loopback: Loopback
const received: Array<Array<Record<string, unknown>>> = []

// The large ones first, then the one whose frame is small: last in the pass's order.
beforeAll(async () => {
  loopback = await openLoopback(LARGE + 1, (client) => {
    const frames: Array<Record<string, unknown>> = []
    client.on("message", (d) => frames.push(JSON.parse(d.toString())))
    received.push(frames)
  })
})

afterAll(() => loopback.close())

const note = (i: number, pad: string) => ({ key: undefined, body: openBody({ type: "note", i, pad }) })

const setup = (flushLargeFramesMs: number) => {
  const stats = new GatewayStatsImpl()
  const flusher = makeFlusher(flushOptions({ flushLargeFramesMs }), stats)
  const conns = connsOver(loopback.servers, flusher.scheduler)
  for (const f of received) f.length = 0
  return { stats, flusher, conns }
}

/** Waits (at most 5 s) until every large connection's client has read `n` frames. */
const readAll = async (n: number) => {
  const behind = () => received.slice(0, LARGE).some((f) => f.length < n)
  for (let i = 0; i < 500 && behind(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe("large frames in a flush pass", () => {
  it("writes them for at most FLUSH_LARGE_FRAMES_MS per pass, and the small frame behind them in the same pass", async () => {
    const { stats, flusher, conns } = setup(1)
    conns.forEach((c, i) => {
      c.deliver(note(i, i < LARGE ? PAD : ""))
    })
    await Effect.runPromise(flusher.flushAll)
    const carried = stats.largeFramesCarried
    // At least one large frame per pass (progress), not all of them (the bound).
    expect(carried).toBeGreaterThan(0)
    expect(carried).toBeLessThan(LARGE)
    // The small frame, last in order, did not wait for the large ones.
    expect(flusher.queuedMessages()).toBe(carried)
    for (let i = 0; i < 500 && (received[LARGE]?.length ?? 0) === 0; i++)
      await new Promise((r) => setTimeout(r, 10))
    expect(received[LARGE]).toEqual([expect.objectContaining({ type: "note", i: LARGE })])
    // Nothing of this spec is left in flight for the next one's clients.
    for (let pass = 0; pass < 200 && flusher.queuedMessages() > 0; pass++)
      await Effect.runPromise(flusher.flushAll)
    await readAll(1)
  })

  it("starts the next pass with the frames it carried, in their order, and loses none", async () => {
    const { stats, flusher, conns } = setup(1)
    conns.forEach((c, i) => {
      if (i < LARGE) c.deliver(note(i, PAD))
    })
    const waiting = () => conns.flatMap((c, i) => (c.outbox.size > 0 ? [i] : []))
    await Effect.runPromise(flusher.flushAll)
    // Written in order until the time was spent: what waits is the tail.
    const afterFirst = waiting()
    const firstPass = LARGE - afterFirst.length
    expect(afterFirst).toEqual(Array.from({ length: LARGE - firstPass }, (_, k) => firstPass + k))
    // New for a connection the first pass wrote: it queues behind the carried ones.
    ;(conns[0] as Conn).deliver(note(1000, PAD))
    await Effect.runPromise(flusher.flushAll)
    const afterSecond = waiting()
    expect(afterSecond.length).toBeGreaterThan(0)
    // The carried were taken from the front; connection 0 waits behind them.
    expect(afterSecond[0]).toBe(0)
    const carriedLeft = afterSecond.slice(1)
    expect(carriedLeft).toEqual(afterFirst.slice(afterFirst.length - carriedLeft.length))
    expect(carriedLeft.length).toBeLessThan(afterFirst.length)
    for (let pass = 0; pass < 200 && flusher.queuedMessages() > 0; pass++)
      await Effect.runPromise(flusher.flushAll)
    expect(flusher.queuedMessages()).toBe(0)
    expect(stats.largeFramesCarried).toBeGreaterThan(0)
    await readAll(1)
    // Every connection got exactly what it was sent, once.
    received.forEach((frames, i) => {
      expect(frames.map((f) => f.i)).toEqual(i === 0 ? [0, 1000] : i < LARGE ? [i] : [])
    })
  })

  it("with a bound out of reach, writes every large frame in one pass", async () => {
    const { stats, flusher, conns } = setup(1e9)
    conns.forEach((c, i) => {
      if (i < LARGE) c.deliver(note(i, PAD))
    })
    await Effect.runPromise(flusher.flushAll)
    expect(stats.largeFramesCarried).toBe(0)
    expect(flusher.queuedMessages()).toBe(0)
    await readAll(1)
    expect(received.slice(0, LARGE).map((f) => f.length)).toEqual(Array.from({ length: LARGE }, () => 1))
  })
})
