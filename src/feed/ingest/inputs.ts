/**
 * The input Schemas of ingested events: the protocol's fields (protocol/server.ts), with those the
 * server can derive optional, and their decoders. Fields the gateway does not know are ignored.
 */
import { type Either, Schema } from "effect"
import { InstrumentStatus, MarketStatus, OrderbookUpdate, PriceUpdate } from "../../protocol/server.js"
import type { Reason } from "./reasons.js"

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

/** Every issue when the reason will be shown, the first one (far cheaper) when it will only be counted. */
const decodeWith = <A, I>(schema: Schema.Schema<A, I>) => {
  const all = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })
  const first = Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })
  return (raw: unknown, detailed: boolean): Either.Either<A, Reason> => (detailed ? all(raw) : first(raw))
}

export const decodePrice = decodeWith(PriceUpdateInput)
export const decodeBook = decodeWith(OrderbookUpdateInput)
export const decodeStatus = decodeWith(MarketStatusInput)
export const decodeInstrumentStatus = decodeWith(InstrumentStatusInput)
