/**
 * The `candle_snapshot` a `candle` subscription starts with (and a restored one), read from the
 * CandleStore: the last CANDLE_SNAPSHOT_BARS closed bars and the bar in progress.
 */
import { Clock, Effect } from "effect"
import { CANDLE_INTERVALS, type CandleInterval } from "../protocol/client.js"
import { nowIso, type Outgoing, openBody } from "../protocol/encode.js"
import type { CandleSnapshot } from "../protocol/server.js"
import { isOfType, type Topic, targetOf } from "../protocol/topics.js"
import type { CandleHistory, CandleStoreShape } from "./CandleStore.js"

/** `005930:1m` -> its code and interval; undefined when it names no interval. */
export const parseSeries = (
  target: string,
): { readonly code: string; readonly interval: CandleInterval } | undefined => {
  const i = target.lastIndexOf(":")
  if (i <= 0) return undefined
  const interval = CANDLE_INTERVALS.find((v) => v === target.slice(i + 1))
  return interval === undefined ? undefined : { code: target.slice(0, i), interval }
}

export const candleSnapshotMessage = (
  code: string,
  interval: CandleInterval,
  history: CandleHistory,
  now: number,
): CandleSnapshot => ({
  type: "candle_snapshot",
  code,
  interval,
  bars: history.bars,
  current: history.current ?? null,
  timestamp: nowIso(now),
})

/**
 * The candle snapshots of the `candle` topics among `topics` (others are skipped). A series whose
 * history cannot be read (Redis down) gets no snapshot: its live updates still follow.
 */
export const candleSnapshots = (
  store: CandleStoreShape,
  topics: ReadonlyArray<Topic>,
  limit: number,
): Effect.Effect<ReadonlyArray<Outgoing>> =>
  Effect.gen(function* () {
    const out: Array<Outgoing> = []
    for (const topic of topics) {
      if (!isOfType(topic, "candle")) continue
      const series = parseSeries(targetOf(topic))
      if (series === undefined) continue
      const history = yield* store.history(series.code, series.interval, limit).pipe(
        Effect.tapError((e) =>
          Effect.logWarning("candle snapshot unavailable", e.reason).pipe(
            Effect.annotateLogs({ series: targetOf(topic) }),
          ),
        ),
        Effect.option,
      )
      if (history._tag === "None") continue
      const now = yield* Clock.currentTimeMillis
      out.push({
        key: undefined,
        body: openBody(candleSnapshotMessage(series.code, series.interval, history.value, now)),
      })
    }
    return out
  })
