/**
 * What this instance knows about its mode and its peers, for `/health` and the `cluster` section
 * of `/v1/ws/stats`. Embedded mode has no peers; cluster mode publishes heartbeats through Redis
 * (`cluster/RedisClusterView.ts`). The mode Layer provides it, so HTTP reports the mode without
 * knowing how it was chosen.
 */
import { Context, Effect, Layer, Option } from "effect"
import type { ClusterStats } from "./Api.js"

export interface LocalTotals {
  readonly active_connections: number
  readonly total_subscriptions: number
  readonly messages_sent: number
}

export interface ClusterViewShape {
  /** The mode this instance runs in, as `/health` reports it. */
  readonly mode: "embedded" | "cluster"
  readonly snapshot: (local: LocalTotals) => Effect.Effect<Option.Option<typeof ClusterStats.Type>>
}

export class ClusterView extends Context.Tag("quotecast/ClusterView")<ClusterView, ClusterViewShape>() {
  static readonly embedded = Layer.succeed(ClusterView, {
    mode: "embedded",
    snapshot: () => Effect.succeed(Option.none()),
  })
}
