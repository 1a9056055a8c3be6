/**
 * Bar building under TestClock: alignment to Asia/Seoul and KRX sessions, rollover by time and by
 * trade, the closing auction's print, a weekend, the midday (KRX has no lunch break), and the
 * continuous calendar of MARKET_CLOCK=always_open. Trades go through the pipeline as the
 * simulator and ingest publish them (price_update with cumulative volume).
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, TestClock } from "effect"
import { CandleBook } from "../../src/candles/CandleBook.js"
import { CandleStore, MemoryCandleStoreLive } from "../../src/candles/CandleStore.js"
import { CandlesLive } from "../../src/candles/Candles.js"
import { bucketOf } from "../../src/candles/calendar.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { MarketPipeline } from "../../src/pipeline/MarketPipeline.js"
import { nowIso } from "../../src/protocol/encode.js"
import type { CandleUpdate } from "../../src/protocol/server.js"
import { makeRecordingPipeline, marketLayers, ofType } from "../market/support.js"

/** Epoch millis of a Seoul wall-clock time (UTC+9, no DST). */
const kst = (isoLocal: string) => Date.parse(`${isoLocal}+09:00`)
const iso = (isoLocal: string) => nowIso(kst(isoLocal))

const PASS_MS = 5_000
const GRACE_MS = 30_000

const setup = (marketClock: "krx" | "always_open") => {
  const pipeline = makeRecordingPipeline()
  const config = AppConfig.layerWith({ marketClock })
  const withCandles = Layer.effect(
    AppConfig,
    Effect.map(AppConfig, (c) => ({
      ...c,
      candles: { ...c.candles, updateIntervalMs: PASS_MS, closeGraceMs: GRACE_MS },
    })),
  ).pipe(Layer.provide(config))
  const base = Layer.mergeAll(marketLayers(), pipeline.layer, withCandles, GatewayStats.layer)
  const store = MemoryCandleStoreLive.pipe(Layer.provide(withCandles))
  return { pipeline, layer: CandlesLive.pipe(Layer.provideMerge(Layer.merge(base, store))) }
}

const advanceTo = (epochMs: number) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => TestClock.adjust(Math.max(0, epochMs - now)))

/** A trade of `qty` at `price`, now: the price_update the simulator would publish. */
const volumes = new Map<string, number>()
const trade = (code: string, price: number, qty: number) =>
  Effect.gen(function* () {
    const pipeline = yield* MarketPipeline
    const volume = (volumes.get(code) ?? 0) + qty
    volumes.set(code, volume)
    const now = yield* Clock.currentTimeMillis
    yield* pipeline.publish([
      {
        type: "price_update",
        code,
        name: code,
        price,
        change: 0,
        change_percent: 0,
        volume,
        timestamp: nowIso(now),
      },
    ])
  })

const closedOf = (events: ReadonlyArray<CandleUpdate>, interval: string) =>
  events
    .filter((e) => e.closed && e.interval === interval)
    .map((e) => ({ time: e.time, o: e.open, h: e.high, l: e.low, c: e.close, v: e.volume, n: e.trades }))

