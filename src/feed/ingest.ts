/**
 * Validation of events POSTed to /v1/ingest (docs/protocol.md "HTTP endpoints", `POST /v1/ingest`). Pure: given the raw
 * JSON values, the universe, the live market state and the current time, it returns for each
 * event either the complete MarketEvent to publish or the reason it was rejected.
 *
 * Rules:
 * - `type` is one of price_update, orderbook_update, market_status, instrument_status; fields have the protocol's
 *   shapes (the Schemas of protocol/server.ts), except that the server fills what it can derive.
 * - price_update: `code` is a stock of the universe or an index (KOSPI, KOSDAQ). Stock prices are
 *   on the KRX tick grid; every price is within ±30% of the previous close (the daily limit).
 *   Absent `change` / `change_percent` are derived from the previous close (percent rounded to
 *   2 decimals), an absent `name` comes from the universe, an absent `volume` keeps the current
 *   cumulative volume.
 * - price_update ticker fields (docs/market-data.md "Ticker fields"): absent ones are derived from
 *   the day so far (open: the first price of the day; high/low: extremes including this price;
 *   value: the day's value plus price x the volume added; bid/ask: the touch of the last book).
 *   Supplied ones must agree with the day: `prev_close` equal to the gateway's previous close,
 *   `high` at or above and `low` at or below every price of the day (this one included), `open`
 *   between them, `value` not below the day's value so far, `bid` < `ask`; stock prices on the grid
 *   and inside the daily limit. Indices take open/high/low and prev_close only.
 *   Events of one request are validated in order, each against the day as the earlier ones leave it.
 * - instrument_status: `code` a stock; `status` trading, halted or vi; a `vi` needs `vi_type`,
 *   `reference_price` and `expected_end`, which the other statuses must not carry; an absent
 *   `reason` becomes "set by ingest".
 * - orderbook_update: `code` is a stock; at most 10 levels a side; bids strictly descending, asks
 *   strictly ascending, best bid < best ask, every price on the grid and inside the daily limit.
 *   The checksum is computed by the server; a supplied one must match it.
 * - market_status: `market` KOSPI or KOSDAQ, `status` pre_open, open, closed or halted.
 * - `timestamp`: absent means now; present must parse as a date and is normalised to ISO 8601
 *   UTC with milliseconds.
 *
 * Cost: describing a Schema failure (every issue, formatted) is most of the price of a bad event
 * (about 130 us against 18 us to find its first issue). Only the first few rejections of a request
 * are described (`validateIngest`'s `maxReported`); the rest are counted with the cheap check.
 */
import { Either, ParseResult, Schema } from "effect"
import { orderbookChecksum } from "../market/checksum.js"
import { priceChange } from "../market/pricing.js"
import { dailyLimits, isOnTickGrid, tickSize, withinDailyLimit } from "../market/tickSize.js"
import { type UniverseShape } from "../market/Universe.js"
import { type DaySoFar, type MarketStateShape, nextDayTicker } from "../pipeline/MarketState.js"
import {
  InstrumentStatus,
  type Level,
  type MarketEvent,
  MarketStatus,
  OrderbookUpdate,
  PriceUpdate,
} from "../protocol/server.js"

// ---- input schemas: the protocol's fields, with the derivable ones optional ----

const LooseTimestamp = Schema.optional(Schema.String)

export const PriceUpdateInput = Schema.Struct({
  ...PriceUpdate.fields,
  name: Schema.optional(PriceUpdate.fields.name),
  change: Schema.optional(Schema.Number.pipe(Schema.finite())),
  change_percent: Schema.optional(Schema.Number.pipe(Schema.finite())),
  volume: Schema.optional(PriceUpdate.fields.volume),
  timestamp: LooseTimestamp,
})

export const OrderbookUpdateInput = Schema.Struct({
  ...OrderbookUpdate.fields,
  checksum: Schema.optional(OrderbookUpdate.fields.checksum),
  timestamp: LooseTimestamp,
})

export const MarketStatusInput = Schema.Struct({
  ...MarketStatus.fields,
  timestamp: LooseTimestamp,
})

