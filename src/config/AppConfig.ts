/**
 * Configuration from the environment, with the names and defaults of docs/protocol.md "Limits" and docs/limits.md.
 * An invalid value fails startup with a ConfigError naming the variable and what it accepts.
 */
import { isIP } from "node:net"
import { Config, Context, Effect, Either, Layer, Option } from "effect"
import { invalidProxyEntries } from "../net/addresses.js"
import { candleConfig } from "./candleConfig.js"
import { jwtFields, resolveJwt } from "./jwtConfig.js"

const positiveInt = (name: string, def: number) =>
  Config.integer(name).pipe(
    Config.withDefault(def),
    Config.validate({ message: `${name} must be a positive integer`, validation: (n) => n > 0 }),
  )

const nonNegativeInt = (name: string, def: number) =>
  Config.integer(name).pipe(
    Config.withDefault(def),
    Config.validate({ message: `${name} must be an integer of at least 0`, validation: (n) => n >= 0 }),
  )

/** An integer from `min` to `max`, both included. */
const intFromTo = (name: string, def: number, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.withDefault(def),
    Config.validate({
      message: `${name} must be an integer from ${min} to ${max}`,
      validation: (n) => n >= min && n <= max,
    }),
  )

const percent = (name: string, def: number) => intFromTo(name, def, 1, 100)

const port = (name: string, def: number) => intFromTo(name, def, 0, 65535)

const onOff = (name: string, def: boolean) =>
  Config.string(name).pipe(
    Config.withDefault(def ? "on" : "off"),
    Config.validate({
      message: `${name} must be one of on, off, true, false, 1, 0`,
      validation: (s) => ["on", "off", "true", "false", "1", "0"].includes(s.toLowerCase()),
    }),
    Config.map((s) => ["on", "true", "1"].includes(s.toLowerCase())),
  )

const oneOf = <const A extends string>(name: string, values: ReadonlyArray<A>, def: A) =>
  Config.string(name).pipe(
    Config.withDefault(def),
    Config.validate({
      message: `${name} must be one of ${values.join(", ")}`,
      validation: (s): s is A => (values as ReadonlyArray<string>).includes(s),
    }),
    Config.map((s) => s as A),
  )

/** An RFC 1123 host name (labels of letters, digits and inner hyphens), as `listen` resolves it. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

/** What ioredis connects to from a URL: redis:// or rediss:// (TLS), with a host. */
const isRedisUrl = (s: string): boolean => {
  if (!URL.canParse(s)) return false
  const url = new URL(s)
  return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== ""
}

