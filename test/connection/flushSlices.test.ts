/**
 * A flush pass over many sockets is written in slices (FLUSH_SLICE_MS): between them Node runs
 * the I/O that is ready, and what that I/O delivers to a connection the pass has not reached yet
 * goes out in the same pass; a connection already written keeps it for the next pass (one frame
 * per connection per pass). The local feed waits for the pass to end (`Flusher.idle`).
 * With FLUSH_SLICE_MS=0 a pass is sliced all the same when connections were accepted since the
 * last one (a reconnect storm: Node accepts one connection per event-loop turn).
 * Real sockets on loopback; the pass is made long with large frames.
 */
import { Effect, Fiber } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Conn } from "../../src/connection/Conn.js"
import { makeFlusher } from "../../src/connection/Flusher.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { openBody } from "../../src/protocol/encode.js"
import { connsOver, flushOptions, type Loopback, openLoopback } from "../support/loopback.js"

const CONNECTIONS = 60
/** 200 KB per frame: 60 of them take well over a millisecond to write, even on a fast machine. */
const BIG = "x".repeat(200_000)

let loopback: Loopback
const frames: Array<Array<Record<string, unknown>>> = []

beforeAll(async () => {
  loopback = await openLoopback(CONNECTIONS, (client) => {
    const received: Array<Record<string, unknown>> = []
    client.on("message", (d) => received.push(JSON.parse(d.toString())))
    frames.push(received)
  })
})

afterAll(() => loopback.close())

const big = (i: number) => ({ key: undefined, body: openBody({ type: "note", i, pad: BIG }) })
const small = (tag: string) => ({ key: undefined, body: openBody({ type: "note", tag }) })

/** Runs one pass over every connection; during it (at the first turn it gives away) pokes two of them. */
const passWithPokes = async (flushSliceMs: number, acceptedBefore = 0) => {
  const stats = new GatewayStatsImpl()
  const flusher = makeFlusher(flushOptions({ flushSliceMs }), stats)
  stats.connectionsAccepted += acceptedBefore
  const conns = connsOver(loopback.servers, flusher.scheduler)
  for (const f of frames) f.length = 0
  for (const [i, c] of conns.entries()) c.deliver(big(i))
  const first = conns[0] as Conn
  const last = conns[conns.length - 1] as Conn
  let idleDuringPass: boolean | undefined
  let idleFiber: Fiber.RuntimeFiber<void> | undefined
  setImmediate(() => {
    // Stands for I/O arriving mid-pass (a Redis message, a client frame).
    first.deliver(small("late-first"))
    last.deliver(small("late-last"))
    idleFiber = Effect.runFork(flusher.idle)
    idleDuringPass = idleFiber.unsafePoll() !== null
  })
  await Effect.runPromise(flusher.flushAll)
  const idleAfterPass = idleFiber === undefined ? undefined : await Effect.runPromise(Fiber.join(idleFiber))
  // Let the clients read everything.
  const expected = (n: number) => frames.every((f) => f.length >= n)
  for (let i = 0; i < 200 && !expected(1); i++) await new Promise((r) => setTimeout(r, 10))
  return { flusher, stats, idleDuringPass, idleAfterPass }
}

describe("a flush pass in slices", () => {
  it("lets I/O in mid-pass: a connection not reached yet takes what arrived along, one already written keeps it for the next pass", async () => {
    const { flusher, idleDuringPass } = await passWithPokes(1)
    const lastFrames = frames[CONNECTIONS - 1] ?? []
    expect(lastFrames).toHaveLength(1)
    expect(lastFrames[0]).toMatchObject({ type: "batch", batch_size: 2 })
    const firstFrames = frames[0] ?? []
    expect(firstFrames).toHaveLength(1)
    expect(firstFrames[0]).toMatchObject({ type: "note", i: 0 })
    // The first connection's late message waits for the next pass.
    expect(flusher.queuedMessages()).toBe(1)
    // The feed would have waited: the pass was still running.
    expect(idleDuringPass).toBe(false)
  })

  it("with FLUSH_SLICE_MS=0 still slices a pass that starts after connections were accepted", async () => {
    const { flusher, idleDuringPass } = await passWithPokes(0, 1)
    expect(frames[CONNECTIONS - 1]?.[0]).toMatchObject({ type: "batch", batch_size: 2 })
    expect(flusher.queuedMessages()).toBe(1)
    expect(idleDuringPass).toBe(false)
  })

  it("asks the clock for a rest as long as the pass while setups wait, and for none otherwise", async () => {
    const { flusher, stats } = await passWithPokes(0)
    expect(flusher.lastPassMs()).toBeGreaterThan(0)
    expect(flusher.restMs()).toBe(0)
    stats.setupsWaiting = 1
    expect(flusher.restMs()).toBe(flusher.lastPassMs())
  })

  it("with FLUSH_SLICE_MS=0 writes the whole pass in one go: what arrives meanwhile waits for the next", async () => {
    const { flusher, idleDuringPass } = await passWithPokes(0)
    expect(frames[CONNECTIONS - 1]).toHaveLength(1)
    expect(frames[CONNECTIONS - 1]?.[0]).toMatchObject({ type: "note", i: CONNECTIONS - 1 })
    expect(flusher.queuedMessages()).toBe(2)
    // The immediate ran after the pass: nothing to wait for.
    expect(idleDuringPass).toBe(true)
  })
})
