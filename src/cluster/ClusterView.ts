/**
 * What this instance knows about its peers, for the `cluster` section of `/v1/ws/stats`.
 * Embedded mode has no peers; cluster mode publishes heartbeats through Redis (`RedisClusterView.ts`).
 */
import { Context, Effect, Layer, Option } from "effect"
import type { ClusterStats } from "../http/Api.js"

export interface LocalTotals {
  readonly active_connections: number
  readonly total_subscriptions: number
  readonly messages_sent: number
}

export interface ClusterViewShape {
  readonly snapshot: (local: LocalTotals) => Effect.Effect<Option.Option<typeof ClusterStats.Type>>
}

export class ClusterView extends Context.Tag("quotecast/ClusterView")<ClusterView, ClusterViewShape>() {
  static readonly embedded = Layer.succeed(ClusterView, { snapshot: () => Effect.succeed(Option.none()) })
}
