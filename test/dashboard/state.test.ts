/**
 * The dashboard's state rules, in Node (no browser): where each message goes, what a failed
 * checksum does, and which subscriptions a change of the shown order book needs.
 */
import { describe, expect, it } from "@effect/vitest"
import { applyBook, applyPrice, makeState, select, stockTargets } from "../../dashboard/state.js"
import { orderbookChecksum } from "../../src/market/checksum.js"
import type { OrderbookUpdate, PriceUpdate } from "../../src/protocol/server.js"

const WATCHLIST = ["005930", "000660"]
const timestamp = "2026-01-05T00:00:00.000Z"

const price = (code: string, value: number): PriceUpdate => ({
  type: "price_update",
  code,
  name: code,
  price: value,
  change: 100,
  change_percent: 0.5,
  volume: 1000,
  timestamp,
})

const book = (code: string, checksumOffset = 0): OrderbookUpdate => {
  const asks = [{ price: 73100, quantity: 500 }]
  const bids = [{ price: 73000, quantity: 800 }]
  return {
    type: "orderbook_update",
    code,
    asks,
    bids,
    checksum: orderbookChecksum(bids, asks) + checksumOffset,
    timestamp,
  }
}

describe("dashboard state", () => {
  it("starts on the first watchlist stock with everything to draw", () => {
    const s = makeState(WATCHLIST)
    expect(s.selected).toBe("005930")
    expect(s.dirty).toMatchObject({ book: true, markets: true, selection: true })
    expect(stockTargets(s)).toEqual(WATCHLIST)
  })

  it("sends an index's price to the market cards and a stock's to its row and the shown book", () => {
    const s = makeState(WATCHLIST)
    s.dirty.book = false
    s.dirty.markets = false
    applyPrice(s, price("KOSPI", 2650.5))
    expect(s.indexQuotes.get("KOSPI")?.price).toBe(2650.5)
    expect(s.quotes.has("KOSPI")).toBe(false)
    expect(s.dirty.markets).toBe(true)

    applyPrice(s, price("000660", 145000))
    expect([...s.dirty.quotes]).toEqual(["000660"])
    expect(s.dirty.book).toBe(false) // not the shown stock
    applyPrice(s, price("005930", 73000))
    expect(s.dirty.book).toBe(true)
  })

  it("counts a book that passes its checksum as verified and keeps one that fails, marked", () => {
    const s = makeState(WATCHLIST)
    expect(applyBook(s, book("005930")).ok).toBe(true)
    const bad = applyBook(s, book("000660", 1))
    expect(bad.ok).toBe(false)
    expect(bad.computed).toBe(bad.book.checksum - 1)
    expect(s.books.get("000660")?.ok).toBe(false)
    expect(s.stats).toMatchObject({ booksVerified: 1, checksumMismatches: 1 })
  })

  it("subscribes to one off-watchlist stock at a time, the one shown, and drops it on return", () => {
    const s = makeState(WATCHLIST)
    expect(select(s, "005930")).toBeUndefined() // already shown: nothing to do

    expect(select(s, "000660")).toEqual({ subscribe: undefined, unsubscribe: undefined })
    expect(s.selected).toBe("000660")

    expect(select(s, "035720")).toEqual({ subscribe: "035720", unsubscribe: undefined })
    expect(stockTargets(s)).toEqual([...WATCHLIST, "035720"])
    expect(select(s, "068270")).toEqual({ subscribe: "068270", unsubscribe: "035720" })
    expect(s.extra).toBe("068270")

    applyPrice(s, price("068270", 180000))
    applyBook(s, book("068270"))
    expect(select(s, "005930")).toEqual({ subscribe: undefined, unsubscribe: "068270" })
    expect(s.extra).toBeUndefined()
    expect(s.quotes.has("068270")).toBe(false)
    expect(s.books.has("068270")).toBe(false)
    expect(stockTargets(s)).toEqual(WATCHLIST)
    expect(s.dirty).toMatchObject({ book: true, selection: true })
  })
})
