/**
 * Latest state per topic, for snapshots on subscribe and restore. Keyed by the message's
 * conflation key (or a status key), so a topic holds at most a handful of entries.
 */
import { Context, Effect, Layer } from "effect"
import type { Outgoing } from "../protocol/encode.js"
import type { Topic } from "../protocol/topics.js"

/** One message to keep as its topic's latest state under `snapshotKey`. */
export interface SnapshotEntry {
  readonly topic: Topic
  readonly snapshotKey: string
  readonly msg: Outgoing
}

export interface SnapshotStoreShape {
  /** Stores a group of entries (an event group of the pipeline), in order. */
  readonly putAll: (entries: ReadonlyArray<SnapshotEntry>) => Effect.Effect<void>
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
    putAll: (entries) =>
      Effect.sync(() => {
        for (const { topic, snapshotKey, msg } of entries) {
          let m = byTopic.get(topic)
          if (m === undefined) {
            m = new Map()
            byTopic.set(topic, m)
          }
          m.set(snapshotKey, msg)
        }
      }),
    getMany: (topics) => Effect.sync(() => topics.map((t) => [...(byTopic.get(t)?.values() ?? [])])),
  }
}

export const MemorySnapshotStoreLive = Layer.sync(SnapshotStore, makeMemorySnapshotStore)
