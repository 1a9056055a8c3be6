import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, TestClock } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import { krxPhaseAt, MarketClock, MarketClockLive } from "../../src/feed/MarketClock.js"
import { MarketPipeline } from "../../src/pipeline/MarketPipeline.js"
import { MarketState } from "../../src/pipeline/MarketState.js"
import { makeRecordingPipeline, marketLayers, ofType } from "./support.js"

/** Epoch millis of a Seoul wall-clock time (UTC+9, no DST). */
const kst = (isoLocal: string) => Date.parse(`${isoLocal}+09:00`)

describe("krxPhaseAt", () => {
  it.each([
    // 2026-11-24 is a Tuesday
    ["2026-11-24T08:29:59.999", "closed", "2026-11-24T08:30:00"],
    ["2026-11-24T08:30:00.000", "pre_open", "2026-11-24T09:00:00"],
    ["2026-11-24T09:00:00.000", "open", "2026-11-24T15:30:00"],
    ["2026-11-24T15:29:59.999", "open", "2026-11-24T15:30:00"],
    ["2026-11-24T15:30:00.000", "closed", "2026-11-25T08:30:00"],
    ["2026-11-24T23:59:59.999", "closed", "2026-11-25T08:30:00"],
    ["2026-11-25T00:00:00.000", "closed", "2026-11-25T08:30:00"],
    // Friday close to Monday pre-open, across the weekend
    ["2026-11-27T15:30:00.000", "closed", "2026-11-30T08:30:00"],
    ["2026-11-28T10:00:00.000", "closed", "2026-11-30T08:30:00"],
    ["2026-11-29T23:59:59.000", "closed", "2026-11-30T08:30:00"],
  ] as const)("%s KST is %s until %s", (at, status, next) => {
    const p = krxPhaseAt(kst(at))
    expect(p.status).toBe(status)
    expect(p.nextTransition).toBe(kst(next))
  })
})

const setup = (mode: "krx" | "always_open") => {
  const pipeline = makeRecordingPipeline()
  const base = Layer.mergeAll(marketLayers(), pipeline.layer, AppConfig.layerWith({ marketClock: mode }))
  return { pipeline, layer: MarketClockLive.pipe(Layer.provideMerge(base)) }
}

const statuses = (events: ReadonlyArray<unknown>, from = 0) =>
  ofType(events.slice(from) as never, "market_status").map((e) => `${e.market}:${e.status}`)

const advanceTo = (epochMs: number) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => TestClock.adjust(Math.max(0, epochMs - now)))

