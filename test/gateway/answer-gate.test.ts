/**
 * docs/protocol.md "Slow readers and conflation": while what connections are owed is over half of
 * OUTBOUND_BUDGET_BYTES, a `subscribe`'s answer and snapshots wait for room, and the server pings
 * the connection. A client that answers the ping (browsers and `ws` do so by themselves) is
 * answered at once; one that does not is answered when room returns: here, once the budget has
 * closed the client that stopped reading and held the room. Over real sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import { INSTRUMENT_ROWS } from "../../src/market/data/instruments.js"
import {
  connect,
  connectionGone,
  connectionsOf,
  ingest,
  isType,
  metricValue,
  priceEvent,
  type TestClient,
  useGateway,
  waitFor,
} from "../support/gateway.js"

const ROWS = INSTRUMENT_ROWS.slice(0, 100)
const STOCKS = ROWS.map((r) => r[0])

/** Less than the snapshots of 100 stocks with a price each (about 20 KB). */
const BUDGET = 16 * 1024

const gw = useGateway({
  outboundBudgetBytes: BUDGET,
  heartbeatIntervalMs: 600_000,
  sendBufferLimitBytes: 64 * 1024 * 1024,
  slowConsumerTimeoutMs: 600_000,
})

const metric = (name: string) => metricValue(gw, name)

const subscribeTwo = (client: TestClient) =>
  client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })

describe("a subscribe while the outbound budget is more than half used", () => {
  it("waits for room unless its connection answers the ping; it is answered once room returns", async () => {
    const delayedBefore = await metric("quotecast_outbound_budget_answers_delayed_total")
    expect(
      (
        await ingest(
          gw,
          ROWS.map(([code, , , , , close]) => priceEvent(code, close)),
        )
      ).status,
    ).toBe(202)
    // One client that stops reading holds the room: its snapshots wait, refused by the budget.
    const stuck = await connect(gw)
    ;(stuck.client.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
    stuck.client.send({ type: "subscribe", subscription_type: "stock", targets: STOCKS })
    await waitFor(
      async () => (await metric("quotecast_outbound_budget_used_bytes")) > BUDGET / 2,
      5000,
      "the stuck client's snapshots to be owed",
    )
    const silent = await connect(gw, "", { autoPong: false })
    const reader = await connect(gw)
    subscribeTwo(silent.client)
    subscribeTwo(reader.client)
    // The reader answered the ping by itself and was answered while the room was still held.
    await reader.client.nextOfType("subscribed")
    const open = new Set((await connectionsOf(gw)).map((c) => c.connection_id))
    expect(open.has(stuck.connected.connection_id)).toBe(true)
    expect(silent.client.messages.some(isType("subscribed"))).toBe(false)
    // The client that did not answer waits until the budget closed the one holding the room.
    await silent.client.nextOfType("subscribed", 10_000)
    await connectionGone(gw, stuck.connected.connection_id)
    expect(await metric("quotecast_outbound_budget_answers_delayed_total")).toBe(delayedBefore + 2)
    await reader.client.close()
    await silent.client.close()
  })
})
