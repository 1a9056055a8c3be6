/**
 * The one place that chooses the mode: REDIS_URL set means cluster mode over Redis. Everything
 * else receives the mode's services (and `ClusterView.mode` for reports) and never branches on it.
 */
import { Effect, Layer, Option } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { ClusterLive } from "./ClusterLive.js"
import { EmbeddedLive } from "./EmbeddedLive.js"

export const modeLayer = Layer.unwrapEffect(
  Effect.map(AppConfig, (c) => (Option.isSome(c.redisUrl) ? ClusterLive : EmbeddedLive)),
)