describe("bucketOf", () => {
  it.each([
    // 2026-11-24 is a Tuesday.
    ["krx", "1m", "2026-11-24T08:59:59.999", undefined],
    ["krx", "1m", "2026-11-24T09:00:00.000", "2026-11-24T09:00:00"],
    ["krx", "5m", "2026-11-24T12:07:00.000", "2026-11-24T12:05:00"],
    ["krx", "1h", "2026-11-24T15:10:00.000", "2026-11-24T15:00:00"],
    // The closing auction's print at 15:30 joins the session's last bar of each interval; so does
    // a closing VI's (the auction extended by the VI's 2 minutes, up to 30 s more on KRX), and
    // any print until that latest end (15:32:30) plus the grace.
    ["krx", "1m", "2026-11-24T15:30:00.000", "2026-11-24T15:29:00"],
    ["krx", "15m", "2026-11-24T15:30:10.000", "2026-11-24T15:15:00"],
    ["krx", "1m", "2026-11-24T15:32:00.000", "2026-11-24T15:29:00"],
    ["krx", "1h", "2026-11-24T15:32:30.000", "2026-11-24T15:00:00"],
    ["krx", "1d", "2026-11-24T15:32:59.999", "2026-11-24T00:00:00"],
    ["krx", "1m", "2026-11-24T15:33:00.000", undefined],
    ["krx", "1d", "2026-11-28T10:00:00.000", undefined], // Saturday
    ["continuous", "1h", "2026-11-28T10:59:59.999", "2026-11-28T10:00:00"],
    ["continuous", "1d", "2026-11-28T23:59:59.999", "2026-11-28T00:00:00"],
  ] as const)("%s %s at %s KST starts at %s", (calendar, interval, at, start) => {
    const b = bucketOf(calendar, interval, kst(at), GRACE_MS)
    expect(b === undefined ? undefined : nowIso(b.start)).toBe(start === undefined ? undefined : iso(start))
  })

  it("closes a session's last bars after the closing auction's latest end (a closing VI's) and the grace", () => {
    expect(bucketOf("krx", "1m", kst("2026-11-24T15:19:30"), GRACE_MS)?.closeAt).toBe(
      kst("2026-11-24T15:20:00"),
    )
    expect(bucketOf("krx", "1h", kst("2026-11-24T15:10:00"), GRACE_MS)?.closeAt).toBe(
      kst("2026-11-24T15:33:00"),
    )
    expect(bucketOf("krx", "1d", kst("2026-11-24T09:00:00"), GRACE_MS)?.closeAt).toBe(
      kst("2026-11-24T15:33:00"),
    )
    // Whatever the grace, a closing VI's execution is the day's.
    expect(bucketOf("krx", "1d", kst("2026-11-24T15:32:29.999"), 1)?.start).toBe(kst("2026-11-24T00:00:00"))
  })
})

