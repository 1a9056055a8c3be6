/**
 * Validation of an ingested `price_update` (docs/protocol.md "HTTP endpoints", `POST /v1/ingest`):
 *
 * - `code` is a stock of the universe or an index (KOSPI, KOSDAQ). Stock prices are on the KRX
 *   tick grid; every price is within ±30% of the previous close (the daily limit). Absent `change`
 *   / `change_percent` are derived from the previous close (percent rounded to 2 decimals), an
 *   absent `name` comes from the universe, an absent `volume` keeps the current cumulative volume.
 * - Ticker fields (docs/market-data.md "Ticker fields"): absent ones are derived from the day so
 *   far (open: the first price of the day; high/low: extremes including this price; value: the
 *   day's value plus price x the volume added; bid/ask: the touch of the last book). Supplied ones
 *   must agree with the day: `prev_close` equal to the gateway's previous close, `high` at or above
 *   and `low` at or below every price of the day (this one included), `open` between them, `value`
 *   not below the day's value so far, `bid` < `ask`; stock prices on the grid and inside the daily
 *   limit. Indices take open/high/low and prev_close only.
 *
 * Events of one request are validated in order, each against the day as the earlier ones leave it.
 */
import { Either } from "effect"
import { priceChange } from "../../market/pricing.js"
import { dailyLimits, isOnTickGrid, tickSize, withinDailyLimit } from "../../market/tickSize.js"
import { type DaySoFar, nextDayTicker } from "../../pipeline/MarketState.js"
import type { MarketEvent, PriceUpdate } from "../../protocol/server.js"
import { INDEX_CODES, type IngestContext, timestampOf } from "./context.js"
import { decodePrice, type PriceUpdateInput } from "./inputs.js"
import type { Reason } from "./reasons.js"

/** A stock price's problem (grid, daily limit), or undefined. `field` names it in the reason. */
const stockPriceProblem = (field: string, price: number, prevClose: number): string | undefined => {
  if (!isOnTickGrid(price))
    return `${field}: ${price} is not on the KRX tick grid (tick ${tickSize(price)} KRW)`
  const { lower, upper } = dailyLimits(prevClose)
  if (price < lower || price > upper) {
    return `${field}: ${price} is outside the daily limit ${lower}-${upper} (±30% of previous close ${prevClose})`
  }
  return undefined
}

type PriceInput = typeof PriceUpdateInput.Type

/**
 * The ticker fields of an accepted price, supplied or derived (see the module comment), or the
 * first disagreement with the day.
 */
const tickerOf = (
  e: PriceInput,
  day: DaySoFar,
  prevClose: number,
  isIndex: boolean,
  book: { readonly bid: number | undefined; readonly ask: number | undefined },
): Either.Either<
  Omit<
    PriceUpdate,
    "type" | "code" | "name" | "price" | "change" | "change_percent" | "volume" | "timestamp"
  >,
  string
> => {
  if (isIndex) {
    for (const f of ["value", "bid", "ask"] as const) {
      if (e[f] !== undefined)
        return Either.left(`${f}: an index has no ${f === "value" ? "traded value" : "book"}`)
    }
  }
  if (e.prev_close !== undefined && e.prev_close !== prevClose) {
    return Either.left(
      `prev_close: ${e.prev_close} differs from the previous close ${prevClose} of the gateway`,
    )
  }
  const volume = e.volume ?? day.volume
  const derived = nextDayTicker(day, e.price, volume)
  const high = e.high ?? derived.high
  const low = e.low ?? derived.low
  if (high < derived.high) return Either.left(`high: ${high} is below a price of the day (${derived.high})`)
  if (low > derived.low) return Either.left(`low: ${low} is above a price of the day (${derived.low})`)
  // A supplied open must sit in the range; the derived one is the day's first price.
  const open = e.open ?? derived.open
  if (open < low || open > high) return Either.left(`open: ${open} is outside the day's range ${low}-${high}`)
  if (!isIndex) {
    for (const [f, v] of [
      ["open", e.open],
      ["high", e.high],
      ["low", e.low],
      ["bid", e.bid],
      ["ask", e.ask],
    ] as const) {
      const problem = v === undefined ? undefined : stockPriceProblem(f, v, prevClose)
      if (problem !== undefined) return Either.left(problem)
    }
  }
  if (isIndex) return Either.right({ open, high, low, prev_close: prevClose })
  if (e.value !== undefined && e.value < day.value) {
    return Either.left(`value: ${e.value} is below the day's traded value so far (${day.value})`)
  }
  const bid = e.bid ?? book.bid
  const ask = e.ask ?? book.ask
  if (bid !== undefined && ask !== undefined && bid >= ask) {
    return Either.left(`bid/ask: best bid ${bid} is not below best ask ${ask}`)
  }
  return Either.right({
    open,
    high,
    low,
    prev_close: prevClose,
    value: e.value ?? derived.value,
    ...(bid === undefined ? {} : { bid }),
    ...(ask === undefined ? {} : { ask }),
  })
}

export const validatePrice = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodePrice(raw, detailed), (e): Either.Either<MarketEvent, Reason> => {
    const isIndex = INDEX_CODES.has(e.code)
    if (!isIndex && !ctx.universe.byCode.has(e.code)) return Either.left(`code: unknown code "${e.code}"`)
    const quote = ctx.state.get(e.code)
    if (quote === undefined) return Either.left(`code: no market state for "${e.code}"`)
    if (!isIndex) {
      const problem = stockPriceProblem("price", e.price, quote.prevClose)
      if (problem !== undefined) return Either.left(problem)
    } else if (!withinDailyLimit(quote.prevClose, e.price)) {
      return Either.left(`price: ${e.price} is more than 30% away from previous close ${quote.prevClose}`)
    }
    const day = ctx.pending?.get(e.code) ?? quote
    const book = { bid: quote.bids[0]?.price, ask: quote.asks[0]?.price }
    return Either.flatMap(tickerOf(e, day, quote.prevClose, isIndex, book), (ticker) =>
      Either.map(timestampOf(e.timestamp, ctx.now), (timestamp): MarketEvent => {
        const derived = priceChange(quote.prevClose, e.price)
        const volume = e.volume ?? day.volume
        ctx.pending?.set(e.code, {
          open: ticker.open,
          high: ticker.high,
          low: ticker.low,
          value: ticker.value ?? day.value,
          volume,
        })
        return {
          type: "price_update",
          code: e.code,
          name: e.name ?? quote.name,
          price: e.price,
          change: e.change ?? derived.change,
          change_percent: e.change_percent ?? derived.change_percent,
          volume,
          ...ticker,
          timestamp,
        }
      }),
    )
  })
