/**
 * Validation of events POSTed to /v1/ingest (docs/protocol.md "HTTP endpoints", `POST /v1/ingest`),
 * request by request. Pure: given the raw JSON values, the universe, the live market state and the
 * current time, it returns for each event either the complete MarketEvent to publish or the reason
 * it was rejected.
 *
 * `type` is one of price_update, orderbook_update, market_status, instrument_status; fields have
 * the protocol's shapes (the Schemas of protocol/server.ts), except that the server fills what it
 * can derive. Each type's rules are in its module: `ingest/price.ts`, `ingest/book.ts`,
 * `ingest/status.ts`; `ingest/context.ts` has the rule for `timestamp`.
 *
 * Cost: describing a Schema failure (every issue, formatted) is most of the price of a bad event
 * (about 130 us against 18 us to find its first issue). Only the first few rejections of a request
 * are described (`validateIngest`'s `maxReported`); the rest are counted with the cheap check.
 */
import { Either } from "effect"
import type { UniverseShape } from "../market/Universe.js"
import type { MarketStateShape } from "../pipeline/MarketState.js"
import type { MarketEvent } from "../protocol/server.js"
import { validateBook } from "./ingest/book.js"
import type { IngestContext } from "./ingest/context.js"
import { validatePrice } from "./ingest/price.js"
import { describe, type Reason } from "./ingest/reasons.js"
import { validateInstrumentStatus, validateStatus } from "./ingest/status.js"

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

const TYPES = ["price_update", "orderbook_update", "market_status", "instrument_status"] as const

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
