/**
 * The benchmark feed, identical in every server: quotecast's own SimulatorEngine (seeded random
 * walk on the KRX tick grid), restricted to the benchmark's codes, without order books, so one
 * trade tick is exactly one `price_update` for each subscriber of its code. Every server runs it
 * in-process on the same 25 ms grouping (the simulator's), so no server pays for an ingest hop
 * the others do not.
 */
import { Option } from "effect"
import { SimulatorEngine } from "../../src/feed/simulator/SimulatorEngine.js"
import { makeUniverse, type UniverseShape } from "../../src/market/Universe.js"
import { type MarketStateShape, makeMarketState } from "../../src/pipeline/MarketState.js"
import type { MarketEvent } from "../../src/protocol/server.js"

/** Fixed so every server and every run sees the same price path. */
export const FEED_SEED = 20_240_501

/** The benchmark codes: the first N codes of the shipped universe (all real, all known to quotecast). */
export const benchCodes = (universe: UniverseShape, n: number): ReadonlyArray<string> =>
  universe.instruments.slice(0, n).map((i) => i.code)

export interface FeedSettings {
  /** Trade ticks per second over the benchmark codes. */
  readonly rate: number
  /** How many codes trade (and are subscribed to). */
  readonly codes: number
}

/** Reads the feed settings every bench server receives from the harness. */
export const feedSettingsFromEnv = (): FeedSettings => ({
  rate: Number(process.env.BENCH_FEED_RATE ?? "200"),
  codes: Number(process.env.BENCH_CODES ?? "200"),
})

export const makeBenchEngine = (
  universe: UniverseShape,
  state: MarketStateShape,
  settings: FeedSettings,
): SimulatorEngine =>
  new SimulatorEngine(universe, state, {
    seed: FEED_SEED,
    rate: settings.rate,
    books: false,
    // The plain random walk: a day's jumps and VIs would send quotecast `instrument_status`
    // messages that the baselines have no use for, and the servers must carry the same load.
    dayShape: false,
    codes: benchCodes(universe, settings.codes),
  })

/** A standalone universe and state for the baselines (quotecast uses its own services). */
export const standaloneMarket = (): {
  readonly universe: UniverseShape
  readonly state: MarketStateShape
} => {
  const universe = makeUniverse(Option.none())
  return { universe, state: makeMarketState(universe) }
}

const alwaysOpen = (): boolean => true

/**
 * The baselines' feed loop: every `engine.intervalMs` the ticks owed since the last call, the
 * same grouping quotecast's simulator uses. Returns a stop function.
 */
export const startFeedLoop = (
  engine: SimulatorEngine,
  publish: (events: ReadonlyArray<MarketEvent>) => void,
): (() => void) => {
  engine.advance(Date.now(), alwaysOpen) // sets the engine's clock: the first group is not a burst
  const timer = setInterval(() => {
    const events = engine.advance(Date.now(), alwaysOpen)
    if (events.length > 0) publish(events)
  }, engine.intervalMs)
  return () => clearInterval(timer)
}

/** Code of a market event's topic, for the baselines (all bench events are stock price updates). */
export const codeOf = (e: MarketEvent): string | undefined =>
  e.type === "price_update" || e.type === "orderbook_update" ? e.code : undefined
