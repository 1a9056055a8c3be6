/**
 * How the gateway is assembled from Layers, given a mode Layer (`mode/`): embedded and cluster
 * mode differ only in which implementations of Broker, SnapshotStore, SessionStore, AlertStore,
 * Takeover, ClusterView, CandleStore and the feed's leadership are provided; nothing else branches on it.
 */
import { FiberRef, Layer } from "effect"
import { AlertEngineLive } from "./alerts/AlertEngine.js"
import { JwtVerifier } from "./auth/JwtVerifier.js"
import { CandlesLive } from "./candles/Candles.js"
import { AppConfig, type AppConfigShape } from "./config/AppConfig.js"
import { InstanceId } from "./config/InstanceId.js"
import { FlusherLive } from "./connection/Flusher.js"
import { HeartbeatLive } from "./connection/Heartbeat.js"
import { Registry } from "./connection/Registry.js"
import { FeedLive } from "./feed/FeedLive.js"
import { HttpServerLive } from "./http/Server.js"
import { Lifecycle } from "./lifecycle/Lifecycle.js"
import { sharedScheduler } from "./lifecycle/sharedScheduler.js"
import { Universe } from "./market/Universe.js"
import { GatewayStats } from "./metrics/GatewayStats.js"
import { EmbeddedLive } from "./mode/EmbeddedLive.js"
import { MarketPipelineLive } from "./pipeline/MarketPipeline.js"
import { MarketState } from "./pipeline/MarketState.js"
import { RateLimiter } from "./ratelimit/RateLimiter.js"

const Base = Layer.mergeAll(
  Registry.layer,
  GatewayStats.layer,
  Lifecycle.layer,
  InstanceId.layer,
  RateLimiter.layer,
  Universe.layer,
)

/** The gateway, given a mode layer and the config. Exposes the listening address. */
export const gateway = <E, R>(mode: Layer.Layer<Layer.Layer.Success<typeof EmbeddedLive>, E, R>) => {
  // The token verifier counts its rejections in GatewayStats.
  const withMarket = Layer.provideMerge(Layer.merge(MarketState.layer, JwtVerifier.layer), Base)
  const withMode = Layer.provideMerge(mode, withMarket)
  const withPipeline = Layer.provideMerge(Layer.merge(MarketPipelineLive, FlusherLive), withMode)
  const features = Layer.mergeAll(HttpServerLive, FeedLive, CandlesLive, AlertEngineLive, HeartbeatLive)
  return Layer.provide(features, withPipeline).pipe(
    Layer.provideMerge(withPipeline),
    // Every fiber the gateway starts (the flush clock, the feed, fan-out, HTTP handlers) runs on
    // the scheduler that hands the event loop a turn after 20 ms of work, as connection fibers
    // do. On Effect's default one, which waits for 2,048 nested microtask drains, a slow-reader
    // storm held the event loop for 31 s: no pong, no socket read, no timer in that time.
    Layer.locally(FiberRef.currentScheduler, sharedScheduler),
  )
}

/** Test and embedding helper: the whole gateway with explicit config values. */
export const gatewayWith = (overrides: Partial<AppConfigShape>) =>
  gateway(EmbeddedLive).pipe(Layer.provide(AppConfig.layerWith(overrides)))
