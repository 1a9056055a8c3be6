/**
 * Issue 14's ticker fields and trading state end to end: published through POST /v1/ingest,
 * received over a real WebSocket by a `stock` subscriber, live and in its snapshot.
 */
import { describe, expect, it } from "@effect/vitest"
import { connect, ingest, ofType, useGateway } from "../support/gateway.js"

const gw = useGateway({ feed: "none" })

describe("ticker fields and instrument_status over the wire", () => {
  it("delivers the day's figures on price_update, derived by the server", async () => {
    expect(
      (
        await ingest(gw, [
          {
            type: "orderbook_update",
            code: "000660",
            bids: [{ price: 145_900, quantity: 5 }],
            asks: [{ price: 146_000, quantity: 7 }],
          },
          { type: "price_update", code: "000660", price: 146_000, volume: 10 },
        ])
      ).status,
    ).toBe(202)
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["000660"] })
    await client.nextOfType("subscribed")
    const snapshot = ofType(await client.settle(), "price_update")[0]
    expect(snapshot).toMatchObject({
      snapshot: true,
      open: 146_000,
      high: 146_000,
      low: 146_000,
      value: 1_460_000,
    })
    expect(
      (await ingest(gw, [{ type: "price_update", code: "000660", price: 144_500, volume: 30 }])).status,
    ).toBe(202)
    const live = await client.nextOfType("price_update")
    expect(live).toMatchObject({
      price: 144_500,
      open: 146_000,
      high: 146_000,
      low: 144_500,
      prev_close: 145_000,
      value: 1_460_000 + 144_500 * 20,
      bid: 145_900,
      ask: 146_000,
    })
    await client.close()
  })

  it("delivers a stock's trading state live, never conflated, and in the stock's snapshot", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["035420"] })
    await client.nextOfType("subscribed")
    await client.settle()
    const vi = {
      type: "instrument_status",
      code: "035420",
      status: "vi",
      vi_type: "static",
      reference_price: 190_000,
      expected_end: "2026-12-07T01:02:00Z",
      reason: "static VI",
    }
    expect(
      (await ingest(gw, [vi, { type: "instrument_status", code: "035420", status: "halted" }])).status,
    ).toBe(202)
    // Both arrive (statuses are never conflated), in order.
    expect(await client.nextOfType("instrument_status")).toMatchObject({
      status: "vi",
      vi_type: "static",
      expected_end: "2026-12-07T01:02:00.000Z",
    })
    expect(await client.nextOfType("instrument_status")).toMatchObject({
      status: "halted",
      reason: "set by ingest",
    })
    await client.close()
    const late = await connect(gw)
    late.client.send({ type: "subscribe", subscription_type: "stock", targets: ["035420"] })
    await late.client.nextOfType("subscribed")
    const snaps = ofType(await late.client.settle(), "instrument_status")
    expect(snaps).toEqual([expect.objectContaining({ snapshot: true, code: "035420", status: "halted" })])
    await late.client.close()
  })
})
