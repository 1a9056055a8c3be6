/**
 * A VI called by the closing auction (MARKET_CLOCK=krx): KRX extends the closing auction by the
 * VI's 2-minute single-price auction, so its one execution, at about 15:32, is the stock's closing
 * price. That print belongs to the day: it is the session's last bar of every interval, the `1d`
 * bar closes at it, and the day's bars agree with the last `price_update` a client saw.
 *
 * The simulator runs as the feed does (its engine, driven by TestClock) with a wild daily sigma so
 * that many stocks' closing prices call a VI, and with the default candle settings.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { MemoryCandleStoreLive } from "../../src/candles/CandleStore.js"
import { CandlesLive } from "../../src/candles/Candles.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { krxPhaseAt } from "../../src/feed/MarketClock.js"
import { SimulatorEngine } from "../../src/feed/simulator/SimulatorEngine.js"
import { VI_DURATION_MS } from "../../src/feed/volatility.js"
import { Universe } from "../../src/market/Universe.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { MarketPipeline } from "../../src/pipeline/MarketPipeline.js"
import { MarketState, makeMarketState } from "../../src/pipeline/MarketState.js"
import type { CandleUpdate, PriceUpdate } from "../../src/protocol/server.js"
import { makeRecordingPipeline, ofType, shippedUniverse } from "../market/support.js"

/** Monday 2026-12-07 in Asia/Seoul (UTC+9). */
const kst = (hhmmss: string) => Date.parse(`2026-12-07T${hhmmss}+09:00`)
const iso = (hhmmss: string) => new Date(kst(hhmmss)).toISOString()
const isStock = (code: string) => /^\d{6}$/.test(code)

interface Trade {
  readonly price: number
  readonly qty: number
  readonly at: number
}

const ohlcv = (trades: ReadonlyArray<Trade>) => ({
  open: (trades[0] as Trade).price,
  high: Math.max(...trades.map((t) => t.price)),
  low: Math.min(...trades.map((t) => t.price)),
  close: (trades.at(-1) as Trade).price,
  volume: trades.reduce((s, t) => s + t.qty, 0),
  trades: trades.length,
})
const ohlcvOf = (b: CandleUpdate) => ({
  open: b.open,
  high: b.high,
  low: b.low,
  close: b.close,
  volume: b.volume,
  trades: b.trades,
})

describe("a VI called by the closing auction (MARKET_CLOCK=krx)", () => {
  it.scoped(
    "its execution is the stock's close: in the last bar of every interval and the 1d bar, which end with the last price_update",
    () => {
      const universe = shippedUniverse()
      const state = makeMarketState(universe)
      const pipeline = makeRecordingPipeline()
      // The shipped defaults (CANDLE_CLOSE_GRACE_MS included), under the KRX clock.
      const config = AppConfig.layerWith({ marketClock: "krx" })
      const base = Layer.mergeAll(
        Layer.succeed(Universe, universe),
        Layer.succeed(MarketState, state),
        pipeline.layer,
        config,
        GatewayStats.layer,
      )
      const store = MemoryCandleStoreLive.pipe(Layer.provide(config))
      const layer = CandlesLive.pipe(Layer.provideMerge(Layer.merge(base, store)))
      const engine = new SimulatorEngine(universe, state, {
        seed: 3,
        rate: 400,
        dailySigma: 1.5,
        krxSessions: true,
      })
      return Effect.gen(function* () {
        const start = kst("15:19:50")
        yield* TestClock.setTime(start)
        yield* Effect.gen(function* () {
          const feed = yield* MarketPipeline
          // The feed's loop: the engine at each step of the clock, published as the simulator does.
          yield* feed.publish(engine.initialEvents(start))
          for (let t = start + 250; t <= kst("15:35:00"); t += 250) {
            yield* TestClock.setTime(t)
            const open = krxPhaseAt(t).status === "open"
            const events = engine.advance(t, () => open)
            if (events.length > 0) yield* feed.publish(events)
          }

          // What a client of the stock subscription saw: each stock's trades (rises of its
          // cumulative volume, from 0: the day's first execution is the opening auction's).
          const trades = new Map<string, Array<Trade>>()
          const lastPrice = new Map<string, number>()
          const volumes = new Map<string, number>()
          for (const p of ofType(pipeline.published, "price_update") as ReadonlyArray<PriceUpdate>) {
            if (!isStock(p.code)) continue
            lastPrice.set(p.code, p.price)
            const before = volumes.get(p.code) ?? 0
            volumes.set(p.code, p.volume)
            if (p.volume <= before) continue
            const list = trades.get(p.code) ?? []
            list.push({ price: p.price, qty: p.volume - before, at: Date.parse(p.timestamp) })
            trades.set(p.code, list)
          }
          // The VIs the closing auction called (at 15:30) and each one's execution.
          const closingVis = ofType(pipeline.published, "instrument_status").filter(
            (s) => s.status === "vi" && Date.parse(s.timestamp) >= kst("15:30:00"),
          )
          expect(closingVis.length).toBeGreaterThan(10)
          const closed = ofType(pipeline.published, "candle_update").filter((u) => u.closed)
          const closedBar = (code: string, interval: string, time: string) =>
            closed.filter((u) => u.code === code && u.interval === interval && u.time === time)

          for (const vi of closingVis) {
            const mine = trades.get(vi.code) ?? []
            const execution = mine.at(-1)
            // One execution when the VI auction ends, and it is the stock's last price of the day.
            expect(execution?.at, vi.code).toBe(Date.parse(vi.timestamp) + VI_DURATION_MS)
            expect(lastPrice.get(vi.code), vi.code).toBe(execution?.price)
            // No continuous trading in the closing auction: the session's last 1m bar (15:29) is
            // that execution alone; every interval's last bar ends with it.
            expect(closedBar(vi.code, "1m", iso("15:29:00")).map(ohlcvOf), vi.code).toEqual([
              ohlcv(mine.filter((t) => t.at >= kst("15:29:00"))),
            ])
            for (const [interval, from] of [
              ["5m", "15:25:00"],
              ["15m", "15:15:00"],
              ["1h", "15:00:00"],
            ] as const)
              expect(closedBar(vi.code, interval, iso(from)).map(ohlcvOf), `${vi.code} ${interval}`).toEqual([
                ohlcv(mine.filter((t) => t.at >= kst(from))),
              ])
          }
          // Every stock's day bar is every trade of its day, and closes at its last price_update.
          const days = closed.filter((u) => u.interval === "1d" && isStock(u.code))
          expect(days.length).toBe(trades.size)
          for (const day of days) {
            expect(day.time).toBe(iso("00:00:00"))
            expect(ohlcvOf(day), day.code).toEqual(ohlcv(trades.get(day.code) ?? []))
            expect(day.close, day.code).toBe(lastPrice.get(day.code))
          }
          // No trade of the day fell outside its bars.
          const stats = yield* GatewayStats
          expect(stats.candles).toMatchObject({ outsideSession: 0, late: 0 })
        }).pipe(Effect.provide(layer))
      })
    },
    120_000,
  )
})
