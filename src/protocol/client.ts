/**
 * Client -> server messages (docs/protocol.md "Client to server").
 * One Schema per message gives the TypeScript type, the decoder whose failures become
 * INVALID_MESSAGE details, and (via Arbitrary.make) the generators for property tests.
 * The discriminator is `type`, as on the wire. Unknown extra fields are ignored.
 */
import { Schema } from "effect"

export const SubscriptionType = Schema.Literal("stock", "market", "sector", "candle")
export type SubscriptionType = typeof SubscriptionType.Type
export const SUBSCRIPTION_TYPES: ReadonlyArray<SubscriptionType> = ["stock", "market", "sector", "candle"]

// ---- candles (docs/market-data.md "Candles") ----

/** Bar lengths of the `candle` subscription; a target is `"<code>:<interval>"` (`"005930:1m"`). */
export const CandleInterval = Schema.Literal("1m", "5m", "15m", "1h", "1d")
export type CandleInterval = typeof CandleInterval.Type
export const CANDLE_INTERVALS: ReadonlyArray<CandleInterval> = ["1m", "5m", "15m", "1h", "1d"]

/** Characters of a subscription target at most. */
export const MAX_TARGET_LENGTH = 32

/** A subscription target: a stock code, a market name, a sector name or `code:interval` (candles). */
export const Target = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(MAX_TARGET_LENGTH))

/** The most targets one subscribe/unsubscribe may name: also the longest array any client message holds. */
export const MAX_TARGETS = 100

export const Targets = Schema.Array(Target).pipe(Schema.minItems(1), Schema.maxItems(MAX_TARGETS))

export const Subscribe = Schema.Struct({
  type: Schema.Literal("subscribe"),
  subscription_type: SubscriptionType,
  targets: Targets,
}).annotations({ identifier: "subscribe" })
export type Subscribe = typeof Subscribe.Type

export const Unsubscribe = Schema.Struct({
  type: Schema.Literal("unsubscribe"),
  subscription_type: SubscriptionType,
  targets: Targets,
}).annotations({ identifier: "unsubscribe" })
export type Unsubscribe = typeof Unsubscribe.Type

/** `id` is echoed in `pong`, so a client can match answers to its pings. A number is a JSON one: finite (`JsonNumber`), so every id the schema allows survives JSON. */
export const Ping = Schema.Struct({
  type: Schema.Literal("ping"),
  id: Schema.optional(Schema.Union(Schema.String, Schema.JsonNumber)),
}).annotations({ identifier: "ping" })
export type Ping = typeof Ping.Type

export const RefreshToken = Schema.Struct({
  type: Schema.Literal("refresh_token"),
  token: Schema.String.pipe(Schema.minLength(1)),
}).annotations({ identifier: "refresh_token" })
export type RefreshToken = typeof RefreshToken.Type

export const Reconnect = Schema.Struct({
  type: Schema.Literal("reconnect"),
  session_id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
}).annotations({ identifier: "reconnect" })
export type Reconnect = typeof Reconnect.Type

export const ClientMessage = Schema.Union(Subscribe, Unsubscribe, Ping, RefreshToken, Reconnect)
export type ClientMessage = typeof ClientMessage.Type

export const CLIENT_MESSAGE_TYPES = [
  "subscribe",
  "unsubscribe",
  "ping",
  "refresh_token",
  "reconnect",
] as const
export type ClientMessageType = (typeof CLIENT_MESSAGE_TYPES)[number]

/** The schema for one message type, so a frame whose `type` is known is checked against that shape only. */
export const schemaForType = {
  subscribe: Subscribe,
  unsubscribe: Unsubscribe,
  ping: Ping,
  refresh_token: RefreshToken,
  reconnect: Reconnect,
} as const
