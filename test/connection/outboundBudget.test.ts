/**
 * OutboundBudget: what connections hold (socket queue + outbox) is counted on the flusher's
 * passes; over the budget, the worst offenders are first conflated (no more writes), then, if
 * the budget is still exceeded at a later pass, closed with 1013, worst first, only as many as
 * it takes; a frame for a reader behind is admitted only within the budget, and what was refused
 * is room the end of the pass makes; a conflated reader that drains its socket resumes; a
 * connection holding nothing is never counted or touched. Driven with stand-in connections (only the fields the budget reads).
 */
import { describe, expect, it } from "@effect/vitest"
import { WebSocket } from "ws"
import type { BudgetProbe, CloseRequest, Conn } from "../../src/connection/Conn.js"
import {
  answered,
  OutboundBudget,
  PROBE_GRACE_MS,
  PROBE_MIN_PASSES,
} from "../../src/connection/OutboundBudget.js"
import { REF_BYTES } from "../../src/connection/Outbox.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"

interface Fake {
  readonly id: string
  readonly ws: {
    readyState: number
    bufferedAmount: number
    terminate: () => void
    ping: (data: Buffer) => void
  }
  /** Its messages are its own unless `sharedBytes` says otherwise: those count as references. */
  readonly outbox: { bytes: number; sharedBytes: number; readonly footprint: number }
  counted: number
  countedPass: number
  budgetConflatedAt: number
  closeRequest: CloseRequest | undefined
  requestClose: (req: CloseRequest) => void
  budgetProbe: BudgetProbe | undefined
  /** The payloads of the pings it was sent. */
  readonly pings: Array<string>
}

const fake = (id: string, buffered: number, queued = 0): Fake => {
  const f: Fake = {
    id,
    ws: {
      readyState: WebSocket.OPEN,
      bufferedAmount: buffered,
      // Destroying the socket: it is closing until its "close" event.
      terminate: () => {
        f.ws.readyState = WebSocket.CLOSING
      },
      ping: (data) => {
        f.pings.push(data.toString())
      },
    },
    outbox: {
      bytes: queued,
      sharedBytes: 0,
      get footprint() {
        return this.bytes - this.sharedBytes
      },
    },
    counted: 0,
    countedPass: 0,
    budgetConflatedAt: 0,
    closeRequest: undefined,
    requestClose: (req) => {
      f.closeRequest ??= req
    },
    budgetProbe: undefined,
    pings: [],
  }
  return f
}
const asConn = (f: Fake): Conn => f as unknown as Conn

const setup = (limit: number) => {
  const stats = new GatewayStatsImpl()
  const clock = { now: 1_000_000 }
  const budget = new OutboundBudget(limit, stats, () => clock.now)
  /**
   * Ends passes (without a change in anyone's socket) and then lets `ms` go by: a verdict needs
   * both PROBE_MIN_PASSES passes and PROBE_GRACE_MS, so the pass that follows is the first that
   * may close.
   */
  const elapse = (ms: number) => {
    for (let i = 0; i < PROBE_MIN_PASSES - 1; i++) budget.endPass()
    clock.now += ms
  }
  return { stats, clock, budget, elapse }
}

/**
 * A connection whose outbox holds 1,500 bytes over a budget of 1,000, with an empty socket: the
 * pass after it is counted conflates it, and the next sends it the budget's ping.
 */
const pingedOnce = (budget: OutboundBudget): Fake => {
  const silent = fake("silent", 0, 1500)
  budget.count(asConn(silent))
  budget.endPass()
  budget.endPass()
  expect(silent.pings).toEqual(["quotecast-budget"])
  return silent
}

/** The client answers the ping it was last sent, as `ws` and browsers do while they read. */
const pong = (f: Fake): void => answered(asConn(f), Buffer.from(f.pings.at(-1) ?? ""))

