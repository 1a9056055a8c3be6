/**
 * Validation of events POSTed to /v1/ingest (PROTOCOL.md "POST /v1/ingest"). Pure: given the raw
 * JSON values, the universe, the live market state and the current time, it returns for each
 * event either the complete MarketEvent to publish or the reason it was rejected.
 *
 * Rules:
 * - `type` is one of price_update, orderbook_update, market_status; fields have the protocol's
 *   shapes (the Schemas of protocol/server.ts), except that the server fills what it can derive.
 * - price_update: `code` is a stock of the universe or an index (KOSPI, KOSDAQ). Stock prices are
 *   on the KRX tick grid; every price is within ±30% of the previous close (the daily limit).
 *   Absent `change` / `change_percent` are derived from the previous close (percent rounded to
 *   2 decimals), an absent `name` comes from the universe, an absent `volume` keeps the current
 *   cumulative volume.
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
import { type MarketStateShape } from "../pipeline/MarketState.js"
import {
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
}

const INDEX_CODES: ReadonlySet<string> = new Set(["KOSPI", "KOSDAQ"])
const TYPES = ["price_update", "orderbook_update", "market_status"] as const

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

const timestampOf = (given: string | undefined, now: number): Either.Either<string, string> => {
  if (given === undefined) return Either.right(new Date(now).toISOString())
  const ms = Date.parse(given)
  return Number.isNaN(ms)
    ? Either.left(`timestamp: "${given}" is not an ISO 8601 date`)
    : Either.right(new Date(ms).toISOString())
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
      if (!isOnTickGrid(e.price)) {
        return Either.left(`price: ${e.price} is not on the KRX tick grid (tick ${tickSize(e.price)} KRW)`)
      }
      const { lower, upper } = dailyLimits(quote.prevClose)
      if (e.price < lower || e.price > upper) {
        return Either.left(
          `price: ${e.price} is outside the daily limit ${lower}-${upper} (±30% of previous close ${quote.prevClose})`,
        )
      }
    } else if (!withinDailyLimit(quote.prevClose, e.price)) {
      return Either.left(`price: ${e.price} is more than 30% away from previous close ${quote.prevClose}`)
    }
    return Either.map(timestampOf(e.timestamp, ctx.now), (timestamp): MarketEvent => {
      const derived = priceChange(quote.prevClose, e.price)
      return {
        type: "price_update",
        code: e.code,
        name: e.name ?? quote.name,
        price: e.price,
        change: e.change ?? derived.change,
        change_percent: e.change_percent ?? derived.change_percent,
        volume: e.volume ?? quote.volume,
        timestamp,
      }
    })
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
  const ctx: IngestContext = { universe, state, now }
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
