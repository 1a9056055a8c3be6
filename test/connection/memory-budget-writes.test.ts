/**
 * OUTBOUND_BUDGET_BYTES is enforced where frames are handed to the sockets, not only once a flush
 * pass has written everyone: readers that stopped reading cannot take the total past the budget
 * by more than what the kernel did not take of one frame each, even though the closes the budget
 * asks for take effect only when the connection's actor runs (here none does: only the sockets
 * the budget destroys itself free their bytes). A reader that keeps up gets a frame every
 * pass (its frames are small: a large one needs room in the budget too). Real sockets on loopback; the passes are driven by hand.
 */
import type { Duplex } from "node:stream"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Conn } from "../../src/connection/Conn.js"
import { makeFlusher } from "../../src/connection/Flusher.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { openBody } from "../../src/protocol/encode.js"
import { connsOver, flushOptions, type Loopback, openLoopback } from "../support/loopback.js"

const STALLED = 16
const FRAME = 256 * 1024
const BUDGET = 4 * 1024 * 1024
const PASSES = 80
const PAD = "x".repeat(FRAME)

let loopback: Loopback
let healthyFrames = 0

beforeAll(async () => {
  loopback = await openLoopback(STALLED + 1, (client, i) => {
    // The last one reads; the others stop reading for good.
    if (i === STALLED) client.on("message", () => healthyFrames++)
    else (client as unknown as { _socket: Duplex })._socket.pause()
  })
})

afterAll(() => loopback.close())

describe("the outbound budget at the point of writing", () => {
  it("keeps the total near the budget while closes wait for their actors, and the reader that keeps up gets every pass", async () => {
    const stats = new GatewayStatsImpl()
    // Out of reach but the total budget: only it acts.
    const flusher = makeFlusher(flushOptions({ outboundBudgetBytes: BUDGET }), stats)
    const conns = connsOver(loopback.servers, flusher.scheduler)
    const healthy = conns[STALLED] as Conn
    let highest = 0
    // At least PASSES passes, and on until the budget has closed someone: a close needs
    // PROBE_GRACE_MS of not reading, which PASSES quick passes on an idle machine do not span.
    const until = Date.now() + 60_000
    let pass = 0
    for (; pass < PASSES || (stats.outboundBudgetCloses === 0 && Date.now() < until); pass++) {
      // One state message per connection and pass (it conflates while the connection is refused).
      // Large for the readers that stopped, a few hundred bytes for the one that keeps up.
      for (const [i, c] of conns.entries())
        c.deliver({
          key: `k${i}`,
          body: openBody({ type: "price_update", i, pass, pad: c === healthy ? "" : PAD }),
        })
      await Effect.runPromise(flusher.flushAll)
      highest = Math.max(highest, stats.outboundBytes)
      // The sockets write what the kernel takes; the reader reads its frame.
      for (let k = 0; k < 500 && (healthy.ws.bufferedAmount > 0 || healthyFrames < pass + 1); k++)
        await new Promise((r) => setTimeout(r, 2))
    }
    expect(stats.outboundBudgetCloses).toBeGreaterThan(0)
    // Pending closes hold their bytes, and they count: the others are refused meanwhile. Slack:
    // the outboxes (one frame each) and what the kernel did not take of one frame each.
    expect(highest).toBeLessThan(BUDGET + 2 * STALLED * FRAME)
    expect(healthyFrames).toBe(pass)
    expect(healthy.budgetConflatedAt).toBe(0)
  }, 120_000)
})
