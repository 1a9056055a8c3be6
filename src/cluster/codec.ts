/**
 * Every value read back from Redis, as a Schema: stored hashes and JSON fields, our Lua
 * scripts' replies, and the text formats we publish. Whatever another instance (perhaps of
 * another version) or an operator wrote is a boundary, so nothing read from Redis is cast.
 *
 * A value that does not decode is a `RedisDecodeError` naming what it was (`what`): the
 * RedisClient logs it (rate-limited) and counts it (`quotecast_redis_decode_failures_total`).
 * The text formats keep their hand-written encoders beside their Schemas: the market-data path
 * writes them without going through Schema.
 */
import { Data, Either, ParseResult, Schema } from "effect"
import { eventTimeOf, keyFromWire, type Outgoing } from "../protocol/encode.js"
import { AlertType, Candle, MarketEvent } from "../protocol/server.js"
import { NO_SUBSCRIPTIONS } from "../session/SessionStore.js"

/** A value read from Redis that does not have the shape this version writes. */
export class RedisDecodeError extends Data.TaggedError("RedisDecodeError")<{
  readonly what: string
  readonly reason: string
}> {}

/** How one kind of value read from Redis is decoded; `what` names it in logs and the metric's label. */
export interface Codec<A> {
  readonly what: string
  readonly decode: (u: unknown) => Either.Either<A, RedisDecodeError>
}

const failure = (what: string, e: ParseResult.ParseError) =>
  new RedisDecodeError({ what, reason: ParseResult.TreeFormatter.formatErrorSync(e) })

const codec = <A, I>(what: string, schema: Schema.Schema<A, I, never>): Codec<A> => {
  const decode = Schema.decodeUnknownEither(schema)
  return { what, decode: (u) => Either.mapLeft(decode(u), (e) => failure(what, e)) }
}

/** A text format parsed by hand into `to`'s encoded form, which `to` then decodes. */
const textFormat = <A, I>(
  to: Schema.Schema<A, I, never>,
  format: string,
  parse: (s: string) => I | undefined,
) =>
  Schema.transformOrFail(Schema.String, to, {
    strict: true,
    decode: (s, _, ast) => {
      const parsed = parse(s)
      return parsed === undefined
        ? ParseResult.fail(new ParseResult.Type(ast, s, `not ${format}`))
        : ParseResult.succeed(parsed)
    },
    encode: (_, __, ast, value) => ParseResult.fail(new ParseResult.Forbidden(ast, value, "decode only")),
  })

// ---- Lua script replies ----

/** An integer reply (0/1 flags, counts, -1/-2 verdicts). */
export const IntReply = codec("integer_reply", Schema.Int)
/** Integer replies of one script per item, pipelined. */
export const IntsReply = codec("integer_list_reply", Schema.Array(Schema.Int))
/** A list of strings (ids, alert bodies). */
export const StringsReply = codec("string_list_reply", Schema.Array(Schema.String))
/** Two lists of strings (the ids two scripts of one round trip returned). */
export const StringsPairReply = codec(
  "string_list_pair_reply",
  Schema.Tuple(Schema.Array(Schema.String), Schema.Array(Schema.String)),
)

// ---- sessions (RedisSessionStore) ----

const Subscriptions = Schema.Struct({
  stock: Schema.Array(Schema.String),
  market: Schema.Array(Schema.String),
  sector: Schema.Array(Schema.String),
  // Absent in sessions saved before candles existed.
  candle: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
})

const SessionHashSchema = Schema.Struct({
  user: Schema.parseJson(Schema.NullOr(Schema.String)),
  subs: Schema.optionalWith(Schema.parseJson(Subscriptions), { default: () => NO_SUBSCRIPTIONS }),
  seq: Schema.optionalWith(Schema.NumberFromString, { default: () => 0 }),
  owner_instance: Schema.optionalWith(Schema.String, { default: () => "" }),
  owner_conn: Schema.optionalWith(Schema.String, { default: () => "" }),
})
export type SessionHash = typeof SessionHashSchema.Type
/** The `session:{id}` hash (the fields a record is read from). */
export const SessionHash = codec("session_hash", SessionHashSchema)

/**
 * The claim script's reply: nil (no such session), or [jumped from ("" when not), previous
 * owner instance, its last write's remaining TTL in ms, ...the hash as claimed, flat].
 */
