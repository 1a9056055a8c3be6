/**
 * Server -> client messages (docs/protocol.md "Server to client").
 * The gateway itself writes these through the pre-serialized fast path in `encode.ts`;
 * these Schemas are the contract that the client SDK, the ingest API and the tests decode with.
 */
import { Schema } from "effect"
import { CandleInterval, SubscriptionType } from "./client.js"

export const Market = Schema.Literal("KOSPI", "KOSDAQ")
export type Market = typeof Market.Type
export const MARKETS: ReadonlyArray<Market> = ["KOSPI", "KOSDAQ"]

export const MarketStatusValue = Schema.Literal("pre_open", "open", "closed", "halted")
export type MarketStatusValue = typeof MarketStatusValue.Type

export const AlertType = Schema.Literal(
  "price_above",
  "price_below",
  "change_percent_above",
  "change_percent_below",
)
export type AlertType = typeof AlertType.Type

/** ISO 8601 UTC with milliseconds, as `Date.prototype.toISOString` writes it. */
export const Timestamp = Schema.String.pipe(
  Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
  Schema.annotations({ identifier: "Timestamp" }),
)

const NonNegativeInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())
const PositiveNumber = Schema.Number.pipe(Schema.positive(), Schema.finite())

export const Level = Schema.Struct({ price: PositiveNumber, quantity: NonNegativeInt })
export type Level = typeof Level.Type

// ---- market events: what flows through the pipeline, before a connection numbers them ----

// ---- issue 14 additions (additive: every field below is optional on the wire) ----

/**
 * Session ticker fields of a `price_update`. Stocks carry all of them (bid/ask when a book is
 * known); indices carry open/high/low. All describe the current trading day (reset at its start).
 */
export const TickerFields = {
  open: Schema.optional(PositiveNumber),
  high: Schema.optional(PositiveNumber),
  low: Schema.optional(PositiveNumber),
  prev_close: Schema.optional(PositiveNumber),
  /** Cumulative traded value in KRW: the sum of price x quantity of the day's executions. */
  value: Schema.optional(NonNegativeInt),
  bid: Schema.optional(PositiveNumber),
  ask: Schema.optional(PositiveNumber),
}

export const InstrumentStatusValue = Schema.Literal("trading", "halted", "vi")
export type InstrumentStatusValue = typeof InstrumentStatusValue.Type
export const ViType = Schema.Literal("static", "dynamic")
export type ViType = typeof ViType.Type

/**
 * A stock's trading state, on its `stock` topic. `vi` carries `vi_type`, `reference_price` (the
 * price the trigger was measured from) and `expected_end` (the single-price auction's scheduled
 * end); a halt may carry `expected_end` when one is known.
 */
export const InstrumentStatus = Schema.Struct({
  type: Schema.Literal("instrument_status"),
  code: Schema.String,
  status: InstrumentStatusValue,
  vi_type: Schema.optional(ViType),
  reference_price: Schema.optional(PositiveNumber),
  expected_end: Schema.optional(Timestamp),
  reason: Schema.String,
  timestamp: Timestamp,
}).annotations({ identifier: "instrument_status" })
export type InstrumentStatus = typeof InstrumentStatus.Type

// ---- end of issue 14 additions ----

export const PriceUpdate = Schema.Struct({
  type: Schema.Literal("price_update"),
  code: Schema.String,
  name: Schema.String,
  price: PositiveNumber,
  change: Schema.Number,
  change_percent: Schema.Number,
  volume: NonNegativeInt,
  ...TickerFields,
  timestamp: Timestamp,
}).annotations({ identifier: "price_update" })
export type PriceUpdate = typeof PriceUpdate.Type

export const OrderbookUpdate = Schema.Struct({
  type: Schema.Literal("orderbook_update"),
  code: Schema.String,
  bids: Schema.Array(Level).pipe(Schema.maxItems(10)),
  asks: Schema.Array(Level).pipe(Schema.maxItems(10)),
  checksum: NonNegativeInt,
  timestamp: Timestamp,
}).annotations({ identifier: "orderbook_update" })
export type OrderbookUpdate = typeof OrderbookUpdate.Type

export const MarketStatus = Schema.Struct({
  type: Schema.Literal("market_status"),
  market: Market,
  status: MarketStatusValue,
  timestamp: Timestamp,
}).annotations({ identifier: "market_status" })
export type MarketStatus = typeof MarketStatus.Type

