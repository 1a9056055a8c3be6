/**
 * The market-data domain as one Layer: market clock, state sync, simulator (when FEED=simulator)
 * and sector aggregation. Needs AppConfig, Universe, MarketState and MarketPipeline; provides
 * MarketClock (the HTTP ingest handler and health checks may want it).
 */
import { Layer } from "effect"
import { MarketStateSyncLive } from "../pipeline/MarketState.js"
import { MarketClockLive } from "./MarketClock.js"
import { SectorAggregatorLive } from "./SectorAggregator.js"
import { SimulatorLive } from "./Simulator.js"

/**
 * State sync first, so ingested events reach MarketState before anything reads it; the clock
 * next, so its startup statuses precede the simulator's first prices.
 */
export const FeedLive = Layer.mergeAll(SimulatorLive, SectorAggregatorLive).pipe(
  Layer.provideMerge(MarketClockLive),
  Layer.provideMerge(MarketStateSyncLive),
)