describe("MarketClock (krx) under TestClock", () => {
  it.scoped("walks a weekday through pre_open, open and closed, rolling the session over", () => {
    const { pipeline, layer } = setup("krx")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-24T07:00:00"))
      yield* Effect.gen(function* () {
        const clock = yield* MarketClock
        const state = yield* MarketState
        expect(statuses(pipeline.published)).toEqual(["KOSPI:closed", "KOSDAQ:closed"])
        expect(clock.isOpen("KOSPI")).toBe(false)
        // Yesterday's last trade; it becomes the previous close when the new day starts.
        state.recordTrade("005930", 74_000, 1_234, 0)

        yield* advanceTo(kst("2026-11-24T08:29:59"))
        expect(statuses(pipeline.published, 2)).toEqual([])
        yield* advanceTo(kst("2026-11-24T08:30:00"))
        expect(clock.status("KOSPI")).toBe("pre_open")
        expect(state.get("005930")?.prevClose).toBe(74_000)
        expect(state.get("005930")?.volume).toBe(0)

        yield* advanceTo(kst("2026-11-24T09:00:00"))
        expect(clock.isOpen("KOSPI") && clock.isOpen("KOSDAQ")).toBe(true)
        yield* advanceTo(kst("2026-11-24T15:30:00"))
        expect(clock.status("KOSDAQ")).toBe("closed")
        expect(statuses(pipeline.published, 2)).toEqual([
          "KOSPI:pre_open",
          "KOSDAQ:pre_open",
          "KOSPI:open",
          "KOSDAQ:open",
          "KOSPI:closed",
          "KOSDAQ:closed",
        ])
        const at = ofType(pipeline.published, "market_status").map((e) => e.timestamp)
        expect(at.slice(2)).toEqual([
          "2026-11-23T23:30:00.000Z",
          "2026-11-23T23:30:00.000Z",
          "2026-11-24T00:00:00.000Z",
          "2026-11-24T00:00:00.000Z",
          "2026-11-24T06:30:00.000Z",
          "2026-11-24T06:30:00.000Z",
        ])
      }).pipe(Effect.provide(layer))
    })
  })

  it.scoped("stays closed over the weekend and reopens on Monday", () => {
    const { pipeline, layer } = setup("krx")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-27T15:00:00"))
      yield* Effect.gen(function* () {
        const clock = yield* MarketClock
        expect(statuses(pipeline.published)).toEqual(["KOSPI:open", "KOSDAQ:open"])
        yield* advanceTo(kst("2026-11-27T15:30:00"))
        expect(clock.status("KOSPI")).toBe("closed")
        const n = pipeline.published.length
        for (const day of ["2026-11-28", "2026-11-29"]) {
          for (const time of ["08:30:00", "09:00:00", "12:00:00", "23:59:00"]) {
            yield* advanceTo(kst(`${day}T${time}`))
            expect(clock.status("KOSPI")).toBe("closed")
          }
        }
        expect(pipeline.published.length).toBe(n)
        yield* advanceTo(kst("2026-11-30T08:30:00"))
        expect(clock.status("KOSPI")).toBe("pre_open")
        yield* advanceTo(kst("2026-11-30T09:00:00"))
        expect(clock.isOpen("KOSDAQ")).toBe(true)
      }).pipe(Effect.provide(layer))
    })
  })

  it.scoped("lets an ingested halt override the clock until its next transition", () => {
    const { pipeline, layer } = setup("krx")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-24T10:00:00"))
      yield* Effect.gen(function* () {
        const clock = yield* MarketClock
        const publish = (yield* MarketPipeline).publish
        yield* publish([
          {
            type: "market_status",
            market: "KOSDAQ",
            status: "halted",
            timestamp: "2026-11-24T01:00:00.000Z",
          },
        ])
        expect(clock.status("KOSDAQ")).toBe("halted")
        expect(clock.isOpen("KOSDAQ")).toBe(false)
        expect(clock.isOpen("KOSPI")).toBe(true)
        yield* advanceTo(kst("2026-11-24T15:00:00"))
        expect(clock.status("KOSDAQ")).toBe("halted")
        yield* advanceTo(kst("2026-11-24T15:30:00"))
        expect(clock.status("KOSDAQ")).toBe("closed")
        yield* advanceTo(kst("2026-11-25T09:00:00"))
        expect(clock.isOpen("KOSDAQ")).toBe(true)
        expect(pipeline.published.length).toBeGreaterThan(0)
      }).pipe(Effect.provide(layer))
    })
  })
})

describe("MarketClock (always_open)", () => {
  it.scoped("is open from the start, publishes that once, and never transitions", () => {
    const { pipeline, layer } = setup("always_open")
    return Effect.gen(function* () {
      yield* TestClock.setTime(kst("2026-11-28T03:00:00")) // a Saturday night
      yield* Effect.gen(function* () {
        const clock = yield* MarketClock
        expect(clock.isOpen("KOSPI") && clock.isOpen("KOSDAQ")).toBe(true)
        yield* TestClock.adjust("3 days")
        expect(statuses(pipeline.published)).toEqual(["KOSPI:open", "KOSDAQ:open"])
        expect(clock.isOpen("KOSPI")).toBe(true)
      }).pipe(Effect.provide(layer))
    })
  })
})
