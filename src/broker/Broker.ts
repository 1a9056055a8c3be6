/**
 * The Broker carries serialized messages from where an event enters (simulator, ingest, alert
 * engine) to every subscribed connection. Embedded mode: an in-process hub. Cluster mode:
 * Redis Pub/Sub in front of the same hub (`RedisBroker.ts`). Which one runs is a Layer choice.
 */
import { Context, Effect, Layer } from "effect"
import type { Outgoing } from "../protocol/encode.js"
import type { Topic } from "../protocol/topics.js"
import { type Sink, TopicHub } from "./TopicHub.js"

export interface BrokerShape {
  /** Sends a message to every subscriber of `topic`, on every instance. */
  readonly publish: (topic: Topic, msg: Outgoing) => Effect.Effect<void>
  /**
   * `publish` for several messages, in order. In cluster mode what goes to other instances
   * leaves in one write before local delivery starts, so their subscribers do not wait for this
   * instance's own fan-out (the pipeline publishes a simulator group or an ingest request so).
   */
  readonly publishAll: (messages: ReadonlyArray<Published>) => Effect.Effect<void>
  /**
   * Adds a local sink to a topic. In cluster mode the first local sink of a topic subscribes
   * upstream, and this waits (bounded) for that, so a snapshot read afterwards misses nothing.
   */
  readonly join: (topic: Topic, sink: Sink) => Effect.Effect<void>
  /** Removes a local sink from a topic; the last one leaving unsubscribes upstream. */
  readonly leave: (topic: Topic, sink: Sink) => void
  /** Number of topics with at least one local subscriber. */
  readonly localTopicCount: () => number
  /** Health of the transport: undefined when healthy, else the reason (`down: ...`, `recovering ...`). */
  readonly degraded: Effect.Effect<string | undefined>
}

/** A message and the topic it is published on. */
export interface Published {
  readonly topic: Topic
  readonly msg: Outgoing
}

export class Broker extends Context.Tag("quotecast/Broker")<Broker, BrokerShape>() {}

export const makeMemoryBroker = (): BrokerShape => {
  const hub = new TopicHub()
  return {
    publish: (topic, msg) =>
      Effect.sync(() => {
        hub.deliver(topic, msg)
      }),
    publishAll: (messages) =>
      Effect.sync(() => {
        for (const m of messages) hub.deliver(m.topic, m.msg)
      }),
    join: (topic, sink) =>
      Effect.sync(() => {
        hub.add(topic, sink)
      }),
    leave: (topic, sink) => {
      hub.remove(topic, sink)
    },
    localTopicCount: () => hub.topicCount,
    degraded: Effect.succeed(undefined),
  }
}

export const MemoryBrokerLive = Layer.sync(Broker, makeMemoryBroker)
