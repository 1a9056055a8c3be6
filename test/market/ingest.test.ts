import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { type IngestContext, validateIngest, validateIngestEvent } from "../../src/feed/ingest.js"
import { orderbookChecksum } from "../../src/market/checksum.js"
import { makeMarketState } from "../../src/pipeline/MarketState.js"
import { shippedUniverse } from "./support.js"

const NOW = Date.parse("2026-11-24T01:02:03.456Z")
const ctx = (): IngestContext => {
  const universe = shippedUniverse()
  return { universe, state: makeMarketState(universe), now: NOW }
}

const ok = (raw: unknown, c: IngestContext = ctx()) => {
  const r = validateIngestEvent(raw, c)
  if (Either.isLeft(r)) throw new Error(`expected acceptance, got: ${r.left}`)
  return r.right
}
const reason = (raw: unknown, c: IngestContext = ctx()) => {
  const r = validateIngestEvent(raw, c)
  if (Either.isRight(r)) throw new Error(`expected rejection, got: ${JSON.stringify(r.right)}`)
  return r.left
}

const lv = (levels: ReadonlyArray<readonly [number, number]>) =>
  levels.map(([price, quantity]) => ({ price, quantity }))

describe("ingest: price_update", () => {
  it("derives change, change_percent, name and timestamp", () => {
    expect(ok({ type: "price_update", code: "005930", price: 74_000, volume: 100 })).toEqual({
      type: "price_update",
      code: "005930",
      name: "Samsung Electronics",
      price: 74_000,
      change: 1000,
      change_percent: 1.37,
      volume: 100,
      timestamp: "2026-11-24T01:02:03.456Z",
    })
  })

  it("keeps supplied fields, normalises the timestamp, ignores extra fields", () => {
    const e = ok({
      type: "price_update",
      code: "005930",
      name: "SEC",
      price: 72_900,
      change: -100,
      change_percent: -0.14,
      volume: 5,
      timestamp: "2025-11-11T09:30:00Z",
      sequence: 99,
    })
    expect(e).toEqual({
      type: "price_update",
      code: "005930",
      name: "SEC",
      price: 72_900,
      change: -100,
      change_percent: -0.14,
      volume: 5,
      timestamp: "2025-11-11T09:30:00.000Z",
    })
  })

  it("keeps the current cumulative volume when volume is absent", () => {
    const c = ctx()
    c.state.recordTrade("005930", 73_100, 777, 0)
    expect(ok({ type: "price_update", code: "005930", price: 73_200 }, c)).toMatchObject({ volume: 777 })
  })

  it("accepts index levels off the stock grid", () => {
    expect(ok({ type: "price_update", code: "KOSPI", price: 2612.34 })).toMatchObject({
      name: "KOSPI Composite Index",
      change: 12.34,
      change_percent: 0.47,
    })
  })

  it("rejects unknown codes, off-grid prices and prices outside the daily limit", () => {
    expect(reason({ type: "price_update", code: "123456", price: 1000 })).toMatch(/unknown code "123456"/)
    expect(reason({ type: "price_update", code: "005930", price: 73_050 })).toMatch(
      /tick grid \(tick 100 KRW\)/,
    )
    // 73,000 ± 30%: 51,100 .. 94,900
    expect(ok({ type: "price_update", code: "005930", price: 94_900 })).toMatchObject({ change_percent: 30 })
    expect(reason({ type: "price_update", code: "005930", price: 95_000 })).toMatch(/daily limit 51100-94900/)
    expect(reason({ type: "price_update", code: "005930", price: 51_000 })).toMatch(/daily limit/)
    expect(reason({ type: "price_update", code: "KOSDAQ", price: 1_200 })).toMatch(/more than 30%/)
  })

  it("rejects wrong shapes with the offending field", () => {
    expect(reason({ type: "price_update", code: "005930", price: "73000" })).toMatch(/^price: /)
    expect(reason({ type: "price_update", code: "005930", price: -5 })).toMatch(/^price: /)
    expect(reason({ type: "price_update", price: 73_000 })).toMatch(/^code: /)
    expect(reason({ type: "price_update", code: "005930", price: 73_000, volume: 1.5 })).toMatch(/^volume: /)
    expect(reason({ type: "price_update", code: "005930", price: 73_000, timestamp: "yesterday" })).toMatch(
      /^timestamp: /,
    )
  })
})

