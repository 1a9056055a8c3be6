/**
 * Cluster mode (REDIS_URL set): the same services as `EmbeddedLive` in `Gateway.ts` (Broker,
 * SnapshotStore, SessionStore, AlertStore, Takeover, ClusterView, CandleStore), implemented over Redis, plus
 * the two market-domain references that differ between modes: FeedLeadership (a Redis lease
 * instead of "always") and ClusterFeed (events that entered on other instances).
 *
 * Needs what the gateway's base layer provides: AppConfig, InstanceId, Registry, GatewayStats,
 * MarketState and Universe. One RedisClient (two connections) is shared by everything here.
 */
import { Layer } from "effect"
import { RedisAlertStoreLive } from "../cluster/RedisAlertStore.js"
import { RedisBrokerLive } from "../cluster/RedisBroker.js"
import { RedisCandleStoreLive } from "../cluster/RedisCandleStore.js"
import { RedisClientLive } from "../cluster/RedisClient.js"
import { RedisClusterViewLive } from "../cluster/RedisClusterView.js"
import { LeadershipLive } from "../cluster/RedisLeadership.js"
import { RedisSessionStoreLive } from "../cluster/RedisSessionStore.js"
import { RedisSnapshotsLive } from "../cluster/RedisSnapshots.js"
import { RedisTakeoverLive } from "../cluster/RedisTakeover.js"

export const ClusterLive = Layer.mergeAll(
  RedisBrokerLive,
  RedisSnapshotsLive,
  RedisTakeoverLive.pipe(Layer.provideMerge(RedisSessionStoreLive)),
  RedisAlertStoreLive,
  RedisClusterViewLive,
  LeadershipLive,
  RedisCandleStoreLive,
).pipe(Layer.provide(RedisClientLive))
