/**
 * The HTTP API on the gateway's port, as one HttpApi definition: the server implements it
 * (`handlers.ts`), `/docs` describes it, and tests and the load runner call it through a typed
 * HttpApiClient. The dashboard page and the WebSocket upgrade are served beside it (`Server.ts`).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { CandleInterval } from "../protocol/client.js"
import { MetricsSummary } from "../protocol/metricsSummary.js"
import { AlertType, Candle, SubscriptionSet } from "../protocol/server.js"
import { Authentication, Forbidden } from "./auth.js"

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  instance_id: Schema.String,
  mode: Schema.Literal("embedded", "cluster"),
  uptime_s: Schema.Number,
  active_connections: Schema.Number,
  dependencies: Schema.Record({ key: Schema.String, value: Schema.String }),
})

/**
 * Liveness: the process serves HTTP. Unlike /health (readiness), it stays 200 while Redis is down
 * or the instance drains: restarting an instance for an outage of Redis would drop its
 * connections and not bring Redis back.
 */
export const Liveness = Schema.Struct({
  status: Schema.Literal("alive"),
  instance_id: Schema.String,
  uptime_s: Schema.Number,
})

export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  {
    status: Schema.Literal("draining", "degraded"),
    reason: Schema.String,
    dependencies: Schema.Record({ key: Schema.String, value: Schema.String }),
  },
  HttpApiSchema.annotations({ status: 503 }),
) {}

export const ClusterStats = Schema.Struct({
  instances: Schema.Number,
  active_connections: Schema.Number,
  total_subscriptions: Schema.Number,
  messages_sent: Schema.Number,
  members: Schema.Array(
    Schema.Struct({
      instance_id: Schema.String,
      active_connections: Schema.Number,
      total_subscriptions: Schema.Number,
      messages_sent: Schema.Number,
      updated_at: Schema.String,
    }),
  ),
})

export const Stats = Schema.Struct({
  active_connections: Schema.Number,
  total_subscriptions: Schema.Number,
  subscriptions_by_type: Schema.Struct({
    stock: Schema.Number,
    market: Schema.Number,
    sector: Schema.Number,
    candle: Schema.Number,
  }),
  messages_sent: Schema.Number,
  saved_sessions: Schema.NullOr(Schema.Number).annotations({
    description: "Released sessions still restorable; null when the session store could not count them.",
  }),
  saved_sessions_error: Schema.optional(
    Schema.String.annotations({ description: "Why saved_sessions is null (the session store's error)." }),
  ),
  batching_enabled: Schema.Boolean,
  batch_interval_ms: Schema.Number,
  queued_messages: Schema.Number,
  rate_limiting_enabled: Schema.Boolean,
  rate_limit: Schema.Number,
  // Beyond the original document:
  instance_id: Schema.String,
  frames_sent: Schema.Number,
  conflated_messages: Schema.Number,
  events_published: Schema.Number,
  cluster: Schema.optional(ClusterStats),
})
export type Stats = typeof Stats.Type

export const ConnectionInfo = Schema.Struct({
  connection_id: Schema.String,
  user_id: Schema.NullOr(Schema.String),
  session_id: Schema.String,
  connected_at: Schema.String,
  subscriptions: SubscriptionSet,
  message_count: Schema.Number,
  last_activity: Schema.String,
  /** Messages waiting in the connection's outbox. */
  queued_messages: Schema.Number,
  /** Bytes written to the socket but not yet sent (backpressure). */
  buffered_bytes: Schema.Number,
})

export const IngestRequest = Schema.Struct({ events: Schema.Array(Schema.Unknown) })
export const IngestAccepted = Schema.Struct({ accepted: Schema.Number })

export class IngestRejected extends Schema.TaggedError<IngestRejected>()(
  "IngestRejected",
  {
    message: Schema.String,
    /** The first INGEST_MAX_REPORTED_REJECTIONS rejections; `rejected_count` counts them all. */
    rejected: Schema.Array(Schema.Struct({ index: Schema.Number, reason: Schema.String })),
    rejected_count: Schema.Number,
  },
  HttpApiSchema.annotations({ status: 400 }),
) {}

/** More events in one request than INGEST_MAX_EVENTS; nothing was validated or published. */
export class IngestTooLarge extends Schema.TaggedError<IngestTooLarge>()(
  "IngestTooLarge",
  { message: Schema.String, max_events: Schema.Number },
  HttpApiSchema.annotations({ status: 413 }),
) {}

/**
 * Answers of the request-body limits (`bodyLimits.ts`), given before any endpoint runs, so any
 * endpoint may answer them: declared here so that `/docs` lists them.
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { message: Schema.String },
  HttpApiSchema.annotations({
    status: 413,
    description:
      "The body exceeds HTTP_MAX_BODY_BYTES (ingest: INGEST_MAX_BODY_BYTES) or holds a JSON array longer than any legal value; the body is not read",
  }),
) {}

export class InvalidJson extends Schema.TaggedError<InvalidJson>()(
  "InvalidJson",
  { message: Schema.String },
  HttpApiSchema.annotations({
    status: 400,
    description:
      "Malformed JSON, or nested deeper than HTTP_MAX_JSON_DEPTH, or an object with more than HTTP_MAX_JSON_OBJECT_MEMBERS members",
  }),
) {}

export class ServerBusy extends Schema.TaggedError<ServerBusy>()(
  "ServerBusy",
  { message: Schema.String },
  HttpApiSchema.annotations({
    status: 503,
    description:
      "Request bodies in flight have reached HTTP_BODY_BUDGET_BYTES, or this address's share of it; retry after the Retry-After header",
  }),
) {}

export const AlertRequest = Schema.Struct({
  code: Schema.String,
  alert_type: AlertType,
  threshold: Schema.Number.pipe(Schema.finite()),
})

export const Alert = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  code: Schema.String,
  alert_type: AlertType,
  threshold: Schema.Number,
  status: Schema.Literal("active", "fired"),
  created_at: Schema.String,
  fired_at: Schema.NullOr(Schema.String),
})
export type Alert = typeof Alert.Type

export class InvalidAlert extends Schema.TaggedError<InvalidAlert>()(
  "InvalidAlert",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 }),
) {}

/**
 * The user holds MAX_ALERTS_PER_USER alerts (active, or fired within 7 days). 429, like every
 * per-client limit of the protocol: the request is fine, the client has too much of something;
 * deleting alerts (fired ones included) makes room.
 */
