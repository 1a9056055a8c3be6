/**
 * Validation of an ingested `orderbook_update`: `code` is a stock; at most 10 levels a side; bids
 * strictly descending, asks strictly ascending, best bid < best ask, every price on the grid and
 * inside the daily limit. The checksum is computed by the server; a supplied one must match it.
 */
import { Either } from "effect"
import { orderbookChecksum } from "../../market/checksum.js"
import { dailyLimits, isOnTickGrid, tickSize } from "../../market/tickSize.js"
import type { Level, MarketEvent } from "../../protocol/server.js"
import { type IngestContext, notAStock, timestampOf } from "./context.js"
import { decodeBook } from "./inputs.js"
import type { Reason } from "./reasons.js"

/** First problem with one side of a book, or undefined. */
const sideProblem = (
  side: "bids" | "asks",
  levels: ReadonlyArray<Level>,
  lower: number,
  upper: number,
): string | undefined => {
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i] as Level
    if (!isOnTickGrid(l.price)) {
      return `${side}.${i}.price: ${l.price} is not on the KRX tick grid (tick ${tickSize(l.price)} KRW)`
    }
    if (l.price < lower || l.price > upper) {
      return `${side}.${i}.price: ${l.price} is outside the daily limit ${lower}-${upper}`
    }
    if (i > 0) {
      const prev = (levels[i - 1] as Level).price
      if (side === "bids" ? l.price >= prev : l.price <= prev) {
        return `${side}: prices must be strictly ${side === "bids" ? "descending" : "ascending"} (best first); level ${i} is ${l.price} after ${prev}`
      }
    }
  }
  return undefined
}

export const validateBook = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodeBook(raw, detailed), (e): Either.Either<MarketEvent, Reason> => {
    const notStock = notAStock(ctx, e.code, "order book")
    if (notStock !== undefined) return Either.left(notStock)
    const quote = ctx.state.get(e.code)
    if (quote === undefined) return Either.left(`code: no market state for "${e.code}"`)
    const { lower, upper } = dailyLimits(quote.prevClose)
    const problem = sideProblem("bids", e.bids, lower, upper) ?? sideProblem("asks", e.asks, lower, upper)
    if (problem !== undefined) return Either.left(problem)
    const bestBid = e.bids[0]
    const bestAsk = e.asks[0]
    if (bestBid !== undefined && bestAsk !== undefined && bestBid.price >= bestAsk.price) {
      return Either.left(`book is crossed: best bid ${bestBid.price} >= best ask ${bestAsk.price}`)
    }
    const checksum = orderbookChecksum(e.bids, e.asks)
    if (e.checksum !== undefined && e.checksum !== checksum) {
      return Either.left(`checksum: ${e.checksum} does not match the book (expected ${checksum})`)
    }
    return Either.map(
      timestampOf(e.timestamp, ctx.now),
      (timestamp): MarketEvent => ({
        type: "orderbook_update",
        code: e.code,
        bids: e.bids.map((l) => ({ price: l.price, quantity: l.quantity })),
        asks: e.asks.map((l) => ({ price: l.price, quantity: l.quantity })),
        checksum,
        timestamp,
      }),
    )
  })