export const InstrumentStatusInput = Schema.Struct({
  ...InstrumentStatus.fields,
  reason: Schema.optional(InstrumentStatus.fields.reason),
  expected_end: LooseTimestamp,
  timestamp: LooseTimestamp,
})

// ---- results ----

export interface IngestAccepted {
  readonly index: number
  readonly ok: MarketEvent
}
export interface IngestRejection {
  readonly index: number
  readonly reason: string
}
export type IngestEventResult = IngestAccepted | IngestRejection

export const isAccepted = (r: IngestEventResult): r is IngestAccepted => "ok" in r

export interface IngestContext {
  readonly universe: UniverseShape
  readonly state: MarketStateShape
  /** Epoch millis used for absent timestamps. */
  readonly now: number
  /**
   * The day as earlier accepted events of the same request leave it, per code (validateIngest
   * fills it); codes not in it are read from `state`.
   */
  readonly pending?: Map<string, DaySoFar>
}

const INDEX_CODES: ReadonlySet<string> = new Set(["KOSPI", "KOSDAQ"])
const TYPES = ["price_update", "orderbook_update", "market_status", "instrument_status"] as const

const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 77)}...` : s)

/**
 * One line per offending field: "path: Expected A or B, actual X". Schema reports each member of a
 * union separately (and an optional field's `undefined` alternative); merging them keeps the
 * reason readable for the publisher.
 */
const describeParseError = (e: ParseResult.ParseError): string => {
  const byPath = new Map<string, Array<string>>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(e)) {
    const path = issue.path.join(".")
    const list = byPath.get(path)
    if (list === undefined) byPath.set(path, [issue.message])
    else list.push(issue.message)
  }
  const lines: Array<string> = []
  for (const [path, messages] of byPath) {
    const meaningful = messages.filter((m) => !m.startsWith("Expected undefined,"))
    const ms = meaningful.length > 0 ? meaningful : messages
    const parsed = ms.map((m) => /^Expected (.*), actual (.*)$/s.exec(m))
    const actual = parsed[0]?.[2]
    const text =
      ms.length > 1 && actual !== undefined && parsed.every((p) => p !== null && p[2] === actual)
        ? `Expected ${[...new Set(parsed.map((p) => p?.[1]))].join(" or ")}, actual ${clip(actual)}`
        : ms.map((m) => clip(m)).join("; ")
    lines.push(path.length > 0 ? `${path}: ${text}` : text)
  }
  return lines.join("; ")
}

/** A rejection's reason; a Schema failure is described only when it is reported. */
type Reason = string | ParseResult.ParseError

const describe = (r: Reason): string => (typeof r === "string" ? r : describeParseError(r))

/** Every issue when the reason will be shown, the first one (far cheaper) when it will only be counted. */
const decodeWith = <A, I>(schema: Schema.Schema<A, I>) => {
  const all = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })
  const first = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })
  return (raw: unknown, detailed: boolean): Either.Either<A, Reason> => (detailed ? all(raw) : first(raw))
}

const decodePrice = decodeWith(PriceUpdateInput)
const decodeBook = decodeWith(OrderbookUpdateInput)
const decodeStatus = decodeWith(MarketStatusInput)
const decodeInstrumentStatus = decodeWith(InstrumentStatusInput)

const timestampOf = (given: string | undefined, now: number): Either.Either<string, string> => {
  if (given === undefined) return Either.right(new Date(now).toISOString())
  const ms = Date.parse(given)
  return Number.isNaN(ms)
    ? Either.left(`timestamp: "${given}" is not an ISO 8601 date`)
    : Either.right(new Date(ms).toISOString())
}

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

const validatePrice = (
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

const validateBook = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodeBook(raw, detailed), (e): Either.Either<MarketEvent, Reason> => {
    if (!ctx.universe.byCode.has(e.code)) {
      return Either.left(
        INDEX_CODES.has(e.code)
          ? `code: ${e.code} is an index and has no order book`
          : `code: unknown code "${e.code}"`,
      )
    }
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

const validateStatus = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodeStatus(raw, detailed), (e) =>
    Either.map(
      timestampOf(e.timestamp, ctx.now),
      (timestamp): MarketEvent => ({ type: "market_status", market: e.market, status: e.status, timestamp }),
    ),
  )

const validateInstrumentStatus = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodeInstrumentStatus(raw, detailed), (e): Either.Either<MarketEvent, Reason> => {
    if (!ctx.universe.byCode.has(e.code)) {
      return Either.left(
        INDEX_CODES.has(e.code)
          ? `code: ${e.code} is an index and has no trading state (use market_status)`
          : `code: unknown code "${e.code}"`,
      )
    }
    if (e.status === "vi") {
      const missing = (["vi_type", "reference_price", "expected_end"] as const).filter(
        (f) => e[f] === undefined,
      )
      if (missing.length > 0) return Either.left(`status vi needs ${missing.join(", ")}`)
    } else if (e.vi_type !== undefined || e.reference_price !== undefined) {
      return Either.left(`vi_type/reference_price: only a status vi carries them, not ${e.status}`)
    }
    return Either.flatMap(timestampOf(e.timestamp, ctx.now), (timestamp) => {
      const end =
        e.expected_end === undefined ? Either.right(undefined) : timestampOf(e.expected_end, ctx.now)
      return Either.map(
        Either.mapLeft(end, (reason) => `expected_end${reason.slice("timestamp".length)}`),
        (expected_end): MarketEvent => ({
          type: "instrument_status",
          code: e.code,
          status: e.status,
          ...(e.vi_type === undefined ? {} : { vi_type: e.vi_type }),
          ...(e.reference_price === undefined ? {} : { reference_price: e.reference_price }),
          ...(expected_end === undefined ? {} : { expected_end }),
          reason: e.reason ?? "set by ingest",
          timestamp,
        }),
      )
    })
  })

/** Validates one raw event. */
export const validateIngestEvent = (raw: unknown, ctx: IngestContext): Either.Either<MarketEvent, string> =>
  Either.mapLeft(check(raw, ctx, true), describe)

const check = (raw: unknown, ctx: IngestContext, detailed: boolean): Either.Either<MarketEvent, Reason> => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return Either.left("event must be a JSON object")
  }
  const type: unknown = (raw as { readonly type?: unknown }).type
  switch (type) {
    case "price_update":
      return validatePrice(raw, ctx, detailed)
    case "orderbook_update":
      return validateBook(raw, ctx, detailed)
    case "market_status":
      return validateStatus(raw, ctx, detailed)
    case "instrument_status":
      return validateInstrumentStatus(raw, ctx, detailed)
    default:
      return Either.left(
        `type: ${type === undefined ? "missing" : JSON.stringify(type)}; expected one of ${TYPES.join(", ")}`,
      )
  }
}

/** Per-event results, in input order. */
export const validateIngestEvents = (
  events: ReadonlyArray<unknown>,
  ctx: IngestContext,
): ReadonlyArray<IngestEventResult> =>
  events.map((raw, index) =>
    Either.match(validateIngestEvent(raw, ctx), {
      onLeft: (reason): IngestEventResult => ({ index, reason }),
      onRight: (ok): IngestEventResult => ({ index, ok }),
    }),
  )

/**
 * Accepted events (in order) and rejections, for the HTTP handler: publish all or answer 400.
 * `rejected` holds the first `maxReported` rejections with their reasons; `rejectedCount` counts
 * them all.
 */
export const validateIngest = (
  events: ReadonlyArray<unknown>,
  universe: UniverseShape,
  state: MarketStateShape,
  now: number,
  maxReported: number = Number.POSITIVE_INFINITY,
): {
  readonly accepted: ReadonlyArray<MarketEvent>
  readonly rejected: ReadonlyArray<IngestRejection>
  readonly rejectedCount: number
} => {
  const ctx: IngestContext = { universe, state, now, pending: new Map() }
  const accepted: Array<MarketEvent> = []
  const rejected: Array<IngestRejection> = []
  let rejectedCount = 0
  for (let index = 0; index < events.length; index++) {
    const r = check(events[index], ctx, rejected.length < maxReported)
    if (Either.isRight(r)) {
      accepted.push(r.right)
    } else {
      rejectedCount++
      if (rejected.length < maxReported) rejected.push({ index, reason: describe(r.left) })
    }
  }
  return { accepted, rejected, rejectedCount }
}