export const TopMover = Schema.Struct({ code: Schema.String, change_percent: Schema.Number })

export const SectorUpdate = Schema.Struct({
  type: Schema.Literal("sector_update"),
  sector: Schema.String,
  change_percent: Schema.Number,
  advancers: NonNegativeInt,
  decliners: NonNegativeInt,
  unchanged: NonNegativeInt,
  volume: NonNegativeInt,
  top_movers: Schema.Array(TopMover),
  timestamp: Timestamp,
}).annotations({ identifier: "sector_update" })
export type SectorUpdate = typeof SectorUpdate.Type

export const AlertMessage = Schema.Struct({
  type: Schema.Literal("alert"),
  alert_id: Schema.String,
  code: Schema.String,
  alert_type: AlertType,
  threshold: Schema.Number,
  current_price: Schema.Number,
  message: Schema.String,
  timestamp: Timestamp,
}).annotations({ identifier: "alert" })
export type AlertMessage = typeof AlertMessage.Type

// ---- candles (docs/market-data.md "Candles"): bars built from the trades of price_update ----

/** One bar. `time` is its start (a `1d` bar: the trading day's midnight in Asia/Seoul). */
export const CandleFields = {
  time: Timestamp,
  open: PositiveNumber,
  high: PositiveNumber,
  low: PositiveNumber,
  close: PositiveNumber,
  /** Shares traded in the bar. */
  volume: NonNegativeInt,
  /** Traded value in the bar: the sum of price x quantity of its trades. */
  value: Schema.Number.pipe(Schema.nonNegative(), Schema.finite()),
  /** Trades in the bar. */
  trades: NonNegativeInt,
}
export const Candle = Schema.Struct(CandleFields).annotations({ identifier: "Candle" })
export type Candle = typeof Candle.Type

/**
 * The bar in progress (`closed: false`, conflated like prices) or a bar that ended
 * (`closed: true`, sent once and never conflated).
 */
export const CandleUpdate = Schema.Struct({
  type: Schema.Literal("candle_update"),
  code: Schema.String,
  interval: CandleInterval,
  ...CandleFields,
  closed: Schema.Boolean,
  timestamp: Timestamp,
}).annotations({ identifier: "candle_update" })
export type CandleUpdate = typeof CandleUpdate.Type

/** What a `candle` subscription starts with: the last closed bars, oldest first, and the bar in progress. */
export const CandleSnapshot = Schema.Struct({
  type: Schema.Literal("candle_snapshot"),
  code: Schema.String,
  interval: CandleInterval,
  bars: Schema.Array(Candle),
  current: Schema.NullOr(Candle),
  timestamp: Timestamp,
}).annotations({ identifier: "candle_snapshot" })
export type CandleSnapshot = typeof CandleSnapshot.Type

/** Everything the market pipeline carries. Alerts are per user and travel separately. */
export const MarketEvent = Schema.Union(
  PriceUpdate,
  OrderbookUpdate,
  MarketStatus,
  SectorUpdate,
  InstrumentStatus,
  CandleUpdate,
)
export type MarketEvent = typeof MarketEvent.Type

// ---- what a client receives: the above plus `sequence` (and `snapshot` on snapshots) ----

const numbered = { sequence: Schema.Number.pipe(Schema.int(), Schema.positive()) }
const snapshotFlag = { snapshot: Schema.optional(Schema.Boolean) }

export const ErrorCode = Schema.Literal(
  "INVALID_MESSAGE",
  "INVALID_TOKEN",
  "SUBSCRIPTION_FAILED",
  "RATE_LIMIT_EXCEEDED",
  "SESSION_RESTORATION_FAILED",
  "TOKEN_REFRESH_ERROR",
)
export type ErrorCode = typeof ErrorCode.Type

export const SubscriptionSet = Schema.Struct({
  stock: Schema.optional(Schema.Array(Schema.String)),
  market: Schema.optional(Schema.Array(Schema.String)),
  sector: Schema.optional(Schema.Array(Schema.String)),
  candle: Schema.optional(Schema.Array(Schema.String)),
})
export type SubscriptionSet = typeof SubscriptionSet.Type