export const ClaimReply = codec(
  "claim_reply",
  Schema.NullOr(
    Schema.transformOrFail(
      Schema.Array(Schema.String),
      Schema.Struct({
        jumpedFrom: Schema.String,
        previousInstance: Schema.String,
        previousTtlMs: Schema.Number,
        hash: Schema.Record({ key: Schema.String, value: Schema.String }),
      }),
      {
        strict: true,
        decode: (reply, _, ast) => {
          const [jumpedFrom, previousInstance, pttl] = reply
          const previousTtlMs = Number(pttl)
          if (jumpedFrom === undefined || previousInstance === undefined || !Number.isFinite(previousTtlMs))
            return ParseResult.fail(new ParseResult.Type(ast, reply, "fewer than 3 leading fields"))
          const hash: Record<string, string> = {}
          for (let i = 3; i + 1 < reply.length; i += 2) {
            const field = reply[i]
            const value = reply[i + 1]
            if (field !== undefined && value !== undefined) hash[field] = value
          }
          return ParseResult.succeed({ jumpedFrom, previousInstance, previousTtlMs, hash })
        },
        encode: (_, __, ast, value) => ParseResult.fail(new ParseResult.Forbidden(ast, value, "decode only")),
      },
    ),
  ),
)

// ---- cluster membership (RedisClusterView; the session store reads `at`) ----

export const MemberEntrySchema = Schema.Struct({
  instance_id: Schema.String,
  /** Epoch ms of the beat. */
  at: Schema.Number,
  active_connections: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  total_subscriptions: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  messages_sent: Schema.optionalWith(Schema.Number, { default: () => 0 }),
})
export type MemberEntry = typeof MemberEntrySchema.Type
/** A field of the `members` hash: one instance's last beat, JSON. */
export const MemberEntry = codec("member_entry", Schema.parseJson(MemberEntrySchema))

// ---- alerts (RedisAlertStore) ----

const EpochMsFromString = Schema.NumberFromString
/** The `alert:{id}` hash. `fired` is "" while the alert is active. */
export const AlertHash = codec(
  "alert_hash",
  Schema.Struct({
    user: Schema.String,
    code: Schema.String,
    type: AlertType,
    threshold: Schema.NumberFromString,
    created: EpochMsFromString,
    fired: Schema.optionalWith(
      Schema.Union(
        Schema.transform(Schema.Literal(""), Schema.Null, {
          strict: true,
          decode: () => null,
          encode: () => "" as const,
        }),
        EpochMsFromString,
      ),
      { default: () => null },
    ),
  }),
)

const AlertRecordSchema = Schema.Struct({
  id: Schema.String,
  userId: Schema.String,
  code: Schema.String,
  alertType: AlertType,
  threshold: Schema.Number,
  createdAt: Schema.Number,
  firedAt: Schema.NullOr(Schema.Number),
})

/** A message on the `alerts:{sync}` channel. `fired` carries `ids` (`id` alone from older versions). */
export const AlertSyncSchema = Schema.Union(
  Schema.Struct({ op: Schema.Literal("upsert"), alert: AlertRecordSchema }),
  Schema.Struct({ op: Schema.Literal("delete"), id: Schema.String }),
  Schema.Struct({
    op: Schema.Literal("fired"),
    id: Schema.optional(Schema.String),
    ids: Schema.optional(Schema.Array(Schema.String)),
  }),
)
export type AlertSyncMessage = typeof AlertSyncSchema.Type
export const AlertSync = codec("alert_sync_message", Schema.parseJson(AlertSyncSchema))

// ---- takeover requests (RedisTakeover) ----

export const TakeoverRequestSchema = Schema.Struct({
  type: Schema.Literal("takeover"),
  session_id: Schema.String,
  connection_id: Schema.String,
})
export type TakeoverRequest = typeof TakeoverRequestSchema.Type
export const TakeoverRequest = codec("takeover_request", Schema.parseJson(TakeoverRequestSchema))

// ---- the broker's pub/sub payload and recent list (RedisBroker) ----

const OutgoingSchema = Schema.Struct({
  key: Schema.UndefinedOr(Schema.String),
  body: Schema.String,
  at: Schema.optional(Schema.UndefinedOr(Schema.Number)),
  shared: Schema.optional(Schema.UndefinedOr(Schema.Boolean)),
})

export interface WireMessage {
  readonly origin: string
  readonly rid: string
  readonly msg: Outgoing
}

/** Wire payload: `origin \n conflation key \n replay id \n open body`. */
export const encodeWire = (origin: string, msg: Outgoing, rid = ""): string =>
  `${origin}\n${msg.key ?? ""}\n${rid}\n${msg.body}`

/**
 * Undefined for a payload that is not ours. JSON text never contains a raw newline, so the body
 * is everything after the third one. Read through `Wire`, which reports what does not decode.
 */
