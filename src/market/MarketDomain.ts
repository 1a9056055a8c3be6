/**
 * The market-data domain as one Layer: market clock, state sync, simulator (when FEED=simulator)
 * and sector aggregation. Needs AppConfig, Universe, MarketState and MarketPipeline; provides
 * MarketClock (the HTTP ingest handler and health checks may want it).
 */
import { Layer } from "effect"
import { MarketClockLive } from "../feed/MarketClock.js"
import { SectorAggregatorLive } from "../feed/SectorAggregator.js"
import { SimulatorLive } from "../feed/Simulator.js"
import { MarketStateSyncLive } from "./MarketState.js"

/**
 * State sync first, so ingested events reach MarketState before anything reads it; the clock
 * next, so its startup statuses precede the simulator's first prices.
 */
export const FeedLive = Layer.mergeAll(SimulatorLive, SectorAggregatorLive).pipe(
  Layer.provideMerge(MarketClockLive),
  Layer.provideMerge(MarketStateSyncLive),
)