export const Connected = Schema.Struct({
  type: Schema.Literal("connected"),
  connection_id: Schema.String,
  session_id: Schema.String,
  user_id: Schema.NullOr(Schema.String),
  timestamp: Timestamp,
  ...numbered,
})
export const Reconnected = Schema.Struct({
  type: Schema.Literal("reconnected"),
  session_id: Schema.String,
  restored_subscriptions: SubscriptionSet,
  missed_messages_count: NonNegativeInt,
  // Additive: present only after a crash of the session's instance. Numbers after
  // `sequence_jumped_from` up to `sequence_jumped_to` were skipped (some may have been sent).
  sequence_jumped: Schema.optional(Schema.Literal(true)),
  sequence_jumped_from: Schema.optional(NonNegativeInt),
  sequence_jumped_to: Schema.optional(NonNegativeInt),
  timestamp: Timestamp,
  ...numbered,
})
export const Subscribed = Schema.Struct({
  type: Schema.Literal("subscribed"),
  subscription_type: SubscriptionType,
  targets: Schema.Array(Schema.String),
  timestamp: Timestamp,
  ...numbered,
})
export const Unsubscribed = Schema.Struct({
  type: Schema.Literal("unsubscribed"),
  subscription_type: SubscriptionType,
  targets: Schema.Array(Schema.String),
  timestamp: Timestamp,
  ...numbered,
})
export const Pong = Schema.Struct({
  type: Schema.Literal("pong"),
  id: Schema.optional(Schema.Union(Schema.String, Schema.JsonNumber)),
  timestamp: Timestamp,
  ...numbered,
})
export const TokenRefreshed = Schema.Struct({
  type: Schema.Literal("token_refreshed"),
  user_id: Schema.String,
  expires_at: Schema.NullOr(Timestamp),
  timestamp: Timestamp,
  ...numbered,
})
export const ErrorMessage = Schema.Struct({
  type: Schema.Literal("error"),
  code: ErrorCode,
  message: Schema.String,
  details: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  timestamp: Timestamp,
  ...numbered,
})
export type ErrorMessage = typeof ErrorMessage.Type

export const NumberedPriceUpdate = Schema.Struct({ ...PriceUpdate.fields, ...numbered, ...snapshotFlag })
export const NumberedOrderbookUpdate = Schema.Struct({
  ...OrderbookUpdate.fields,
  ...numbered,
  ...snapshotFlag,
})
export const NumberedMarketStatus = Schema.Struct({ ...MarketStatus.fields, ...numbered, ...snapshotFlag })
export const NumberedSectorUpdate = Schema.Struct({ ...SectorUpdate.fields, ...numbered, ...snapshotFlag })
export const NumberedAlert = Schema.Struct({ ...AlertMessage.fields, ...numbered })
export const NumberedInstrumentStatus = Schema.Struct({
  ...InstrumentStatus.fields,
  ...numbered,
  ...snapshotFlag,
})
export const NumberedCandleUpdate = Schema.Struct({ ...CandleUpdate.fields, ...numbered })
export const NumberedCandleSnapshot = Schema.Struct({ ...CandleSnapshot.fields, ...numbered })

/** Any single (non-batch) server message. */
export const ServerSingle = Schema.Union(
  Connected,
  Reconnected,
  Subscribed,
  Unsubscribed,
  Pong,
  TokenRefreshed,
  ErrorMessage,
  NumberedPriceUpdate,
  NumberedOrderbookUpdate,
  NumberedMarketStatus,
  NumberedSectorUpdate,
  NumberedAlert,
  NumberedInstrumentStatus,
  NumberedCandleUpdate,
  NumberedCandleSnapshot,
)
export type ServerSingle = typeof ServerSingle.Type

/** The `type` of every single message, read from the Schema so that a new message cannot be left out. */
export const SERVER_SINGLE_TYPES: ReadonlySet<string> = new Set<string>(
  ServerSingle.members.flatMap((m) => m.fields.type.literals),
)

export const Batch = Schema.Struct({
  type: Schema.Literal("batch"),
  batch_size: Schema.Number.pipe(Schema.int(), Schema.greaterThanOrEqualTo(2)),
  messages: Schema.Array(ServerSingle),
  timestamp: Timestamp,
  ...numbered,
})
export type Batch = typeof Batch.Type

export const ServerMessage = Schema.Union(ServerSingle, Batch)
export type ServerMessage = typeof ServerMessage.Type
