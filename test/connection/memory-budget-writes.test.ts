/**
 * OUTBOUND_BUDGET_BYTES is enforced where frames are handed to the sockets, not only once a flush
 * pass has written everyone: readers that stopped reading cannot take the total past the budget
 * by more than what the kernel did not take of one frame each, even though the closes the budget
 * asks for take effect only when the connection's actor runs (here none does: only the sockets
 * the budget destroys itself free their bytes). A reader that keeps up gets a frame every
 * pass (its frames are small: a large one needs room in the budget too). Real sockets on loopback; the passes are driven by hand.
 */
import type { AddressInfo } from "node:net"
import type { Duplex } from "node:stream"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket, { WebSocketServer } from "ws"
import { makeMemoryBroker } from "../../src/broker/Broker.js"
import { Conn } from "../../src/connection/Conn.js"
import { makeFlusher } from "../../src/connection/Flusher.js"
import { Outbox } from "../../src/connection/Outbox.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { openBody } from "../../src/protocol/encode.js"

const STALLED = 16
const FRAME = 256 * 1024
const BUDGET = 4 * 1024 * 1024
const PASSES = 80
const PAD = "x".repeat(FRAME)

let wss: WebSocketServer
const servers: Array<WebSocket> = []
const clients: Array<WebSocket> = []
let healthyFrames = 0

beforeAll(async () => {
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()))
  const port = (wss.address() as AddressInfo).port
  wss.on("connection", (ws) => servers.push(ws))
  for (let i = 0; i <= STALLED; i++) {
    const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    await new Promise<void>((resolve) => client.once("open", () => resolve()))
    // The last one reads; the others stop reading for good.
    if (i === STALLED) client.on("message", () => healthyFrames++)
    else (client as unknown as { _socket: Duplex })._socket.pause()
    clients.push(client)
  }
  while (servers.length <= STALLED) await new Promise((r) => setTimeout(r, 5))
})

afterAll(() => {
  for (const c of clients) c.terminate()
  wss.close()
})

describe("the outbound budget at the point of writing", () => {
  it("keeps the total near the budget while closes wait for their actors, and the reader that keeps up gets every pass", async () => {
    const stats = new GatewayStatsImpl()
    const flusher = makeFlusher(
      {
        batching: true,
        // Out of reach: only the total budget acts.
        sendBufferLimitBytes: 1e9,
        slowConsumerTimeoutMs: 1e9,
        outboundBudgetBytes: BUDGET,
        outboundFreeWriteBytes: 16_384,
        flushSliceMs: 0,
        // Out of reach: the bound on large frames per pass has its own spec (largeFrames.test.ts).
        flushLargeFramesMs: 1e9,
      },
      stats,
    )
    const conns = servers.map(
      (ws, i) =>
        new Conn(`c${i}`, ws, new Outbox(), flusher.scheduler, makeMemoryBroker(), 0, {
          id: `s${i}`,
          userId: null,
          lastSequence: 0,
        }),
    )
    const healthy = conns[STALLED] as Conn
    let highest = 0
    for (let pass = 0; pass < PASSES; pass++) {
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
    expect(healthyFrames).toBe(PASSES)
    expect(healthy.budgetConflatedAt).toBe(0)
  }, 120_000)
})
