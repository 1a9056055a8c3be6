/**
 * A connection's topic memberships as one resource, the way a FiberSet holds fibers: bound to
 * the connection's Scope once, topics join and leave it one by one, and closing the Scope leaves
 * every topic still joined. It is also the only record of what the connection subscribes to
 * (its targets are read back from the topic names), so a subscription costs one array slot here
 * and one Set entry in the topic hub: topics are the universe's shared strings, not copies.
 */
import { Effect, Scope } from "effect"
import { SUBSCRIPTION_TYPES, type SubscriptionType } from "../protocol/client.js"
import { isOfType, type Topic, targetOf } from "../protocol/topics.js"
import type { BrokerShape } from "./Broker.js"
import type { Sink } from "./TopicHub.js"

export class SubscriptionSet {
  /**
   * Joined topics in join order. An array, not a Set: a connection has at most
   * MAX_SUBSCRIPTIONS of them, a linear scan of 200 costs less than a hash table weighs, and a
   * 20-entry Set takes about 680 bytes against 176 for an exactly sized array (10,000
   * connections: 5 MB). Replaced rather than pushed to, and by `concat` and `slice`, which size
   * their result exactly (a spread `[...a, t]` grows like `push`: 46 slots for 20 topics).
   */
  private topics: ReadonlyArray<Topic> = []
  /** Targets per subscription type, kept so that stats over 10,000 connections need no scan. */
  private readonly counts: Record<SubscriptionType, number> = { stock: 0, market: 0, sector: 0, candle: 0 }

  constructor(
    private readonly broker: BrokerShape,
    private readonly sink: Sink,
  ) {}

  /** Binds the set to `scope`: closing it leaves every topic still joined. */
  bindTo(scope: Scope.Scope): Effect.Effect<void> {
    // A finalizer made at close time: nothing but this closure stays with the connection.
    return Scope.addFinalizerExit(scope, () => Effect.sync(() => this.leaveAll()))
  }

  has(topic: Topic): boolean {
    return this.topics.includes(topic)
  }

  /** The joined topics. The array handed out never changes: joining and leaving replace it. */
  keys(): ReadonlyArray<Topic> {
    return this.topics
  }

  /** Market-data subscriptions (every joined topic but the user's own). */
  get count(): number {
    return this.counts.stock + this.counts.market + this.counts.sector + this.counts.candle
  }

  /** How many targets of one subscription type. */
  countOf(type: SubscriptionType): number {
    return this.counts[type]
  }

  private counted(topic: Topic, delta: number): void {
    for (const type of SUBSCRIPTION_TYPES) if (isOfType(topic, type)) this.counts[type] += delta
  }

  /** The targets of one subscription type, in subscription order. */
  targets(type: SubscriptionType): Array<string> {
    const out: Array<string> = []
    for (const t of this.topics) if (isOfType(t, type)) out.push(targetOf(t))
    return out
  }

  join(topic: Topic): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.topics.includes(topic)) return Effect.void
      // Recorded first, so a join interrupted while waiting upstream is still left on release.
      this.topics = this.topics.concat(topic)
      this.counted(topic, 1)
      return this.broker.join(topic, this.sink)
    })
  }

  /**
   * Joins several topics (those not joined yet, duplicates once): the list grows by one
   * exactly sized `concat`, where joining one by one made an array per topic.
   */
  joinAll(topics: ReadonlyArray<Topic>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const fresh: Array<Topic> = []
      for (const topic of topics)
        if (!this.topics.includes(topic) && !fresh.includes(topic)) {
          fresh.push(topic)
          this.counted(topic, 1)
        }
      if (fresh.length === 0) return Effect.void
      // Recorded first, as in `join`: leaving a topic that was never joined is harmless.
      this.topics = this.topics.concat(fresh)
      return Effect.forEach(fresh, (topic) => this.broker.join(topic, this.sink), { discard: true })
    })
  }

  /** Returns false when the topic was not joined. */
  leave(topic: Topic): boolean {
    const i = this.topics.indexOf(topic)
    if (i < 0) return false
    this.topics = this.topics.slice(0, i).concat(this.topics.slice(i + 1))
    this.counted(topic, -1)
    this.broker.leave(topic, this.sink)
    return true
  }

  /**
   * Leaves every topic, as the scope closes. The list itself is kept: it is the connection's
   * final subscriptions, which the session is released with after this (finalizers run in
   * reverse order of acquisition, and this one was acquired last).
   */
  private leaveAll(): void {
    for (const topic of this.topics) this.broker.leave(topic, this.sink)
  }
}
