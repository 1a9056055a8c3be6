/**
 * Market events that entered the pipeline on other instances (cluster mode). Each instance
 * publishes its events on its own pipeline only; the parts of the market domain that need every
 * event cluster-wide (the market clock's statuses, the sector aggregator's dirty set; MarketState
 * is kept in step by the cluster layer itself) also follow these. Embedded mode (the default
 * value): there are no other instances.
 *
 * A `Context.Reference`, so the market domain needs nothing extra in embedded mode and tests.
 */
import { Context, Effect, type Scope } from "effect"
import type { MarketEvent } from "../protocol/server.js"

export type RemoteObserver = (events: ReadonlyArray<MarketEvent>) => Effect.Effect<void>

export interface ClusterFeedShape {
  /**
   * Calls `observer` with the cluster's current state first (the latest event of every snapshot
   * key this instance knows), then with every batch of events that entered on another instance,
   * in arrival order, for the lifetime of the scope.
   */
  readonly followRemote: (observer: RemoteObserver) => Effect.Effect<void, never, Scope.Scope>
}

export const noRemote: ClusterFeedShape = { followRemote: () => Effect.void }

export class ClusterFeed extends Context.Reference<ClusterFeed>()("quotecast/ClusterFeed", {
  defaultValue: (): ClusterFeedShape => noRemote,
}) {}
