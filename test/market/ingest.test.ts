import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { IngestContext } from "../../src/feed/ingest/context.js"
import { validateIngest, validateIngestEvent } from "../../src/feed/ingest.js"
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
      // The first print of the day: it is the open, the high and the low; value = 74,000 x 100.
      open: 74_000,
      high: 74_000,
      low: 74_000,
      prev_close: 73_000,
      value: 7_400_000,
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
      open: 72_900,
      high: 72_900,
      low: 72_900,
      prev_close: 73_000,
      value: 364_500,
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

describe("ingest: ticker fields", () => {
  it("derives open/high/low/value from the day and bid/ask from the last book", () => {
    const c = ctx()
    c.state.recordBook("005930", lv([[73_900, 10]]), lv([[74_000, 10]]), 0)
    const { accepted } = validateIngest(
      [
        { type: "price_update", code: "005930", price: 74_000, volume: 10 },
        { type: "price_update", code: "005930", price: 75_000, volume: 12 },
        { type: "price_update", code: "005930", price: 73_500, volume: 15 },
      ],
      c.universe,
      c.state,
      NOW,
    )
    // Each event of the request sees the day as the earlier ones leave it.
    expect(accepted.map((e) => (e.type === "price_update" ? [e.open, e.high, e.low, e.value] : []))).toEqual([
      [74_000, 74_000, 74_000, 740_000],
      [74_000, 75_000, 74_000, 740_000 + 150_000],
      [74_000, 75_000, 73_500, 740_000 + 150_000 + 220_500],
    ])
    expect(accepted[2]).toMatchObject({ prev_close: 73_000, bid: 73_900, ask: 74_000 })
    c.state.applyAll(accepted)
    expect(c.state.get("005930")).toMatchObject({ open: 74_000, high: 75_000, low: 73_500, value: 1_110_500 })
  })

  it("accepts supplied figures that agree with the day and rejects those that do not", () => {
    const c = ctx()
    c.state.recordTrade("005930", 74_000, 10, 0)
    c.state.recordTrade("005930", 72_000, 20, 0)
    const p = (extra: object) => ({ type: "price_update", code: "005930", price: 73_000, ...extra })
    expect(
      ok(p({ open: 73_500, high: 76_000, low: 71_000, value: 5_000_000, bid: 72_900, ask: 73_000 }), c),
    ).toMatchObject({
      open: 73_500,
      high: 76_000,
      low: 71_000,
      value: 5_000_000,
      bid: 72_900,
      ask: 73_000,
    })
    expect(reason(p({ high: 73_500 }), c)).toBe("high: 73500 is below a price of the day (74000)")
    expect(reason(p({ low: 72_500 }), c)).toBe("low: 72500 is above a price of the day (72000)")
    expect(reason(p({ open: 80_000 }), c)).toBe("open: 80000 is outside the day's range 72000-74000")
    expect(reason(p({ value: 1 }), c)).toMatch(/^value: 1 is below the day's traded value so far/)
    expect(reason(p({ prev_close: 70_000 }), c)).toMatch(
      /^prev_close: 70000 differs from the previous close 73000/,
    )
    expect(reason(p({ bid: 73_000, ask: 73_000 }), c)).toMatch(
      /^bid\/ask: best bid 73000 is not below best ask/,
    )
    expect(reason(p({ high: 76_050 }), c)).toMatch(/^high: 76050 is not on the KRX tick grid/)
    expect(reason(p({ high: 96_000 }), c)).toMatch(/^high: 96000 is outside the daily limit/)
  })

  it("gives indices open/high/low and refuses a value or a book for them", () => {
    const c = ctx()
    expect(ok({ type: "price_update", code: "KOSPI", price: 2612.34 }, c)).toMatchObject({
      open: 2612.34,
      high: 2612.34,
      low: 2612.34,
      prev_close: 2600,
    })
    expect(reason({ type: "price_update", code: "KOSPI", price: 2612.34, value: 5 }, c)).toBe(
      "value: an index has no traded value",
    )
    expect(reason({ type: "price_update", code: "KOSDAQ", price: 851, bid: 850 }, c)).toBe(
      "bid: an index has no book",
    )
  })
})

describe("ingest: instrument_status", () => {
  it("sets a stock halted or trading, with a default reason", () => {
    expect(ok({ type: "instrument_status", code: "005930", status: "halted" })).toEqual({
      type: "instrument_status",
      code: "005930",
      status: "halted",
      reason: "set by ingest",
      timestamp: "2026-11-24T01:02:03.456Z",
    })
    expect(
      ok({ type: "instrument_status", code: "005930", status: "trading", reason: "resumed" }),
    ).toMatchObject({
      status: "trading",
      reason: "resumed",
    })
  })

  it("needs vi_type, reference_price and expected_end for a vi, and only for a vi", () => {
    expect(
      ok({
        type: "instrument_status",
        code: "247540",
        status: "vi",
        vi_type: "dynamic",
        reference_price: 180_000,
        expected_end: "2026-11-24T01:04:03Z",
        reason: "dynamic VI",
      }),
    ).toMatchObject({
      vi_type: "dynamic",
      reference_price: 180_000,
      expected_end: "2026-11-24T01:04:03.000Z",
    })
    expect(reason({ type: "instrument_status", code: "005930", status: "vi", vi_type: "static" })).toBe(
      "status vi needs reference_price, expected_end",
    )
    expect(
      reason({ type: "instrument_status", code: "005930", status: "halted", vi_type: "static" }),
    ).toMatch(/only a status vi carries them/)
    expect(
      reason({
        type: "instrument_status",
        code: "005930",
        status: "vi",
        vi_type: "static",
        reference_price: 73_000,
        expected_end: "soon",
      }),
    ).toBe('expected_end: "soon" is not an ISO 8601 date')
    expect(reason({ type: "instrument_status", code: "KOSPI", status: "halted" })).toMatch(/is an index/)
    expect(reason({ type: "instrument_status", code: "005930", status: "paused" })).toMatch(/^status: /)
  })
})
