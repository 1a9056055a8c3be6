/**
 * GET /v1/candles/{code}: the candle history a `candle` subscription's snapshot is made of, for a
 * chart's first paint. Bounded: at most CANDLE_HISTORY_BARS bars (400 past it).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { CandleStore } from "../candles/CandleStore.js"
import { AppConfig } from "../config/AppConfig.js"
import { Universe } from "../market/Universe.js"
import { CandlesUnavailable, InvalidCandleQuery, QuotecastApi, UnknownInstrument } from "./Api.js"

export const CandlesGroupLive = HttpApiBuilder.group(QuotecastApi, "candles", (handlers) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const universe = yield* Universe
    const store = yield* CandleStore
    const max = config.candles.historyBars
    return handlers.handle("candles", ({ path, urlParams }) =>
      Effect.gen(function* () {
        const limit = urlParams.limit ?? Math.min(config.candles.snapshotBars, max)
        if (limit > max)
          return yield* new InvalidCandleQuery({
            message: `limit must be from 1 to ${max} (CANDLE_HISTORY_BARS)`,
          })
        if (universe.topic("candle", `${path.code}:${urlParams.interval}`) === undefined)
          return yield* new UnknownInstrument({ message: `unknown code: ${path.code}` })
        const history = yield* store
          .history(path.code, urlParams.interval, limit)
          .pipe(
            Effect.catchAll((e) =>
              Effect.zipRight(
                Effect.logWarning("candle history unavailable", e.reason),
                Effect.fail(new CandlesUnavailable({ message: "Candle history unavailable, try again" })),
              ),
            ),
          )
        return {
          code: path.code,
          interval: urlParams.interval,
          bars: history.bars,
          current: history.current ?? null,
        }
      }),
    )
  }),
)
