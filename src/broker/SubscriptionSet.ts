/**
 * A connection's topic memberships as one resource, the way a FiberSet holds fibers: acquired
 * once in the connection's Scope, topics join and leave it one by one, and closing the Scope
 * leaves every topic still joined. One Set entry per topic instead of a child Scope per topic:
 * a connection with 20 subscriptions keeps about 60 KB less.
 */
import { Effect, type Scope } from "effect"
import type { BrokerShape } from "./Broker.js"
import type { Sink } from "./TopicHub.js"
import type { Topic } from "./topics.js"

export class SubscriptionSet {
  private readonly topics = new Set<Topic>()

  private constructor(
    private readonly broker: BrokerShape,
    private readonly sink: Sink,
  ) {}

  static make(broker: BrokerShape, sink: Sink): Effect.Effect<SubscriptionSet, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.sync(() => new SubscriptionSet(broker, sink)),
      (set) => Effect.sync(() => set.leaveAll()),
    )
  }

  has(topic: Topic): boolean {
    return this.topics.has(topic)
  }

  keys(): ReadonlyArray<Topic> {
    return [...this.topics]
  }

  join(topic: Topic): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.topics.has(topic)) return Effect.void
      // Recorded first, so a join interrupted while waiting upstream is still left on release.
      this.topics.add(topic)
      return this.broker.join(topic, this.sink)
    })
  }

  leave(topic: Topic): void {
    if (this.topics.delete(topic)) this.broker.leave(topic, this.sink)
  }

  private leaveAll(): void {
    for (const topic of this.topics) this.broker.leave(topic, this.sink)
    this.topics.clear()
  }
}