export class TooManyAlerts extends Schema.TaggedError<TooManyAlerts>()(
  "TooManyAlerts",
  { message: Schema.String, limit: Schema.Number },
  HttpApiSchema.annotations({ status: 429 }),
) {}

export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()(
  "StoreUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 }),
) {}

export class AlertNotFound extends Schema.TaggedError<AlertNotFound>()(
  "AlertNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 }),
) {}

export const Me = Schema.Struct({
  user_id: Schema.String,
  role: Schema.NullOr(Schema.String),
  expires_at: Schema.NullOr(Schema.String),
})

export class PublicGroup extends HttpApiGroup.make("public", { topLevel: true })
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Health).addError(Unavailable))
  .add(HttpApiEndpoint.get("live", "/health/live").addSuccess(Liveness))
  .add(HttpApiEndpoint.get("stats", "/v1/ws/stats").addSuccess(Stats))
  .add(
    HttpApiEndpoint.get("metrics", "/metrics").addSuccess(
      HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }),
    ),
  )
  .add(HttpApiEndpoint.get("metricsSummary", "/v1/metrics/summary").addSuccess(MetricsSummary)) {}

export class AdminGroup extends HttpApiGroup.make("admin", { topLevel: true })
  .add(HttpApiEndpoint.get("connections", "/v1/ws/connections").addSuccess(Schema.Array(ConnectionInfo)))
  .add(
    HttpApiEndpoint.post("ingest", "/v1/ingest")
      .setPayload(IngestRequest)
      .addSuccess(IngestAccepted, { status: 202 })
      .addError(IngestRejected)
      .addError(IngestTooLarge),
  )
  .addError(Forbidden)
  .middleware(Authentication) {}

export class UserGroup extends HttpApiGroup.make("user", { topLevel: true })
  .add(HttpApiEndpoint.get("me", "/api/v1/users/me").addSuccess(Me))
  .add(
    HttpApiEndpoint.post("createAlert", "/v1/alerts")
      .setPayload(AlertRequest)
      .addSuccess(Alert, { status: 201 })
      .addError(InvalidAlert)
      .addError(TooManyAlerts),
  )
  .add(HttpApiEndpoint.get("listAlerts", "/v1/alerts").addSuccess(Schema.Array(Alert)))
  .add(
    HttpApiEndpoint.del("deleteAlert", "/v1/alerts/:id")
      .setPath(Schema.Struct({ id: Schema.String }))
      .addSuccess(HttpApiSchema.NoContent)
      .addError(AlertNotFound),
  )
  .addError(StoreUnavailable)
  .middleware(Authentication) {}

// ---- candles (docs/market-data.md "Candles") ----

export const CandleQuery = Schema.Struct({
  interval: Schema.optionalWith(CandleInterval, { default: () => "1m" as const }).annotations({
    description: "Bar length: 1m, 5m, 15m, 1h or 1d (default 1m).",
  }),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive())).annotations({
    description:
      "Closed bars to return, the most recent ones: 1 to CANDLE_HISTORY_BARS (default CANDLE_SNAPSHOT_BARS).",
  }),
})

export const CandleHistoryBody = Schema.Struct({
  code: Schema.String,
  interval: CandleInterval,
  bars: Schema.Array(Candle).annotations({ description: "Closed bars, oldest first." }),
  current: Schema.NullOr(Candle).annotations({ description: "The bar in progress; null when none." }),
})

export class InvalidCandleQuery extends Schema.TaggedError<InvalidCandleQuery>()(
  "InvalidCandleQuery",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 }),
) {}

export class UnknownInstrument extends Schema.TaggedError<UnknownInstrument>()(
  "UnknownInstrument",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 }),
) {}

export class CandlesUnavailable extends Schema.TaggedError<CandlesUnavailable>()(
  "CandlesUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({
    status: 503,
    description: "The candle history could not be read (Redis down); retry",
  }),
) {}

/** Public, like the stream's market data: a chart's first paint. */
export class CandlesGroup extends HttpApiGroup.make("candles", { topLevel: true }).add(
  HttpApiEndpoint.get("candles", "/v1/candles/:code")
    .setPath(Schema.Struct({ code: Schema.String }))
    .setUrlParams(CandleQuery)
    .addSuccess(CandleHistoryBody)
    .addError(InvalidCandleQuery)
    .addError(UnknownInstrument)
    .addError(CandlesUnavailable),
) {}

export class QuotecastApi extends HttpApi.make("quotecast")
  .add(PublicGroup)
  .add(CandlesGroup)
  .add(AdminGroup)
  .add(UserGroup)
  .addError(PayloadTooLarge)
  .addError(InvalidJson)
  .addError(ServerBusy)
  .annotate(OpenApi.Title, "quotecast HTTP API")
  .annotate(
    OpenApi.Description,
    "Stats, admin, ingest and alerts for the quotecast market-data gateway. The stream itself is WS /v1/ws.",
  ) {}