describe("ingest: orderbook_update", () => {
  const bids = lv([
    [72_900, 1000],
    [72_800, 1500],
  ])
  const asks = lv([
    [73_000, 800],
    [73_100, 1200],
  ])

  it("computes the checksum and accepts a matching supplied one", () => {
    const e = ok({ type: "orderbook_update", code: "005930", bids, asks })
    expect(e).toEqual({
      type: "orderbook_update",
      code: "005930",
      bids,
      asks,
      checksum: 25650797,
      timestamp: "2026-11-24T01:02:03.456Z",
    })
    expect(ok({ type: "orderbook_update", code: "005930", bids, asks, checksum: 25650797 })).toEqual(e)
    expect(orderbookChecksum(bids, asks)).toBe(25650797)
  })

  it("rejects a mismatching checksum", () => {
    expect(reason({ type: "orderbook_update", code: "005930", bids, asks, checksum: 1 })).toMatch(
      /checksum: 1 does not match the book \(expected 25650797\)/,
    )
  })

  it("accepts one-sided books (e.g. at a limit)", () => {
    expect(ok({ type: "orderbook_update", code: "005930", bids: [], asks })).toMatchObject({ bids: [] })
  })

  it("rejects misordered, crossed, off-grid, out-of-limit and too deep books", () => {
    const book = (b: ReadonlyArray<readonly [number, number]>, a: ReadonlyArray<readonly [number, number]>) =>
      reason({ type: "orderbook_update", code: "005930", bids: lv(b), asks: lv(a) })
    expect(
      book(
        [
          [72_800, 1],
          [72_900, 1],
        ],
        [[73_000, 1]],
      ),
    ).toMatch(/bids: prices must be strictly descending/)
    expect(
      book(
        [[72_900, 1]],
        [
          [73_100, 1],
          [73_000, 1],
        ],
      ),
    ).toMatch(/asks: prices must be strictly ascending/)
    expect(
      book(
        [[72_900, 1]],
        [
          [73_000, 1],
          [73_000, 2],
        ],
      ),
    ).toMatch(/strictly ascending/)
    expect(book([[73_000, 1]], [[73_000, 1]])).toMatch(/crossed: best bid 73000 >= best ask 73000/)
    expect(book([[72_950, 1]], [[73_000, 1]])).toMatch(/bids\.0\.price: 72950 is not on the KRX tick grid/)
    expect(book([[72_900, 1]], [[95_000, 1]])).toMatch(/asks\.0\.price: 95000 is outside the daily limit/)
    const deep = Array.from({ length: 11 }, (_, i) => [73_000 + 100 * i, 1] as const)
    expect(book([[72_900, 1]], deep)).toMatch(/^asks: /)
    expect(reason({ type: "orderbook_update", code: "005930", bids: lv([[72_900, -1]]), asks: [] })).toMatch(
      /quantity/,
    )
  })

  it("rejects books for indices and unknown codes", () => {
    expect(reason({ type: "orderbook_update", code: "KOSPI", bids, asks })).toMatch(
      /index and has no order book/,
    )
    expect(reason({ type: "orderbook_update", code: "999999", bids, asks })).toMatch(/unknown code/)
  })
})

describe("ingest: market_status and envelope", () => {
  it("accepts statuses of known markets", () => {
    expect(ok({ type: "market_status", market: "KOSDAQ", status: "halted" })).toEqual({
      type: "market_status",
      market: "KOSDAQ",
      status: "halted",
      timestamp: "2026-11-24T01:02:03.456Z",
    })
    expect(reason({ type: "market_status", market: "NYSE", status: "open" })).toMatch(/^market: /)
    expect(reason({ type: "market_status", market: "KOSPI", status: "lunch" })).toMatch(/^status: /)
  })

  it("rejects non-objects and unknown types", () => {
    expect(reason(42)).toBe("event must be a JSON object")
    expect(reason([])).toBe("event must be a JSON object")
    expect(reason({ code: "005930" })).toMatch(/type: missing; expected one of price_update/)
    expect(reason({ type: "sector_update" })).toMatch(/type: "sector_update"/)
  })

  it("splits a batch into accepted events and indexed reasons", () => {
    const c = ctx()
    const { accepted, rejected } = validateIngest(
      [
        { type: "price_update", code: "005930", price: 74_000 },
        { type: "price_update", code: "005930", price: 74_050 },
        { type: "market_status", market: "KOSPI", status: "open" },
        "nope",
      ],
      c.universe,
      c.state,
      NOW,
    )
    expect(accepted.map((e) => e.type)).toEqual(["price_update", "market_status"])
    expect(rejected.map((r) => r.index)).toEqual([1, 3])
  })
})
