/**
 * Local fan-out: topic -> the connections on this process that subscribe to it.
 * Delivery is synchronous and allocation-free per recipient: the message was serialized once
 * upstream and every sink receives the same object.
 */
import type { Outgoing } from "../protocol/encode.js"
import type { Topic } from "../protocol/topics.js"

export interface Sink {
  readonly deliver: (msg: Outgoing) => void
}

export class TopicHub {
  private readonly topics = new Map<Topic, Set<Sink>>()

  /** Adds a sink; returns true when it is the topic's first local subscriber. */
  add(topic: Topic, sink: Sink): boolean {
    let set = this.topics.get(topic)
    const first = set === undefined
    if (set === undefined) {
      set = new Set()
      this.topics.set(topic, set)
    }
    set.add(sink)
    return first
  }

  /** Removes a sink; returns true when the topic has no local subscriber left. */
  remove(topic: Topic, sink: Sink): boolean {
    const set = this.topics.get(topic)
    if (set === undefined) return false
    set.delete(sink)
    if (set.size === 0) {
      this.topics.delete(topic)
      return true
    }
    return false
  }

  deliver(topic: Topic, msg: Outgoing): number {
    const set = this.topics.get(topic)
    if (set === undefined) return 0
    for (const sink of set) sink.deliver(msg)
    return set.size
  }

  has(topic: Topic): boolean {
    return this.topics.has(topic)
  }

  get topicCount(): number {
    return this.topics.size
  }
}