export const decodeWire = (payload: string): WireMessage | undefined => {
  const a = payload.indexOf("\n")
  const b = a < 0 ? -1 : payload.indexOf("\n", a + 1)
  const c = b < 0 ? -1 : payload.indexOf("\n", b + 1)
  if (c < 0) return undefined
  const key = payload.slice(a + 1, b)
  const body = payload.slice(c + 1)
  return {
    origin: payload.slice(0, a),
    rid: payload.slice(b + 1, c),
    // Keyed messages are market events: their time, read once here, feeds the delivery histogram.
    // Either is one object for every connection on this instance that receives it.
    msg:
      key === ""
        ? { key: undefined, body, shared: true }
        : { key: keyFromWire(key), body, at: eventTimeOf(body), shared: true },
  }
}

export const Wire = codec(
  "pubsub_message",
  textFormat(
    Schema.Struct({ origin: Schema.String, rid: Schema.String, msg: OutgoingSchema }),
    "origin, key, replay id and body on lines",
    decodeWire,
  ),
)

/** An entry of the recent user-message list: `id \t channel \t publish time \t wire payload`. */
export const RecentEntry = codec(
  "recent_user_message",
  textFormat(
    Schema.Struct({
      rid: Schema.String,
      channel: Schema.String,
      at: Schema.NumberFromString,
      payload: Schema.String,
    }),
    "id, channel, time and payload separated by tabs",
    (entry) => {
      const [rid, channel, at, ...rest] = entry.split("\t")
      if (rid === undefined || channel === undefined || at === undefined || rest.length === 0)
        return undefined
      return { rid, channel, at, payload: rest.join("\t") }
    },
  ),
)

// ---- snapshots and the cluster feed (RedisSnapshots) ----

/** A field of a topic's snapshot hash: `conflation key \n open body`. */
export const encodeSnapshotValue = (msg: Outgoing) => `${msg.key ?? ""}\n${msg.body}`
export const SnapshotValue = codec(
  "snapshot_value",
  textFormat(OutgoingSchema, "key and body on lines", (value) => {
    const i = value.indexOf("\n")
    if (i < 0) return undefined
    const key = value.slice(0, i)
    return { key: key === "" ? undefined : key, body: value.slice(i + 1) }
  }),
)

/** A line of a feed message: `topic \t snapshot key \t conflation key \t open body`. */
export const encodeFeedLine = (topic: string, snapshotKey: string, msg: Outgoing) =>
  `${topic}\t${snapshotKey}\t${msg.key ?? ""}\t${msg.body}`
export const FeedLine = codec(
  "feed_line",
  textFormat(
    Schema.Struct({ topic: Schema.String, snapshotKey: Schema.String, msg: OutgoingSchema }),
    "topic, snapshot key, key and body separated by tabs",
    (line) => {
      const a = line.indexOf("\t")
      const b = line.indexOf("\t", a + 1)
      const c = line.indexOf("\t", b + 1)
      if (a < 0 || b < 0 || c < 0) return undefined
      const key = line.slice(b + 1, c)
      return {
        topic: line.slice(0, a),
        snapshotKey: line.slice(a + 1, b),
        // Kept in the mirror: one object for every request it answers.
        msg: { key: key === "" ? undefined : key, body: line.slice(c + 1), shared: true },
      }
    },
  ),
)

const isMarketEvent = Schema.is(MarketEvent)
const validateMarketEvent = Schema.validateEither(MarketEvent)
const MARKET_EVENT = "market_event"
/**
 * An open body (a snapshot's, a feed line's) back to its event, checked against the protocol's
 * Schema. Checked with `Schema.is` (the event Schemas transform nothing, so a value that passes
 * is already the decoded event): a full decode costs several times more, and every feed event
 * of another instance comes through here. Only a failure pays for the detailed report.
 */
export const MarketEventBody: Codec<MarketEvent> = {
  what: MARKET_EVENT,
  decode: (body) => {
    if (typeof body !== "string")
      return Either.left(new RedisDecodeError({ what: MARKET_EVENT, reason: "not text" }))
    let json: unknown
    try {
      json = JSON.parse(`${body}}`)
    } catch (e) {
      return Either.left(new RedisDecodeError({ what: MARKET_EVENT, reason: String(e) }))
    }
    if (isMarketEvent(json)) return Either.right(json)
    return Either.mapLeft(validateMarketEvent(json), (e) => failure(MARKET_EVENT, e))
  },
}

// ---- candle history (RedisCandleStore) ----

/** A bar, closed (an entry of a series' list) or in progress (a field of the current-bars hash). */
export const StoredCandle = codec("candle", Schema.parseJson(Candle))
