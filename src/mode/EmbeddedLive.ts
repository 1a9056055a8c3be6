/**
 * Embedded mode: a single process, no external service. In-memory broker, snapshots, sessions
 * alerts and candle history; takeovers are local; there is no cluster to report on.
 */
import { Layer } from "effect"
import { MemoryAlertStoreLive } from "../alerts/AlertStore.js"
import { MemoryBrokerLive } from "../broker/Broker.js"
import { MemoryCandleStoreLive } from "../candles/CandleStore.js"
import { LocalTakeoverLive } from "../connection/Takeover.js"
import { ClusterView } from "../http/ClusterView.js"
import { MemorySessionStoreLive } from "../session/SessionStore.js"
import { MemorySnapshotStoreLive } from "../snapshot/SnapshotStore.js"

export const EmbeddedLive = Layer.mergeAll(
  MemoryBrokerLive,
  MemorySnapshotStoreLive,
  MemorySessionStoreLive,
  MemoryAlertStoreLive,
  LocalTakeoverLive,
  ClusterView.embedded,
  MemoryCandleStoreLive,
)