describe("Candles (MARKET_CLOCK=krx) under TestClock", () => {
  it.scoped("builds a KRX day: open, midday, closing auction, and nothing outside the session", () => {
    volumes.clear()
    const { pipeline, layer } = setup("krx")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-24T08:59:00"))
      yield* Effect.gen(function* () {
        const candles = () => ofType(pipeline.published, "candle_update")
        yield* trade("005930", 69_900, 10) // before the open: no bar
        yield* advanceTo(kst("2026-11-24T09:00:00"))
        yield* trade("005930", 70_000, 100)
        yield* advanceTo(kst("2026-11-24T09:00:30"))
        yield* trade("005930", 70_100, 50)
        yield* trade("005930", 69_800, 5)
        // In progress, not closed yet: one conflated update per series per pass.
        yield* advanceTo(kst("2026-11-24T09:00:40"))
        expect(closedOf(candles(), "1m")).toEqual([])
        const inProgress = candles().filter((e) => e.interval === "1m" && !e.closed)
        expect(inProgress.at(-1)).toMatchObject({
          open: 70_000,
          high: 70_100,
          low: 69_800,
          close: 69_800,
          volume: 155,
        })
        // The 1m bar closes when its minute is over (at the next pass), with no trade needed.
        yield* advanceTo(kst("2026-11-24T09:01:05"))
        expect(closedOf(candles(), "1m")).toEqual([
          { time: iso("2026-11-24T09:00:00"), o: 70_000, h: 70_100, l: 69_800, c: 69_800, v: 155, n: 3 },
        ])
        // Midday: KRX has no lunch break, bars go on.
        yield* advanceTo(kst("2026-11-24T12:30:10"))
        yield* trade("005930", 70_500, 20)
        yield* advanceTo(kst("2026-11-24T12:31:10"))
        expect(closedOf(candles(), "1m").at(-1)).toEqual({
          time: iso("2026-11-24T12:30:00"),
          o: 70_500,
          h: 70_500,
          l: 70_500,
          c: 70_500,
          v: 20,
          n: 1,
        })
        // 1h bars are aligned to 09:00 and each closes on its hour.
        expect(closedOf(candles(), "1h").map((b) => b.time)).toEqual([iso("2026-11-24T09:00:00")])
        // The last continuous trade, then the closing auction (15:20-15:30): no ticks, one print at 15:30.
        yield* advanceTo(kst("2026-11-24T15:19:50"))
        yield* trade("005930", 70_300, 30)
        yield* advanceTo(kst("2026-11-24T15:20:05"))
        expect(closedOf(candles(), "1m").at(-1)?.time).toBe(iso("2026-11-24T15:19:00"))
        expect(closedOf(candles(), "15m").at(-1)?.time).toBe(iso("2026-11-24T12:30:00"))
        yield* advanceTo(kst("2026-11-24T15:30:00"))
        yield* trade("005930", 70_400, 1_000)
        // The day's last bars wait for a closing VI's execution (up to 15:32:30) and the grace.
        yield* advanceTo(kst("2026-11-24T15:32:55"))
        expect(closedOf(candles(), "1d")).toEqual([])
        expect(closedOf(candles(), "1m").at(-1)?.time).toBe(iso("2026-11-24T15:19:00"))
        yield* advanceTo(kst("2026-11-24T15:33:05"))
        expect(closedOf(candles(), "1m").at(-1)).toEqual({
          time: iso("2026-11-24T15:29:00"),
          o: 70_400,
          h: 70_400,
          l: 70_400,
          c: 70_400,
          v: 1_000,
          n: 1,
        })
        expect(closedOf(candles(), "15m").at(-1)).toEqual({
          time: iso("2026-11-24T15:15:00"),
          o: 70_300,
          h: 70_400,
          l: 70_300,
          c: 70_400,
          v: 1_030,
          n: 2,
        })
        expect(closedOf(candles(), "1h").map((b) => b.time)).toEqual([
          iso("2026-11-24T09:00:00"),
          iso("2026-11-24T12:00:00"),
          iso("2026-11-24T15:00:00"),
        ])
        expect(closedOf(candles(), "1d")).toEqual([
          { time: iso("2026-11-24T00:00:00"), o: 70_000, h: 70_500, l: 69_800, c: 70_400, v: 1_205, n: 6 },
        ])
        // After the close: no more bars, nothing in progress.
        const before = candles().length
        yield* advanceTo(kst("2026-11-24T16:00:00"))
        yield* trade("005930", 70_000, 10)
        yield* advanceTo(kst("2026-11-24T16:01:00"))
        expect(candles().length).toBe(before)
        // Every bar's own updates come in order: in progress, then closed, never after its close.
        const seen = new Set<string>()
        for (const e of candles()) {
          const id = `${e.interval}|${e.time}`
          expect(seen.has(id)).toBe(false)
          if (e.closed) seen.add(id)
        }
        // The history serves the same bars.
        const store = yield* CandleStore
        const h = yield* store.history("005930", "1m", 120)
        expect(h.bars.map((b) => b.time)).toEqual(closedOf(candles(), "1m").map((b) => b.time))
        expect(h.current).toBeUndefined()
        // The metrics: 6 trades in bars, 2 outside the session (before 09:00, after the close).
        const stats = yield* GatewayStats
        expect(stats.candles).toMatchObject({ trades: 6, outsideSession: 2, late: 0 })
        expect(stats.candles.barsClosed).toBe(candles().filter((e) => e.closed).length)
      }).pipe(Effect.provide(layer))
    })
  })

  it.scoped("skips the weekend: Friday's day bar, then Monday's", () => {
    volumes.clear()
    const { pipeline, layer } = setup("krx")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-27T14:00:00")) // Friday
      yield* Effect.gen(function* () {
        yield* trade("000660", 180_000, 10)
        yield* advanceTo(kst("2026-11-28T10:00:00")) // Saturday
        yield* trade("000660", 181_000, 10)
        yield* advanceTo(kst("2026-11-30T09:00:01")) // Monday
        yield* trade("000660", 182_000, 7)
        yield* advanceTo(kst("2026-11-30T09:01:30"))
        const days = ofType(pipeline.published, "candle_update").filter((e) => e.interval === "1d")
        expect(days.filter((e) => e.closed).map((e) => [e.time, e.volume])).toEqual([
          [iso("2026-11-27T00:00:00"), 10],
        ])
        expect(days.at(-1)).toMatchObject({
          time: iso("2026-11-30T00:00:00"),
          closed: false,
          open: 182_000,
          volume: 7,
        })
        const minutes = ofType(pipeline.published, "candle_update").filter(
          (e) => e.interval === "1m" && e.closed,
        )
        expect(minutes.map((e) => e.time)).toEqual([iso("2026-11-27T14:00:00"), iso("2026-11-30T09:00:00")])
      }).pipe(Effect.provide(layer))
    })
  })

  it.scoped("always_open: a day bar per Seoul day, and a volume that restarts is a new day's trade", () => {
    volumes.clear()
    const { pipeline, layer } = setup("always_open")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-28T23:59:50")) // Saturday: always_open trades anyway
      yield* Effect.gen(function* () {
        yield* trade("035720", 50_000, 40)
        // The same cumulative volume again is no trade (a re-announced price).
        const pipeline2 = yield* MarketPipeline
        yield* pipeline2.publish([
          {
            type: "price_update",
            code: "035720",
            name: "x",
            price: 49_000,
            change: 0,
            change_percent: 0,
            volume: 40,
            timestamp: iso("2026-11-28T23:59:55"),
          },
        ])
        yield* advanceTo(kst("2026-11-29T00:00:10"))
        volumes.set("035720", 0) // a new session: cumulative volume starts again
        yield* trade("035720", 51_000, 3)
        yield* advanceTo(kst("2026-11-29T00:00:20"))
        const days = ofType(pipeline.published, "candle_update").filter((e) => e.interval === "1d")
        expect(days.filter((e) => e.closed).map((e) => [e.time, e.low, e.volume])).toEqual([
          [iso("2026-11-28T00:00:00"), 50_000, 40],
        ])
        expect(days.at(-1)).toMatchObject({ time: iso("2026-11-29T00:00:00"), volume: 3, closed: false })
      }).pipe(Effect.provide(layer))
    })
  })
})

