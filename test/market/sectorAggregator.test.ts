import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { computeSectorUpdate, SectorAggregatorLive } from "../../src/feed/SectorAggregator.js"
import { SECTORS } from "../../src/market/types.js"
import { MarketPipeline } from "../../src/pipeline/MarketPipeline.js"
import { MarketState } from "../../src/pipeline/MarketState.js"
import { makeRecordingPipeline, marketLayers, ofType } from "./support.js"

describe("computeSectorUpdate", () => {
  it("matches a hand computation", () => {
    const members = [
      { code: "000001", prevClose: 10_000, last: 10_500, volume: 100 }, // +5.00%
      { code: "000002", prevClose: 20_000, last: 19_000, volume: 250 }, // -5.00%
      { code: "000003", prevClose: 50_000, last: 50_000, volume: 0 }, //  0
      { code: "000004", prevClose: 3_000, last: 3_100, volume: 1_000 }, // +3.333...%
      { code: "000005", prevClose: 7_000, last: 6_990, volume: 5 }, // -0.142857...%
      { code: "000006", prevClose: 1_000, last: 1_001, volume: 7 }, // +0.1%
      { code: "000007", prevClose: 100_000, last: 101_000, volume: 3 }, // +1%
    ]
    // mean = (5 - 5 + 0 + 3.333333 - 0.142857 + 0.1 + 1) / 7 = 4.290476 / 7 = 0.612925 -> 0.61
    expect(computeSectorUpdate("IT", members, "2026-11-24T01:00:00.000Z")).toEqual({
      type: "sector_update",
      sector: "IT",
      change_percent: 0.61,
      advancers: 4,
      decliners: 2,
      unchanged: 1,
      volume: 1_365,
      top_movers: [
        // |5| ties: code ascending
        { code: "000001", change_percent: 5 },
        { code: "000002", change_percent: -5 },
        { code: "000004", change_percent: 3.33 },
        { code: "000007", change_percent: 1 },
        { code: "000005", change_percent: -0.14 },
      ],
      timestamp: "2026-11-24T01:00:00.000Z",
    })
  })

  it("reports an all-unchanged sector with no movers", () => {
    const u = computeSectorUpdate(
      "TELECOM",
      [{ code: "017670", prevClose: 52_000, last: 52_000, volume: 0 }],
      "t",
    )
    expect(u).toMatchObject({ change_percent: 0, advancers: 0, decliners: 0, unchanged: 1, top_movers: [] })
  })
})

describe("SectorAggregatorLive", () => {
  it.scoped("publishes every sector at start, then only changed sectors, at most once per second", () => {
    const pipeline = makeRecordingPipeline()
    const layer = SectorAggregatorLive.pipe(Layer.provideMerge(Layer.merge(marketLayers(), pipeline.layer)))
    return Effect.gen(function* () {
      const state = yield* MarketState
      const publish = (yield* MarketPipeline).publish
      const initial = ofType(pipeline.published, "sector_update")
      expect(initial.map((u) => u.sector).sort()).toEqual([...SECTORS].sort())
      expect(initial.every((u) => u.change_percent === 0 && u.advancers === 0)).toBe(true)

      const trade = (code: string, price: number, volume: number) =>
        Effect.suspend(() => {
          state.recordTrade(code, price, volume, 0)
          const q = state.get(code)!
          return publish([
            {
              type: "price_update",
              code,
              name: q.name,
              price,
              change: price - q.prevClose,
              change_percent: 0,
              volume,
              timestamp: "2026-11-24T01:00:00.000Z",
            },
          ])
        })
      const n0 = pipeline.published.length
      yield* trade("005930", 74_000, 10) // IT
      yield* trade("000660", 146_000, 20) // IT
      yield* trade("105560", 77_000, 30) // FINANCE
      yield* TestClock.adjust("500 millis")
      expect(ofType(pipeline.published.slice(n0), "sector_update")).toEqual([])
      yield* TestClock.adjust("500 millis")
      const first = ofType(pipeline.published.slice(n0), "sector_update")
      expect(first.map((u) => u.sector).sort()).toEqual(["FINANCE", "IT"])
      const it = first.find((u) => u.sector === "IT")!
      expect(it.advancers).toBe(2)
      expect(it.volume).toBe(30)
      expect(it.top_movers.map((m) => m.code)).toEqual(["005930", "000660"])

      // Many trades within one second still give one update per sector.
      const n1 = pipeline.published.length
      for (let k = 0; k < 5; k++) yield* trade("005930", 74_000 + 100 * k, 100 + k)
      yield* TestClock.adjust("1 second")
      expect(ofType(pipeline.published.slice(n1), "sector_update").map((u) => u.sector)).toEqual(["IT"])
      // Nothing changed: nothing published.
      const n2 = pipeline.published.length
      yield* TestClock.adjust("3 seconds")
      expect(pipeline.published.length).toBe(n2)
    }).pipe(Effect.provide(layer))
  })
})
