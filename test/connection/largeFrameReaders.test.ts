/**
 * Among large frames carried to a later pass (FLUSH_LARGE_FRAMES_MS), those for connections that
 * showed they read go first. A client that stopped reading looks like a reader while its kernel
 * buffers still take data (tens of seconds on loopback), so each connection the flusher has a
 * large frame for is sent the budget's ping, once; one that answers is served before those that
 * did not.
 * Without that, a reader beside clients whose kernels took everything waited its turn behind all
 * of them, pass after pass. Real sockets on loopback.
 */
import type { Duplex } from "node:stream"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Conn } from "../../src/connection/Conn.js"
import { makeFlusher } from "../../src/connection/Flusher.js"
import { answered } from "../../src/connection/OutboundBudget.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { openBody } from "../../src/protocol/encode.js"
import { connsOver, flushOptions, type Loopback, openLoopback } from "../support/loopback.js"

/** Clients that stopped reading, then one reader last in the pass's order. */
const STOPPED = 30
const PAD = "x".repeat(256 * 1024)
const PASSES = 30

let loopback: Loopback
const readerFrames: Array<Record<string, unknown>> = []

beforeAll(async () => {
  loopback = await openLoopback(STOPPED + 1, (client, i) => {
    if (i === STOPPED) client.on("message", (d) => readerFrames.push(JSON.parse(d.toString())))
    else (client as unknown as { _socket: Duplex })._socket.pause()
  })
})

afterAll(() => loopback.close())

const note = (i: number, pass: number) => ({
  key: undefined,
  body: openBody({ type: "note", i, pass, pad: PAD }),
})
const turn = () => new Promise((r) => setTimeout(r, 20))

describe("large frames carried to a later pass", () => {
  it("go first for a connection that answered the budget's ping, while those that stopped reading take turns", async () => {
    const stats = new GatewayStatsImpl()
    const flusher = makeFlusher(flushOptions({ flushLargeFramesMs: 1 }), stats)
    const conns = connsOver(loopback.servers, flusher.scheduler)
    const reader = conns[STOPPED] as Conn
    // What the connection's binding does with every pong (`binding.ts`).
    for (const c of conns) c.ws.on("pong", (data: Buffer) => answered(c, data))
    for (let pass = 0; pass < PASSES; pass++) {
      // Every connection has a new large frame at every pass: more than a pass's bound.
      conns.forEach((c, i) => {
        if (c.outbox.size === 0) c.deliver(note(i, pass))
      })
      const carriedBefore = stats.largeFramesCarried
      await Effect.runPromise(flusher.flushAll)
      // The bound held: some waited for the next pass.
      expect(stats.largeFramesCarried).toBeGreaterThan(carriedBefore)
      await turn()
    }
    // Asked with its first large frame, it answered (`ws` answers pings as it reads); from then on it waits
    // at most one pass: a new frame finds the carried ones ahead, and goes first in the next.
    expect(stats.outboundBudgetProbes).toBeGreaterThan(0)
    expect(reader.budgetProbe?.answered).toBe(true)
    expect(reader.messagesSent).toBeGreaterThanOrEqual(PASSES / 2 - 2)
    // Those that stopped reading were asked too, answered nothing, and took turns behind it.
    const others = conns.slice(0, STOPPED)
    expect(others.every((c) => c.budgetProbe?.pinged === true && !c.budgetProbe.answered)).toBe(true)
    expect(Math.max(...others.map((c) => c.messagesSent)) * 3).toBeLessThan(reader.messagesSent)
    for (let i = 0; i < 100 && readerFrames.length < reader.messagesSent; i++) await turn()
    expect(readerFrames.length).toBe(reader.messagesSent)
  })
})
