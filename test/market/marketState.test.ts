import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { MarketPipeline } from "../../src/pipeline/MarketPipeline.js"
import { MarketState, MarketStateSyncLive, makeMarketState } from "../../src/pipeline/MarketState.js"
import { makeRecordingPipeline, marketLayers, shippedUniverse } from "./support.js"

describe("MarketState", () => {
  it("starts every stock and index at its reference close", () => {
    const u = shippedUniverse()
    const s = makeMarketState(u)
    expect(s.stocks.length).toBe(u.instruments.length)
    expect(s.get("005930")).toMatchObject({
      prevClose: 73_000,
      last: 73_000,
      volume: 0,
      kind: "stock",
      sector: "IT",
    })
    expect(s.get("KOSPI")).toMatchObject({ prevClose: 2600, last: 2600, kind: "index", market: "KOSPI" })
    expect(s.stocksOf("KOSDAQ").every((q) => q.market === "KOSDAQ")).toBe(true)
    expect(s.get("999999")).toBeUndefined()
  })

  it("rolls a market's session over", () => {
    const s = makeMarketState(shippedUniverse())
    s.recordTrade("005930", 75_000, 500, 1)
    s.recordTrade("247540", 181_000, 500, 1)
    s.rollover("KOSPI")
    expect(s.get("005930")).toMatchObject({ prevClose: 75_000, volume: 0 })
    expect(s.get("247540")).toMatchObject({ prevClose: 180_000, volume: 500 })
  })

  it.scoped("follows events published through the pipeline", () => {
    const pipeline = makeRecordingPipeline()
    const layer = MarketStateSyncLive.pipe(Layer.provideMerge(Layer.merge(marketLayers(), pipeline.layer)))
    return Effect.gen(function* () {
      const state = yield* MarketState
      yield* (yield* MarketPipeline).publish([
        {
          type: "price_update",
          code: "005930",
          name: "Samsung Electronics",
          price: 73_500,
          change: 500,
          change_percent: 0.68,
          volume: 42,
          timestamp: "2026-11-24T01:00:00.000Z",
        },
        {
          type: "orderbook_update",
          code: "005930",
          bids: [{ price: 73_400, quantity: 5 }],
          asks: [{ price: 73_500, quantity: 6 }],
          checksum: 1,
          timestamp: "2026-11-24T01:00:00.000Z",
        },
      ])
      expect(state.get("005930")).toMatchObject({
        last: 73_500,
        volume: 42,
        bids: [{ price: 73_400, quantity: 5 }],
        updatedAt: Date.parse("2026-11-24T01:00:00.000Z"),
      })
    }).pipe(Effect.provide(layer))
  })
})
