/**
 * Cluster mode (REDIS_URL set): the same services as `EmbeddedLive` in `Gateway.ts` (Broker,
 * SnapshotStore, SessionStore, AlertStore, Takeover, ClusterView), implemented over Redis, plus
 * the two market-domain references that differ between modes: FeedLeadership (a Redis lease
 * instead of "always") and ClusterFeed (events that entered on other instances).
 *
 * Needs what the gateway's base layer provides: AppConfig, InstanceId, Registry, GatewayStats,
 * MarketState and Universe. One RedisClient (two connections) is shared by everything here.
 */
import { Layer } from "effect"
import { LeadershipLive } from "./Leadership.js"
import { RedisAlertStoreLive } from "./RedisAlertStore.js"
import { RedisBrokerLive } from "./RedisBroker.js"
import { RedisClientLive } from "./RedisClient.js"
import { RedisClusterViewLive } from "./RedisClusterView.js"
import { RedisSessionStoreLive } from "./RedisSessionStore.js"
import { RedisSnapshotsLive } from "./RedisSnapshots.js"
import { RedisTakeoverLive } from "./RedisTakeover.js"

export const ClusterLive = Layer.mergeAll(
  RedisBrokerLive,
  RedisSnapshotsLive,
  RedisTakeoverLive.pipe(Layer.provideMerge(RedisSessionStoreLive)),
  RedisAlertStoreLive,
  RedisClusterViewLive,
  LeadershipLive,
).pipe(Layer.provide(RedisClientLive))
