/**
 * What a connection starts from: the parameters of its upgrade request, and `Env`, the services
 * every connection uses, resolved once per server (a connection holds a reference, not copies).
 */
import type { IncomingMessage } from "node:http"
import { Effect } from "effect"
import { JwtVerifier, type JwtVerifierShape } from "../auth/JwtVerifier.js"
import { Broker, type BrokerShape } from "../broker/Broker.js"
import { CandleStore, type CandleStoreShape } from "../candles/CandleStore.js"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import { InstanceId } from "../config/InstanceId.js"
import { Universe, type UniverseShape } from "../market/Universe.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { RateLimiter, type RateLimiterShape } from "../ratelimit/RateLimiter.js"
import { SessionStore, type SessionStoreShape } from "../session/SessionStore.js"
import { SnapshotStore, type SnapshotStoreShape } from "../snapshot/SnapshotStore.js"
import { Admission } from "./Admission.js"
import type { ConnLimits } from "./Conn.js"
import { Flusher, type FlusherShape } from "./Flusher.js"
import { Registry, type RegistryImpl } from "./Registry.js"
import { Takeover, type TakeoverShape } from "./Takeover.js"

export interface ConnectionParams {
  readonly token: string | undefined
  readonly sessionId: string | undefined
  readonly remoteAddress: string | undefined
  /** What the client's address counts under for per-address bounds (the address; its /64 for IPv6). */
  readonly addressKey: string | undefined
}

/**
 * `remoteAddress`: the client's address as the server resolved it (`http/clientAddress.ts`:
 * X-Forwarded-For from a trusted proxy, else the TCP peer); defaults to the TCP peer.
 */
export const paramsOf = (
  req: IncomingMessage,
  remoteAddress = req.socket.remoteAddress,
  addressKey = remoteAddress,
): ConnectionParams => {
  const url = new URL(req.url ?? "/", "http://localhost")
  const token = url.searchParams.get("token")
  const sessionId = url.searchParams.get("session_id")
  return {
    token: token === null || token === "" ? undefined : token,
    sessionId: sessionId === null || sessionId === "" ? undefined : sessionId,
    remoteAddress,
    addressKey,
  }
}

/** The services every connection uses, resolved once per server. */
export interface Env {
  readonly config: AppConfigShape
  readonly universe: UniverseShape
  readonly broker: BrokerShape
  readonly snapshots: SnapshotStoreShape
  /** Candle history, for the snapshot of a `candle` subscription. */
  readonly candles: CandleStoreShape
  readonly sessions: SessionStoreShape
  readonly takeover: TakeoverShape
  readonly jwt: JwtVerifierShape
  readonly limiter: RateLimiterShape
  readonly flusher: FlusherShape
  readonly registry: RegistryImpl
  readonly stats: GatewayStatsImpl
  readonly instanceId: string
  /** Setup slots for reconnect storms (`Admission.ts`). */
  readonly admission: Admission
  /** Every connection's queue bounds, one shared object (`Conn.limits`). */
  readonly connLimits: ConnLimits
}

export const makeEnv = Effect.all({
  config: AppConfig,
  universe: Universe,
  broker: Broker,
  snapshots: SnapshotStore,
  candles: CandleStore,
  sessions: SessionStore,
  takeover: Takeover,
  jwt: JwtVerifier,
  limiter: RateLimiter,
  flusher: Flusher,
  registry: Registry,
  stats: GatewayStats,
  instanceId: InstanceId,
  admission: Effect.map(
    Effect.all([AppConfig, GatewayStats]),
    ([config, stats]) =>
      new Admission(
        config.setupConcurrency,
        config.admissionQueue,
        config.admissionWaitMs,
        stats,
        config.setupTurnBudgetMs,
      ),
  ),
  connLimits: Effect.map(
    AppConfig,
    (config): ConnLimits => ({
      maxInboundFrames: config.wsMaxQueuedInputFrames,
      maxInboundChars: config.wsMaxQueuedInputBytes,
      maxUnkeyed: config.slowConsumerMaxQueuedMessages,
    }),
  ),
})
