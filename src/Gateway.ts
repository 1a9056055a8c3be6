/**
 * How the gateway is assembled from Layers. Embedded and cluster mode differ only in which
 * implementations of Broker, SnapshotStore, SessionStore, AlertStore, Takeover and ClusterView
 * are provided (`EmbeddedLive` here, `ClusterLive` in `cluster/`); nothing else branches on it.
 */
import { Effect, Layer, Option } from "effect"
import { AlertEngineLive } from "./alerts/AlertEngine.js"
import { MemoryAlertStoreLive } from "./alerts/AlertStore.js"
import { JwtVerifier } from "./auth/JwtVerifier.js"
import { MemoryBrokerLive } from "./broker/Broker.js"
import { ClusterLive } from "./cluster/ClusterLive.js"
import { ClusterView } from "./cluster/ClusterView.js"
import { AppConfig, type AppConfigShape } from "./config/AppConfig.js"
import { InstanceId } from "./config/InstanceId.js"
import { FlusherLive } from "./connection/Flusher.js"
import { HeartbeatLive } from "./connection/Heartbeat.js"
import { Registry } from "./connection/Registry.js"
import { MarketPipelineLive } from "./feed/MarketPipeline.js"
import { HttpServerLive } from "./http/Server.js"
import { Lifecycle } from "./lifecycle/Lifecycle.js"
import { FeedLive } from "./market/MarketDomain.js"
import { MarketState } from "./market/MarketState.js"
import { Universe } from "./market/Universe.js"
import { GatewayStats } from "./metrics/GatewayStats.js"
import { RateLimiter } from "./ratelimit/RateLimiter.js"
import { MemorySessionStoreLive } from "./session/SessionStore.js"
import { LocalTakeoverLive } from "./session/Takeover.js"
import { MemorySnapshotStoreLive } from "./snapshot/SnapshotStore.js"

/** Single process, no external service: in-memory broker, snapshots, sessions and alerts. */
export const EmbeddedLive = Layer.mergeAll(
  MemoryBrokerLive,
  MemorySnapshotStoreLive,
  MemorySessionStoreLive,
  MemoryAlertStoreLive,
  LocalTakeoverLive,
  ClusterView.embedded,
)

const Base = Layer.mergeAll(
  Registry.layer,
  GatewayStats.layer,
  Lifecycle.layer,
  InstanceId.layer,
  RateLimiter.layer,
  JwtVerifier.layer,
  Universe.layer,
)

/** The gateway, given a mode layer and the config. Exposes the listening address. */
export const gateway = <E, R>(mode: Layer.Layer<Layer.Layer.Success<typeof EmbeddedLive>, E, R>) => {
  const withMarket = Layer.provideMerge(MarketState.layer, Base)
  const withMode = Layer.provideMerge(mode, withMarket)
  const withPipeline = Layer.provideMerge(Layer.merge(MarketPipelineLive, FlusherLive), withMode)
  const features = Layer.mergeAll(HttpServerLive, FeedLive, AlertEngineLive, HeartbeatLive)
  return Layer.provide(features, withPipeline).pipe(Layer.provideMerge(withPipeline))
}

/** The one place that chooses the mode: REDIS_URL set means cluster mode over Redis. */
export const modeLayer = Layer.unwrapEffect(
  Effect.map(AppConfig, (c) => (Option.isSome(c.redisUrl) ? ClusterLive : EmbeddedLive)),
)

/** Test and embedding helper: the whole gateway with explicit config values. */
export const gatewayWith = (overrides: Partial<AppConfigShape>) =>
  gateway(EmbeddedLive).pipe(Layer.provide(AppConfig.layerWith(overrides)))