const fields = Config.all({
  port: port("PORT", 8000),
  host: Config.string("HOST").pipe(
    Config.withDefault("0.0.0.0"),
    Config.validate({
      message: "HOST must be an IP address or a host name (0.0.0.0, ::, 127.0.0.1, localhost)",
      validation: (s) => isIP(s) !== 0 || HOST_NAME.test(s),
    }),
  ),
  redisUrl: Config.option(
    Config.string("REDIS_URL").pipe(
      Config.validate({
        message:
          "REDIS_URL must be a redis:// or rediss:// URL with a host (redis://[user:password@]host[:port][/db])",
        validation: isRedisUrl,
      }),
    ),
  ),
  redisPrefix: Config.string("REDIS_PREFIX").pipe(Config.withDefault("quotecast:")),
  // Token verification (JWT_*): docs/tokens.md, config/jwtConfig.ts.
  ...jwtFields,
  batching: onOff("BATCHING", true),
  batchIntervalMs: positiveInt("BATCH_INTERVAL_MS", 30),
  rateLimit: positiveInt("RATE_LIMIT", 100),
  maxSubscriptions: positiveInt("MAX_SUBSCRIPTIONS", 200),
  sessionTtlS: positiveInt("SESSION_TTL_S", 300),
  maxPayloadBytes: positiveInt("MAX_PAYLOAD_BYTES", 65536),
  feed: oneOf("FEED", ["simulator", "none"] as const, "simulator"),
  feedRate: positiveInt("FEED_RATE", 200),
  feedSeed: Config.option(Config.integer("FEED_SEED")),
  // Beyond the original API document: off, a simulated trade is one price_update without its orderbook_update
  // (the benchmark feeds every server one message per tick; docs/performance.md).
  feedBooks: onOff("FEED_BOOKS", true),
  marketClock: oneOf("MARKET_CLOCK", ["always_open", "krx"] as const, "always_open"),
  universeSize: Config.option(positiveInt("UNIVERSE_SIZE", 1)),
  allowedOrigins: Config.option(Config.string("ALLOWED_ORIGINS")).pipe(
    Config.map(
      Option.map((s) =>
        s
          .split(",")
          .map((o) => o.trim())
          .filter((o) => o.length > 0),
      ),
    ),
  ),
  // Beyond the original API document: operational knobs with production defaults (README "Configuration").
  heartbeatIntervalMs: positiveInt("HEARTBEAT_INTERVAL_MS", 15_000),
  sendBufferLimitBytes: positiveInt("SEND_BUFFER_LIMIT_BYTES", 1_048_576),
  slowConsumerTimeoutMs: positiveInt("SLOW_CONSUMER_TIMEOUT_MS", 10_000),
  flushSliceMs: nonNegativeInt("FLUSH_SLICE_MS", 0),
  shutdownGraceMs: positiveInt("SHUTDOWN_GRACE_MS", 2_000),
  compression: onOff("COMPRESSION", true),
  // Cluster mode: the simulator leader's lease in Redis (failover takes up to about 4/3 of it).
  leaderLeaseMs: Config.integer("LEADER_LEASE_MS").pipe(
    Config.withDefault(3_000),
    Config.validate({
      message: "LEADER_LEASE_MS must be an integer of at least 500",
      validation: (n) => n >= 500,
    }),
  ),
  logLevel: oneOf("LOG_LEVEL", ["debug", "info", "warning", "error", "none"] as const, "info"),
  // ---- Limits (docs/limits.md): every one has a default and a variable. ----
  // Limits: HTTP requests and connection admission.
  // Bodies over the limit get 413 without being read; ingest has its own, larger one.
  httpMaxBodyBytes: positiveInt("HTTP_MAX_BODY_BYTES", 65_536),
  ingestMaxBodyBytes: positiveInt("INGEST_MAX_BODY_BYTES", 1_048_576),
  // All request bodies held at once (503 past it), so many concurrent bodies cannot exhaust the heap.
  httpBodyBudgetBytes: positiveInt("HTTP_BODY_BUDGET_BYTES", 67_108_864),
  // The most of that budget the requests of one client address may hold at once (a quarter).
  httpBodyBudgetPerAddressBytes: positiveInt("HTTP_BODY_BUDGET_PER_ADDRESS_BYTES", 16_777_216),
  httpMaxJsonDepth: positiveInt("HTTP_MAX_JSON_DEPTH", 32),
  httpMaxJsonObjectMembers: positiveInt("HTTP_MAX_JSON_OBJECT_MEMBERS", 100),
  ingestMaxEvents: positiveInt("INGEST_MAX_EVENTS", 1_000),
  ingestMaxReportedRejections: positiveInt("INGEST_MAX_REPORTED_REJECTIONS", 20),
  // Connections waiting to be accepted (the kernel caps it at net.core.somaxconn). Short on
  // purpose: in a reconnect storm a connection waits there (backlog / accept rate) unseen, and a
  // wait longer than clients' connect timeout makes every accept a dead one (docs/limits.md).
  listenBacklog: positiveInt("LISTEN_BACKLOG", 511),
  // A socket that has not sent complete request headers (HTTP or upgrade) by then is closed (408).
  handshakeTimeoutMs: positiveInt("HANDSHAKE_TIMEOUT_MS", 5_000),
  httpRequestTimeoutMs: positiveInt("HTTP_REQUEST_TIMEOUT_MS", 30_000),
  httpKeepAliveTimeoutMs: positiveInt("HTTP_KEEP_ALIVE_TIMEOUT_MS", 5_000),
  // Unset: 80% of the process's open-file limit, at most 50,000 (http/admission.ts).
  wsMaxConnections: Config.option(
    Config.integer("WS_MAX_CONNECTIONS").pipe(
      Config.validate({ message: "WS_MAX_CONNECTIONS must be a positive integer", validation: (n) => n > 0 }),
    ),
  ),
  wsMaxConnectionsPerAddress: positiveInt("WS_MAX_CONNECTIONS_PER_ADDRESS", 200),
  wsConnectRatePerAddress: positiveInt("WS_CONNECT_RATE_PER_ADDRESS", 20),
  wsConnectBurstPerAddress: positiveInt("WS_CONNECT_BURST_PER_ADDRESS", 100),
  // TCP connections of any kind (WebSocket, HTTP, not yet either) per client address.
  tcpMaxConnectionsPerAddress: positiveInt("TCP_MAX_CONNECTIONS_PER_ADDRESS", 300),
  // Comma list of IPs and CIDRs (IPv4, IPv6) whose X-Forwarded-For is believed.
  trustedProxies: Config.string("TRUSTED_PROXIES").pipe(
    Config.withDefault(""),
    Config.validate({
      message: "TRUSTED_PROXIES must be a comma list of IPv4/IPv6 addresses and CIDRs (10.0.0.0/8, fd00::/8)",
      validation: (s) => invalidProxyEntries(s).length === 0,
    }),
  ),
  // Limits: WebSocket input (decoding cost, nesting, rate charged by cost).
  // Shape of a client frame, checked before JSON.parse (a legal message is 2 deep, has at most 3 fields
  // and its longest array is 100 targets).
  wsJsonLimits: Config.all({
    maxDepth: positiveInt("WS_MAX_JSON_DEPTH", 8),
    maxArrayItems: positiveInt("WS_MAX_ARRAY_ITEMS", 100),
    maxObjectMembers: positiveInt("WS_MAX_OBJECT_MEMBERS", 32),
  }),
  // A frame costs one RATE_LIMIT token per started this many characters (every legal message fits in one).
  wsFrameCostBytes: positiveInt("WS_FRAME_COST_BYTES", 4096),
  // Client frames waiting for their connection's actor (busy restoring, reading snapshots); over it: 1008.
  wsMaxQueuedInputBytes: positiveInt("WS_MAX_QUEUED_INPUT_BYTES", 1_048_576),
  // ...and in count: far past any rate limit, a flood.
  wsMaxQueuedInputFrames: positiveInt("WS_MAX_QUEUED_INPUT_FRAMES", 1024),
  // Messages that cannot be conflated (alerts, statuses, answers) waiting for one reader; over it: 1013.
  slowConsumerMaxQueuedMessages: positiveInt("SLOW_CONSUMER_MAX_QUEUED_MESSAGES", 5000),
  // How long a restore waits for the session's current holder to let go before claiming it anyway.
  sessionTakeoverWaitMs: positiveInt("SESSION_TAKEOVER_WAIT_MS", 5000),
  // Extra tokens charged for a frame answered INVALID_MESSAGE.
  wsInvalidFrameCost: nonNegativeInt("WS_INVALID_FRAME_COST", 4),
  // Limits: per user (alerts, saved sessions) and anonymous sessions.
  // A user's alerts, active or fired (a fired one stays listed 7 days); one more gets 429.
  maxAlertsPerUser: positiveInt("MAX_ALERTS_PER_USER", 500),
  // Saved (disconnected) sessions per user; beyond it the oldest saved one is dropped.
  maxSessionsPerUser: positiveInt("MAX_SESSIONS_PER_USER", 20),
  // Saved anonymous sessions per client address (IPv6: per /64); beyond it the oldest saved one is dropped.
  maxAnonymousSessionsPerAddress: positiveInt("MAX_ANONYMOUS_SESSIONS_PER_ADDRESS", 100),
  // Saved anonymous sessions of all addresses together; beyond it the oldest saved one is dropped.
  maxAnonymousSessions: positiveInt("MAX_ANONYMOUS_SESSIONS", 100_000),
  // Limits: outbound memory across all connections.
  // Socket send queues plus outboxes, all connections; over it the worst are conflated, then closed 1013.
  outboundBudgetBytes: positiveInt("OUTBOUND_BUDGET_BYTES", 268_435_456),
  // Share of the budget (%) up to which a subscribe's snapshots are queued at once; beyond it they wait for room.
  outboundAnswerSharePercent: percent("OUTBOUND_ANSWER_SHARE_PERCENT", 50),
  // A frame up to this size for a socket that holds nothing is written without asking the budget.
  outboundFreeWriteBytes: positiveInt("OUTBOUND_FREE_WRITE_BYTES", 16_384),
  // Per flush pass, how long frames over OUTBOUND_FREE_WRITE_BYTES may be written; the rest go first in the next pass.
  flushLargeFramesMs: positiveInt("FLUSH_LARGE_FRAMES_MS", 30),
  // Limits: reconnect storms (admission of connection setups).
  setupConcurrency: positiveInt("SETUP_CONCURRENCY", 32),
  // Time per event-loop turn spent starting setups (connection/Admission.ts).
  setupTurnBudgetMs: positiveInt("SETUP_TURN_BUDGET_MS", 2),
  admissionQueue: nonNegativeInt("ADMISSION_QUEUE", 20_000),
  admissionWaitMs: positiveInt("ADMISSION_WAIT_MS", 8_000),
  // ---- Cluster reliability (docs/reliability.md). ----
  // How often changed sessions (subscriptions, reserved sequence numbers) are written to Redis.
  sessionPersistIntervalMs: positiveInt("SESSION_PERSIST_INTERVAL_MS", 250),
  // Sequence numbers reserved in Redis ahead of use: the most a restore after a crash jumps by.
  sessionSequenceBlock: Config.integer("SESSION_SEQUENCE_BLOCK").pipe(
    Config.withDefault(100_000),
    Config.validate({
      message: "SESSION_SEQUENCE_BLOCK must be an integer of at least 1000",
      validation: (n) => n >= 1000,
    }),
  ),
  // User messages (alerts) kept, delivered locally, while their publish through Redis fails: past it the oldest is dropped.
  unsentUserMessagesMax: positiveInt("UNSENT_USER_MESSAGES_MAX", 10_000),
  // Candles (CANDLE_*): config/candleConfig.ts.
  candles: candleConfig,
})

/** The variables, each valid alone and the JWT ones valid together. */
export const appConfig = fields.pipe(Config.mapOrFail((c) => Either.map(resolveJwt(c), () => c)))

export type AppConfigShape = Config.Config.Success<typeof appConfig>

export class AppConfig extends Context.Tag("quotecast/AppConfig")<AppConfig, AppConfigShape>() {
  /** Reads the environment once at startup. */
  static readonly layer = Layer.effect(AppConfig, appConfig)
  /** A config built from explicit values (tests, embedded use); unspecified fields take the defaults. */
  static readonly layerWith = (overrides: Partial<AppConfigShape>) =>
    Layer.effect(
      AppConfig,
      Effect.map(appConfig, (c) => ({ ...c, ...overrides })),
    )
}
