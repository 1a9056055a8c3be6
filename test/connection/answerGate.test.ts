/**
 * AnswerGate: a `subscribe`'s snapshots are queued at once while what connections are owed (plus
 * what answers under way reserved) stays within half of OUTBOUND_BUDGET_BYTES; beyond it the
 * answer waits, in arrival order, before its topics are joined, and its connection is pinged. A
 * connection that answers the ping reads, and its answer goes at once; one that closes lets its
 * actor go on; the others go at the ends of flush passes as room returns. Sizes are estimated from
 * the answers before. Driven with stand-in connections (only the fields the gate and budget read).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { WebSocket } from "ws"
import { AnswerGate } from "../../src/connection/AnswerGate.js"
import type { BudgetProbe, Conn } from "../../src/connection/Conn.js"
import { answered, OutboundBudget } from "../../src/connection/OutboundBudget.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"

interface Fake {
  readonly ws: { readyState: number; bufferedAmount: number; ping: (data: Buffer) => void }
  readonly outbox: { bytes: number; footprint: number }
  counted: number
  countedPass: number
  budgetConflatedAt: number
  budgetProbe: BudgetProbe | undefined
  budgetWake: (() => void) | undefined
  readonly pings: Array<Buffer>
}

const fake = (queued = 0): Fake => {
  const f: Fake = {
    ws: { readyState: WebSocket.OPEN, bufferedAmount: 0, ping: (data) => f.pings.push(data) },
    outbox: { bytes: queued, footprint: queued },
    counted: 0,
    countedPass: 0,
    budgetConflatedAt: 0,
    budgetProbe: undefined,
    budgetWake: undefined,
    pings: [],
  }
  return f
}
const asConn = (f: Fake): Conn => f as unknown as Conn

const LIMIT = 1000
const HALF = LIMIT / 2

const setup = () => {
  const stats = new GatewayStatsImpl()
  const budget = new OutboundBudget(LIMIT, stats)
  const gate = new AnswerGate(budget, stats, 0.5)
  // Answers of 10 bytes per topic so far.
  gate.learn(100, 10)
  /** A connection that owes `bytes` (it does not read), counted by the budget. */
  const owing = (bytes: number) => {
    const f = fake(bytes)
    budget.count(asConn(f))
    return f
  }
  return { stats, budget, gate, owing }
}

/** Starts waiting for room; the fiber's result is what was reserved. */
const waitFor = (gate: AnswerGate, f: Fake, topics: number) => Effect.runFork(gate.wait(asConn(f), topics))

const settled = (fiber: Fiber.RuntimeFiber<number>) =>
  Effect.runSync(Effect.yieldNow().pipe(Effect.andThen(fiber.poll)))

describe("AnswerGate", () => {
  it("reserves at once while what is owed and reserved stays within half the budget", () => {
    const { gate, owing } = setup()
    owing(HALF - 200)
    // 20 topics at 10 bytes: 200 bytes, just fits.
    expect(gate.reserve(asConn(fake()), 20)).toBe(200)
    // Reserved counts until released: the next one does not fit.
    expect(gate.reserve(asConn(fake()), 1)).toBeUndefined()
    gate.release(200)
    expect(gate.reserve(asConn(fake()), 1)).toBe(10)
  })

  it("makes an answer beyond it wait, pings its connection, and lets it through at a pass's end once there is room", async () => {
    const { stats, budget, gate, owing } = setup()
    const holder = owing(HALF)
    const conn = fake()
    expect(gate.reserve(asConn(conn), 5)).toBeUndefined()
    const fiber = waitFor(gate, conn, 5)
    expect(conn.pings.map(String)).toEqual(["quotecast-budget"])
    expect(stats.outboundAnswersWaited).toBe(1)
    budget.endPass()
    gate.endPass()
    expect(gate.waiting).toBe(1)
    expect(settled(fiber)._tag).toBe("None")
    // The one that owed everything is gone (closed, or it caught up).
    holder.outbox.bytes = 0
    budget.count(asConn(holder))
    gate.endPass()
    expect(gate.waiting).toBe(0)
    expect(await Effect.runPromise(Fiber.join(fiber))).toBe(50)
  })

  it("lets waiting answers through in arrival order, and a later one never passes them by", async () => {
    const { budget, gate, owing } = setup()
    const holder = owing(HALF)
    const first = waitFor(gate, fake(), 30)
    const second = waitFor(gate, fake(), 30)
    // Room for the first only, once the holder owes less.
    holder.outbox.bytes = HALF - 300
    budget.count(asConn(holder))
    // A newcomer small enough to fit does not jump the queue.
    expect(gate.reserve(asConn(fake()), 1)).toBeUndefined()
    gate.endPass()
    expect(await Effect.runPromise(Fiber.join(first))).toBe(300)
    expect(settled(second)._tag).toBe("None")
    gate.release(300)
    gate.endPass()
    expect(await Effect.runPromise(Fiber.join(second))).toBe(300)
  })

  it("lets the answer of a connection that answers the ping go at once, room or not, and its later ones too", async () => {
    const { gate, owing } = setup()
    owing(LIMIT)
    const reader = fake()
    const fiber = waitFor(gate, reader, 10)
    answered(asConn(reader), reader.pings[0] as Buffer)
    expect(await Effect.runPromise(Fiber.join(fiber))).toBe(100)
    expect(gate.reserve(asConn(reader), 10)).toBe(100)
  })

  it("lets a waiting answer go when its connection closes, so its actor finds the close", async () => {
    const { gate, owing } = setup()
    owing(LIMIT)
    const conn = fake()
    const fiber = waitFor(gate, conn, 10)
    conn.budgetWake?.()
    expect(await Effect.runPromise(Fiber.join(fiber))).toBe(100)
    expect(conn.budgetWake).toBeUndefined()
  })

  it("forgets a waiter whose fiber was interrupted", async () => {
    const { budget, gate, owing } = setup()
    const holder = owing(HALF)
    const conn = fake()
    const fiber = waitFor(gate, conn, 10)
    expect(Exit.isInterrupted(await Effect.runPromise(Fiber.interrupt(fiber)))).toBe(true)
    expect(conn.budgetWake).toBeUndefined()
    holder.outbox.bytes = 0
    budget.count(asConn(holder))
    gate.endPass()
    // Nothing was reserved for it: a newcomer gets the whole share.
    expect(gate.reserve(asConn(fake()), HALF / 10)).toBe(HALF)
  })

  it("still lets one answer larger than the whole share through, alone", () => {
    const { gate } = setup()
    expect(gate.reserve(asConn(fake()), 100)).toBe(1000)
    expect(gate.reserve(asConn(fake()), 1)).toBeUndefined()
  })
})
