/**
 * Candle history: the last CANDLE_HISTORY_BARS closed bars of each series (code x interval) and
 * its bar in progress. The feed's leader writes it (`Candles.ts`); subscriptions' snapshots and
 * GET /v1/candles read it. Embedded mode: bounded memory (this file). Cluster mode: Redis
 * (`cluster/RedisCandleStore.ts`), so every instance serves the same bars and a new leader
 * continues the bars in progress where the last one left them.
 */
import { Context, Data, Effect, Layer } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import type { CandleInterval } from "../protocol/client.js"
import type { Candle } from "../protocol/server.js"
import type { SeriesCandle } from "./CandleBook.js"

export interface CandleHistory {
  /** Closed bars, oldest first. */
  readonly bars: ReadonlyArray<Candle>
  /** The bar in progress, if any. */
  readonly current: Candle | undefined
}

export class CandleHistoryUnavailable extends Data.TaggedError("CandleHistoryUnavailable")<{
  readonly reason: string
}> {}

export interface CandleStoreShape {
  /** One pass's changes, in order: bars that closed, then bars in progress that changed. */
  readonly save: (
    closed: ReadonlyArray<SeriesCandle>,
    current: ReadonlyArray<SeriesCandle>,
  ) => Effect.Effect<void>
  /** The last `limit` closed bars of a series and its bar in progress. */
  readonly history: (
    code: string,
    interval: CandleInterval,
    limit: number,
  ) => Effect.Effect<CandleHistory, CandleHistoryUnavailable>
  /** Every bar in progress, for a leader that takes over. */
  readonly inProgress: () => Effect.Effect<ReadonlyArray<SeriesCandle>, CandleHistoryUnavailable>
}

export class CandleStore extends Context.Tag("quotecast/CandleStore")<CandleStore, CandleStoreShape>() {}

/**
 * A bar in progress that a reader finds beside closed bars that already include it (it was
 * saved before its close) is not in progress any more.
 */
export const currentAfter = (
  bars: ReadonlyArray<Candle>,
  current: Candle | undefined,
): Candle | undefined => {
  const last = bars[bars.length - 1]
  return current !== undefined && last !== undefined && current.time <= last.time ? undefined : current
}

interface Series {
  bars: Array<Candle>
  current: SeriesCandle | undefined
}

/** Memory: at most `historyBars` closed bars per series, so at most that many x codes x 5 intervals. */
export const makeMemoryCandleStore = (historyBars: number): CandleStoreShape => {
  const series = new Map<string, Series>()
  const of = (code: string, interval: CandleInterval): Series => {
    const key = `${code}:${interval}`
    let s = series.get(key)
    if (s === undefined) {
      s = { bars: [], current: undefined }
      series.set(key, s)
    }
    return s
  }
  return {
    save: (closed, current) =>
      Effect.sync(() => {
        for (const c of closed) {
          const s = of(c.code, c.interval)
          s.bars.push(c.candle)
          if (s.bars.length > historyBars) s.bars.splice(0, s.bars.length - historyBars)
          if (s.current !== undefined && s.current.candle.time <= c.candle.time) s.current = undefined
        }
        for (const c of current) of(c.code, c.interval).current = c
      }),
    history: (code, interval, limit) =>
      Effect.sync(() => {
        const s = series.get(`${code}:${interval}`)
        if (s === undefined) return { bars: [], current: undefined }
        const bars = s.bars.slice(Math.max(0, s.bars.length - limit))
        return { bars, current: currentAfter(bars, s.current?.candle) }
      }),
    inProgress: () =>
      Effect.sync(() => {
        const out: Array<SeriesCandle> = []
        for (const s of series.values()) if (s.current !== undefined) out.push(s.current)
        return out
      }),
  }
}

export const MemoryCandleStoreLive = Layer.effect(
  CandleStore,
  Effect.map(AppConfig, (c) => makeMemoryCandleStore(c.candles.historyBars)),
)