describe("CandleBook", () => {
  it("never reopens a closed bar: a late trade counts at its arrival, or is dropped and counted", () => {
    const book = new CandleBook("continuous", GRACE_MS)
    const t0 = kst("2026-11-24T10:00:10")
    book.trade("005930", 70_000, 5, t0, t0)
    book.sweep(kst("2026-11-24T10:01:00"))
    expect(
      book
        .drain()
        .closed.filter((b) => b.interval === "1m")
        .map((b) => b.volume),
    ).toEqual([5])
    // Stamped 10:00:50 (its minute has closed), arriving 10:01:02: it joins the 10:01 bar.
    book.trade("005930", 70_100, 3, kst("2026-11-24T10:00:50"), kst("2026-11-24T10:01:02"))
    const bar = book.inProgress("005930", "1m")
    expect(bar === undefined ? undefined : [nowIso(bar.start), bar.volume]).toEqual([
      iso("2026-11-24T10:01:00"),
      3,
    ])
    expect(book.counters.late).toBe(0)
    // A trade stamped in the closed minute and arriving in it too has no bar left to join.
    const other = new CandleBook("continuous", GRACE_MS)
    other.trade("000660", 180_000, 1, t0, t0)
    other.sweep(kst("2026-11-24T10:00:59.999") + 1)
    other.drain()
    other.trade("000660", 180_500, 1, kst("2026-11-24T10:00:20"), kst("2026-11-24T10:00:30"))
    expect(other.inProgress("000660", "1m")).toBeUndefined()
    expect(other.counters.late).toBe(1)
  })
})