describe("OutboundBudget", () => {
  it("counts socket queues plus outboxes, and forgets connections that hold nothing", () => {
    const { stats, budget } = setup(1000)
    const a = fake("a", 300, 50)
    const b = fake("b", 0, 0)
    budget.count(asConn(a))
    budget.count(asConn(b))
    budget.endPass()
    expect(stats.outboundBytes).toBe(350)
    // a drains without being visited again: the end of the next pass counts it anyway.
    a.ws.bufferedAmount = 0
    a.outbox.bytes = 0
    budget.endPass()
    expect(stats.outboundBytes).toBe(0)
    expect(stats.outboundBudgetConflations).toBe(0)
  })

  it("counts the bytes owed, shared text or not, and reports beside them the memory they take (a shared message once)", () => {
    const { stats, budget } = setup(100_000)
    // 20 clients that stopped reading, each owed the same 4,000 bytes of snapshots plus 100 of
    // their own: 82,000 bytes owed; one copy of the snapshots in memory, a reference in each.
    const storm = Array.from({ length: 20 }, (_, i) => fake(`s${i}`, 0, 4100))
    for (const f of storm) {
      f.outbox.sharedBytes = 4000 - REF_BYTES
      budget.count(asConn(f))
    }
    budget.endPass()
    expect(stats.outboundBytes).toBe(20 * 4100)
    expect(stats.outboundMemoryBytes).toBe(20 * (REF_BYTES + 100))
  })

  it("asks room for a frame's full size, shared text or not: a frame is made per connection", () => {
    const { budget } = setup(1000)
    const a = fake("a", 10, 2000)
    a.outbox.sharedBytes = 2000 - REF_BYTES
    budget.count(asConn(a))
    expect(budget.admit(asConn(a), a.outbox.bytes)).toBe(false)
  })

  it("conflates the worst offenders first, and closes them with 1013 if the budget stays exceeded", () => {
    const { stats, budget, elapse } = setup(1000)
    const worst = fake("worst", 900)
    const middle = fake("middle", 400)
    const small = fake("small", 100)
    const healthy = fake("healthy", 0)
    for (const f of [small, healthy, worst, middle]) budget.count(asConn(f))
    budget.endPass()
    // 1,400 over 1,000: the worst alone covers the excess of 400.
    expect([worst, middle, small, healthy].map((f) => f.budgetConflatedAt > 0)).toEqual([
      true,
      false,
      false,
      false,
    ])
    expect(worst.closeRequest).toBeUndefined()
    expect(stats.outboundBudgetConflations).toBe(1)

    // Still over at the next pass: the conflated worst is watched; its socket drains nothing for
    // a grace, so it does not read: it is closed, which is enough.
    budget.endPass()
    expect(worst.closeRequest).toBeUndefined()
    elapse(PROBE_GRACE_MS)
    budget.endPass()
    expect(worst.closeRequest).toEqual({ code: 1013, reason: "outbound budget exceeded", flush: false })
    // Its socket is destroyed at once: what it holds is the room the others wait for.
    expect(worst.ws.readyState).toBe(WebSocket.CLOSING)
    expect(middle.closeRequest).toBeUndefined()
    expect(stats.outboundBudgetCloses).toBe(1)

    // Its socket is gone: the total is back under the budget and nobody else is touched.
    worst.ws.readyState = WebSocket.CLOSED
    budget.endPass()
    expect(stats.outboundBytes).toBe(500)
    budget.endPass()
    expect(middle.closeRequest).toBeUndefined()
    expect(small.closeRequest).toBeUndefined()
    expect(healthy.budgetConflatedAt > 0).toBe(false)
  })

  it("lets a conflated reader that drains its socket resume instead of closing it", () => {
    const { stats, budget } = setup(1000)
    const slow = fake("slow", 1500)
    budget.count(asConn(slow))
    budget.endPass()
    expect(slow.budgetConflatedAt > 0).toBe(true)
    // It read everything before the next pass: under budget, no close, writes resume.
    slow.ws.bufferedAmount = 0
    slow.outbox.bytes = 200
    budget.endPass()
    expect(slow.closeRequest).toBeUndefined()
    // Its next frame (small, to an empty socket) is written: it is no longer conflated.
    slow.outbox.bytes = 0
    budget.count(asConn(slow))
    expect(slow.budgetConflatedAt > 0).toBe(false)
    expect(stats.outboundBudgetCloses).toBe(0)
  })

  it("does not close more while connections already closing still hold the excess", () => {
    const { stats, budget } = setup(1000)
    const closing = fake("closing", 1200)
    closing.closeRequest = { code: 1000, reason: "client closed", flush: false }
    const other = fake("other", 500)
    budget.count(asConn(closing))
    budget.count(asConn(other))
    budget.endPass()
    budget.endPass()
    expect(other.budgetConflatedAt > 0).toBe(false)
    expect(other.closeRequest).toBeUndefined()
    expect(stats.outboundBudgetCloses).toBe(0)
  })

  it("admits frames for readers behind only within the budget, and makes room for what it refused", () => {
    const { stats, budget, elapse } = setup(1000)
    const a = fake("a", 500)
    const b = fake("b", 200)
    budget.count(asConn(a))
    budget.count(asConn(b))
    // 700 held: 250 more fit, counted at once (the next admission sees them).
    expect(budget.admit(asConn(b), 250)).toBe(true)
    expect(budget.inUse).toBe(950)
    // 100 more do not: a is conflated, and nobody is closed yet (a was refused just now).
    expect(budget.admit(asConn(a), 100)).toBe(false)
    expect(a.budgetConflatedAt).toBeGreaterThan(0)
    expect(stats.outboundBudgetConflations).toBe(1)
    b.ws.bufferedAmount = 450
    budget.count(asConn(b))
    budget.endPass()
    expect(a.closeRequest).toBeUndefined()
    // b, the largest other, is conflated too: the excess is not covered by a alone.
    expect(b.budgetConflatedAt).toBeGreaterThan(0)
    expect(stats.outboundBudgetConflations).toBe(2)
    // Refused again at the next passes: once a, the worst, has drained nothing for a grace, the
    // room it lacks is made by closing it.
    expect(budget.admit(asConn(a), 100)).toBe(false)
    expect(stats.outboundBudgetConflations).toBe(2)
    budget.endPass()
    expect(a.closeRequest).toBeUndefined()
    elapse(PROBE_GRACE_MS)
    // b reads meanwhile (its socket drains a little); a does not.
    b.ws.bufferedAmount = 420
    expect(budget.admit(asConn(a), 100)).toBe(false)
    budget.endPass()
    expect(a.closeRequest).toEqual({ code: 1013, reason: "outbound budget exceeded", flush: false })
    expect(b.closeRequest).toBeUndefined()
    // A socket that has drained resumes.
    b.ws.bufferedAmount = 0
    budget.count(asConn(b))
    expect(b.budgetConflatedAt).toBe(0)
  })

  it("watches every conflated connection at once, so the next round of closes needs no new grace", () => {
    const { stats, clock, budget, elapse } = setup(1000)
    const stalled = fake("stalled", 600)
    // Never written since it was refused: its socket is empty, and it will not answer the ping.
    const silent = fake("silent", 0, 300)
    budget.count(asConn(stalled))
    budget.count(asConn(silent))
    budget.endPass()
    const refuseBoth = () => {
      expect(budget.admit(asConn(stalled), 200)).toBe(false)
      expect(budget.admit(asConn(silent), 300)).toBe(false)
    }
    refuseBoth()
    budget.endPass()
    refuseBoth()
    budget.endPass()
    // Both watched from here; neither drains nor answers during the grace.
    expect(silent.pings).toEqual(["quotecast-budget"])
    expect(stalled.pings).toEqual([])
    elapse(PROBE_GRACE_MS)
    refuseBoth()
    budget.endPass()
    // Closing the stalled one, the worst, covers the excess: the other is kept for now.
    expect(stalled.closeRequest?.code).toBe(1013)
    expect(silent.closeRequest).toBeUndefined()
    stalled.ws.readyState = WebSocket.CLOSED
    budget.endPass()
    // Over again a moment later: the silent one has already shown it does not read.
    clock.now += 30
    expect(budget.admit(asConn(silent), 900)).toBe(false)
    budget.endPass()
    expect(silent.closeRequest?.code).toBe(1013)
    expect(stats.outboundBudgetCloses).toBe(2)
  })

  it("keeps a reader whose socket holds bytes but drains, and closes one beside it that drains nothing", () => {
    const { stats, clock, budget } = setup(1000)
    // Under a storm a reader's socket may hold the rest of a large frame at a pass's end.
    const reader = fake("reader", 900)
    const stalled = fake("stalled", 600)
    budget.count(asConn(reader))
    budget.count(asConn(stalled))
    budget.endPass()
    for (let step = 0; step < 8; step++) {
      // The reader reads a little between passes; the stalled one nothing.
      reader.ws.bufferedAmount -= 50
      clock.now += PROBE_GRACE_MS / 2
      budget.endPass()
    }
    expect(reader.closeRequest).toBeUndefined()
    expect(stalled.closeRequest?.code).toBe(1013)
    expect(stats.outboundBudgetCloses).toBe(1)
    expect(stats.outboundBudgetProbes).toBe(0)
  })

  it("keeps a connection refused with an empty socket that answers the budget's ping, and closes one that does not", () => {
    const { stats, clock, budget, elapse } = setup(1000)
    // Both hold only their outbox (their sockets took everything written); the reader holds more.
    const reader = fake("reader", 0, 500)
    const silent = fake("silent", 0, 300)
    const refuseBoth = () => {
      expect(budget.admit(asConn(reader), 250)).toBe(false)
      expect(budget.admit(asConn(silent), 250)).toBe(false)
    }
    budget.count(asConn(reader))
    budget.count(asConn(silent))
    budget.endPass()
    // Refused in one pass, conflated; refused again in the next, they are the ones to act on.
    refuseBoth()
    budget.endPass()
    expect(reader.pings).toEqual([])
    refuseBoth()
    budget.endPass()
    // Over the budget, but an empty socket proves nothing: each is asked, nobody is closed.
    expect(reader.pings).toEqual(["quotecast-budget"])
    expect(silent.pings).toEqual(["quotecast-budget"])
    expect(stats.outboundBudgetProbes).toBe(2)
    expect(stats.outboundBudgetCloses).toBe(0)
    pong(reader)
    // The reader answered: its frames go again (see below). Within the grace, the silent one is
    // not closed, and not asked twice.
    const refuseSilent = () => {
      expect(budget.admit(asConn(reader), 250)).toBe(true)
      expect(budget.admit(asConn(silent), 250)).toBe(false)
    }
    elapse(PROBE_GRACE_MS - 1)
    refuseSilent()
    budget.endPass()
    expect(stats.outboundBudgetCloses).toBe(0)
    expect(stats.outboundBudgetProbes).toBe(2)
    // Past it: the one that did not answer is closed; the reader, larger, is kept.
    clock.now += 1
    refuseSilent()
    budget.endPass()
    expect(silent.closeRequest?.code).toBe(1013)
    expect(reader.closeRequest).toBeUndefined()
    expect(stats.outboundBudgetCloses).toBe(1)
  })

  it("writes to a connection that answered its ping whenever its socket is empty, room or not; behind, it needs room again", () => {
    const { stats, clock, budget } = setup(1000)
    const stalled = fake("stalled", 1200)
    const reader = fake("reader", 0, 300)
    budget.count(asConn(stalled))
    budget.count(asConn(reader))
    budget.endPass()
    expect(budget.admit(asConn(reader), 300)).toBe(false)
    budget.endPass()
    expect(budget.admit(asConn(reader), 300)).toBe(false)
    budget.endPass()
    expect(reader.pings).toEqual(["quotecast-budget"])
    pong(reader)
    // The budget is still full of the stalled one's bytes (not yet shown not to read), yet the
    // reader's frames go, pass after pass, while its socket takes them.
    for (let pass = 0; pass < 5; pass++) {
      reader.outbox.bytes = 300
      expect(budget.admit(asConn(reader), 300)).toBe(true)
      reader.outbox.bytes = 0
      budget.count(asConn(reader))
      clock.now += 30
      budget.endPass()
    }
    expect(reader.budgetConflatedAt).toBe(0)
    // It stops reading: its socket holds bytes, and the next frame needs room it does not find.
    reader.ws.bufferedAmount = 500
    expect(budget.admit(asConn(reader), 300)).toBe(false)
    expect(reader.closeRequest).toBeUndefined()
    expect(stats.outboundBudgetCloses).toBe(0)
  })

  it("closes nobody before PROBE_MIN_PASSES passes have ended, however long those passes took", () => {
    const { stats, clock, budget } = setup(1000)
    const silent = pingedOnce(budget)
    // One pass of many graces: a pong sent meanwhile could not have been read yet.
    clock.now += 10 * PROBE_GRACE_MS
    budget.endPass()
    expect(silent.closeRequest).toBeUndefined()
    for (let i = 1; i < PROBE_MIN_PASSES; i++) budget.endPass()
    expect(silent.closeRequest?.code).toBe(1013)
    expect(stats.outboundBudgetCloses).toBe(1)
  })

  it("does not take the heartbeat's pong, which answers an earlier ping, for an answer to its own", () => {
    const { stats, budget, elapse } = setup(1000)
    const silent = pingedOnce(budget)
    answered(asConn(silent), Buffer.alloc(0))
    elapse(PROBE_GRACE_MS)
    budget.endPass()
    expect(silent.closeRequest?.code).toBe(1013)
    expect(stats.outboundBudgetCloses).toBe(1)
  })
})
