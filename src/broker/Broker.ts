/**
 * The Broker carries serialized messages from where an event enters (simulator, ingest, alert
 * engine) to every subscribed connection. Embedded mode: an in-process hub. Cluster mode:
 * Redis Pub/Sub in front of the same hub (`RedisBroker.ts`). Which one runs is a Layer choice.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import type { Outgoing } from "../protocol/encode.js"
import { type Sink, TopicHub } from "./TopicHub.js"
import type { Topic } from "./topics.js"

export interface BrokerShape {
  /** Sends a message to every subscriber of `topic`, on every instance. */
  readonly publish: (topic: Topic, msg: Outgoing) => Effect.Effect<void>
  /** Registers a local sink for the lifetime of the current Scope. */
  readonly subscribe: (topic: Topic, sink: Sink) => Effect.Effect<void, never, Scope.Scope>
  /** Number of topics with at least one local subscriber. */
  readonly localTopicCount: () => number
  /** Health of the transport: undefined when healthy, else the reason. */
  readonly degraded: Effect.Effect<string | undefined>
}

export class Broker extends Context.Tag("quotecast/Broker")<Broker, BrokerShape>() {}

/** Subscribes a sink to a hub for the lifetime of the current scope. */
export const hubSubscription = (
  hub: TopicHub,
  topic: Topic,
  sink: Sink,
  onFirst: (topic: Topic) => void = () => {},
  onLast: (topic: Topic) => void = () => {},
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      if (hub.add(topic, sink)) onFirst(topic)
    }),
    () =>
      Effect.sync(() => {
        if (hub.remove(topic, sink)) onLast(topic)
      }),
  )

export const makeMemoryBroker = (): BrokerShape => {
  const hub = new TopicHub()
  return {
    publish: (topic, msg) =>
      Effect.sync(() => {
        hub.deliver(topic, msg)
      }),
    subscribe: (topic, sink) => hubSubscription(hub, topic, sink),
    localTopicCount: () => hub.topicCount,
    degraded: Effect.succeed(undefined),
  }
}

export const MemoryBrokerLive = Layer.sync(Broker, makeMemoryBroker)
