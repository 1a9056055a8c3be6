/**
 * Candle history in Redis (cluster mode): what the feed's leader builds, every instance serves.
 *
 * - Closed bars: one list per series, `prefix + "candles:{005930:1m}"`, oldest first, trimmed to
 *   CANDLE_HISTORY_BARS (RPUSH + LTRIM).
 * - Bars in progress: one hash, `prefix + "candles:current"`, field `005930:1m`, written by the
 *   leader every CANDLE_UPDATE_INTERVAL_MS for the series that moved (and when it lets go), so a
 *   restarted or new leader continues them, losing at most the trades of the last interval.
 *
 * Writes go out with `fireNow`, ahead of the candle_update PUBLISHes of the same pass (the
 * broker's), so an instance that read a closed bar's message from the topic finds the bar in
 * the list. Values are JSON Candles, decoded with `StoredCandle` when read.
 */
import { Effect, Layer, Option } from "effect"
import type { SeriesCandle } from "../candles/CandleBook.js"
import {
  CandleHistoryUnavailable,
  CandleStore,
  type CandleStoreShape,
  currentAfter,
} from "../candles/CandleStore.js"
import { parseSeries } from "../candles/snapshots.js"
import { AppConfig } from "../config/AppConfig.js"
import type { Candle } from "../protocol/server.js"
import { StoredCandle } from "./codec.js"
import { RedisClient } from "./RedisClient.js"

export const RedisCandleStoreLive = Layer.effect(
  CandleStore,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const config = yield* AppConfig
    const historyBars = config.candles.historyBars
    const listKey = (series: string) => `${redis.prefix}candles:{${series}}`
    const currentKey = `${redis.prefix}candles:current`
    const decode = (text: string | null | undefined): Candle | undefined =>
      text === null || text === undefined
        ? undefined
        : Option.getOrUndefined(redis.decode(StoredCandle, text))
    const unavailable = (e: { readonly reason: string }) => new CandleHistoryUnavailable({ reason: e.reason })

    const store: CandleStoreShape = {
      save: (closed, current) =>
        Effect.sync(() => {
          if (closed.length === 0 && current.length === 0) return
          redis.fireNow("candles save", (p) => {
            for (const c of closed) {
              const series = `${c.code}:${c.interval}`
              p.rpush(listKey(series), JSON.stringify(c.candle))
              p.ltrim(listKey(series), -historyBars, -1)
              p.hdel(currentKey, series)
            }
            if (current.length > 0) {
              const fields: Record<string, string> = {}
              for (const c of current) fields[`${c.code}:${c.interval}`] = JSON.stringify(c.candle)
              p.hset(currentKey, fields)
            }
          })
        }),
      history: (code, interval, limit) => {
        const series = `${code}:${interval}`
        return redis
          .exec("candles history", (r) =>
            Promise.all([
              r.lrange(listKey(series), -Math.min(limit, historyBars), -1),
              r.hget(currentKey, series),
            ]),
          )
          .pipe(
            Effect.map(([texts, current]) => {
              const bars: Array<Candle> = []
              for (const t of texts) {
                const bar = decode(t)
                if (bar !== undefined) bars.push(bar)
              }
              return { bars, current: currentAfter(bars, decode(current)) }
            }),
            Effect.mapError(unavailable),
          )
      },
      inProgress: () =>
        redis
          .exec("candles in progress", (r) => r.hgetall(currentKey))
          .pipe(
            Effect.map((hash) => {
              const out: Array<SeriesCandle> = []
              for (const [field, text] of Object.entries(hash)) {
                const series = parseSeries(field)
                const candle = decode(text)
                if (series !== undefined && candle !== undefined) out.push({ ...series, candle })
              }
              return out
            }),
            Effect.mapError(unavailable),
          ),
    }
    return store
  }),
)
