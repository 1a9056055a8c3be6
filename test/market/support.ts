import { Effect, Layer, Option } from "effect"
import { makeUniverse, Universe, type UniverseShape } from "../../src/market/Universe.js"
import { MarketPipeline, type MarketPipelineShape, type Observer } from "../../src/pipeline/MarketPipeline.js"
import { MarketState, makeMarketState } from "../../src/pipeline/MarketState.js"
import type { MarketEvent } from "../../src/protocol/server.js"

/** A MarketPipeline that records what is published and runs observers, without broker or snapshots. */
export const makeRecordingPipeline = () => {
  const published: Array<MarketEvent> = []
  const observers = new Set<Observer>()
  const shape: MarketPipelineShape = {
    publish: (events) =>
      Effect.gen(function* () {
        for (const e of events) published.push(e)
        for (const o of observers) yield* o(events)
      }),
    observe: (observer) =>
      Effect.acquireRelease(
        Effect.sync(() => observers.add(observer)),
        () => Effect.sync(() => observers.delete(observer)),
      ).pipe(Effect.asVoid),
  }
  return { published, layer: Layer.succeed(MarketPipeline, shape) }
}

export const shippedUniverse = (): UniverseShape => makeUniverse(Option.none())

/** Universe + MarketState over the shipped instruments. */
export const marketLayers = (universe: UniverseShape = shippedUniverse()) =>
  Layer.merge(Layer.succeed(Universe, universe), Layer.succeed(MarketState, makeMarketState(universe)))

export const ofType = <T extends MarketEvent["type"]>(events: ReadonlyArray<MarketEvent>, type: T) =>
  events.filter((e): e is Extract<MarketEvent, { type: T }> => e.type === type)
