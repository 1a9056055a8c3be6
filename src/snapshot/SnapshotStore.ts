/**
 * Latest state per topic, for snapshots on subscribe and restore. Keyed by the message's
 * conflation key (or a status key), so a topic holds at most a handful of entries.
 */
import { Context, Effect, Layer } from "effect"
import type { Topic } from "../broker/topics.js"
import type { Outgoing } from "../protocol/encode.js"

export interface SnapshotStoreShape {
  readonly put: (topic: Topic, key: string, msg: Outgoing) => Effect.Effect<void>
  /** Latest messages of each topic, in the order their keys were first stored. */
  readonly getMany: (topics: ReadonlyArray<Topic>) => Effect.Effect<ReadonlyArray<ReadonlyArray<Outgoing>>>
}

export class SnapshotStore extends Context.Tag("quotecast/SnapshotStore")<
  SnapshotStore,
  SnapshotStoreShape
>() {}

export const makeMemorySnapshotStore = (): SnapshotStoreShape => {
  const byTopic = new Map<Topic, Map<string, Outgoing>>()
  return {
    put: (topic, key, msg) =>
      Effect.sync(() => {
        let m = byTopic.get(topic)
        if (m === undefined) {
          m = new Map()
          byTopic.set(topic, m)
        }
        m.set(key, msg)
      }),
    getMany: (topics) => Effect.sync(() => topics.map((t) => [...(byTopic.get(t)?.values() ?? [])])),
  }
}

export const MemorySnapshotStoreLive = Layer.sync(SnapshotStore, makeMemorySnapshotStore)
