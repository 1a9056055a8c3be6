/**
 * The simulator's model as pure functions, usable on their own in property tests: book levels
 * around a mid price on the KRX tick grid, one instrument's random-walk step and trade print,
 * the messages of a tick, and an index level from its constituents (the model is described in
 * `Simulator.ts`).
 */
import { orderbookChecksum } from "../market/checksum.js"
import { priceChange, round2 } from "../market/pricing.js"
import { Prng } from "../market/prng.js"
import { dailyLimits, floorToTick, tickDown, tickUp } from "../market/tickSize.js"
import { type QuoteView } from "../pipeline/MarketState.js"
import type { Level, OrderbookUpdate, PriceUpdate } from "../protocol/server.js"

export const BOOK_DEPTH = 10
/** Seconds in a KRX regular session (09:00-15:30). */
export const SESSION_SECONDS = 6.5 * 3600

/** Shares per book level: about 2 billion KRW worth divided over the level's price. */
export const baseQuantity = (price: number): number => Math.max(1, Math.round(2_000_000_000 / price / 10))

export interface Book {
  readonly bids: ReadonlyArray<Level>
  readonly asks: ReadonlyArray<Level>
}

/**
 * A book with best bid `bid1` and best ask `ask1` (both on the grid, bid1 < ask1), levels one tick
 * apart, none outside [lower, upper].
 */
export const buildBook = (rng: Prng, bid1: number, ask1: number, lower: number, upper: number): Book => {
  const base = baseQuantity(ask1)
  const qty = (i: number) => Math.max(1, Math.round(base * (0.3 + 1.4 * rng.next()) * (1 + 0.12 * i)))
  const bids: Array<Level> = []
  // `p < ask1` keeps the book uncrossed even in a degenerate band (lower = upper, prices of a few KRW).
  for (let p = bid1, i = 0; i < BOOK_DEPTH && p >= lower && p < ask1; i++) {
    bids.push({ price: p, quantity: qty(i) })
    const next = tickDown(p)
    if (next >= p) break
    p = next
  }
  const asks: Array<Level> = []
  for (let p = ask1, i = 0; i < BOOK_DEPTH && p <= upper; i++) {
    asks.push({ price: p, quantity: qty(i) })
    p = tickUp(p)
  }
  return { bids, asks }
}

export interface InstrumentTick {
  /** New latent mid. */
  readonly mid: number
  readonly price: number
  /** Shares traded by this tick (added to the cumulative volume). */
  readonly quantity: number
  readonly book: Book
}

/** Bid/ask around a latent mid, inside the limit band. */
export const quoteAround = (
  mid: number,
  lower: number,
  upper: number,
): { readonly bid: number; readonly ask: number } => {
  let bid = Math.max(lower, floorToTick(mid))
  let ask = tickUp(bid)
  if (ask > upper) {
    // At the upper limit nothing can trade above it: the ask sits on the limit.
    ask = upper
    bid = Math.max(lower, tickDown(upper))
  }
  return { bid, ask }
}

/** One trade tick of one stock: pure given the PRNG state. */
export const stepInstrument = (
  rng: Prng,
  input: { readonly prevClose: number; readonly mid: number; readonly sigma: number },
): InstrumentTick => {
  const { lower, upper } = dailyLimits(input.prevClose)
  const mid = Math.min(upper, Math.max(lower, input.mid * Math.exp(input.sigma * rng.normal())))
  const { bid, ask } = quoteAround(mid, lower, upper)
  const pAsk = ask > bid ? Math.min(1, Math.max(0, (mid - bid) / (ask - bid))) : 0
  const price = rng.next() < pAsk ? ask : bid
  const meanQty = Math.max(1, 50_000_000 / price)
  const quantity = Math.max(1, Math.round(-Math.log(1 - rng.next()) * meanQty))
  return { mid, price, quantity, book: buildBook(rng, bid, ask, lower, upper) }
}

/**
 * The `price_update` of a print already recorded in MarketState (`recordTrade`): the quote holds
 * the day's open/high/low/value including it, and the book's touch as best bid/ask. Before the
 * day's first execution (no open yet) it is a reference price and carries no open/high/low.
 */
export const priceUpdateOf = (
  q: QuoteView,
  price: number,
  volume: number,
  timestamp: string,
): PriceUpdate => {
  const { change, change_percent } = priceChange(q.prevClose, price)
  const code = q.code
  const name = q.name
  const prev_close = q.prevClose
  // Object literals, not spreads: this runs once per simulated trade and a spread costs several times more.
  if (q.open === undefined || q.high === undefined || q.low === undefined) {
    return { type: "price_update", code, name, price, change, change_percent, volume, prev_close, timestamp }
  }
  const { open, high, low } = q
  if (q.kind === "index") {
    return {
      type: "price_update",
      code,
      name,
      price,
      change,
      change_percent,
      volume,
      open,
      high,
      low,
      prev_close,
      timestamp,
    }
  }
  const value = q.value
  const bid = q.bids[0]?.price
  const ask = q.asks[0]?.price
  if (bid === undefined || ask === undefined) {
    return {
      type: "price_update",
      code,
      name,
      price,
      change,
      change_percent,
      volume,
      open,
      high,
      low,
      prev_close,
      value,
      timestamp,
    }
  }
  return {
    type: "price_update",
    code,
    name,
    price,
    change,
    change_percent,
    volume,
    open,
    high,
    low,
    prev_close,
    value,
    bid,
    ask,
    timestamp,
  }
}

export const orderbookUpdateOf = (
  code: string,
  book: Book,
  timestamp: string,
  checksum: number = orderbookChecksum(book.bids, book.asks),
): OrderbookUpdate => ({
  type: "orderbook_update",
  code,
  bids: book.bids,
  asks: book.asks,
  checksum,
  timestamp,
})

/** Index level from constituents: prevClose × mean(last / prevClose), 2 decimals. */
export const indexLevel = (indexPrevClose: number, members: ReadonlyArray<QuoteView>): number => {
  if (members.length === 0) return indexPrevClose
  let sum = 0
  for (const m of members) sum += m.last / m.prevClose
  return round2((indexPrevClose * sum) / members.length)
}
