/**
 * Periodic per-connection work (heartbeat pings, the cluster's session refresh) is spread over its
 * interval: one slice every 100 ms, each item always in the slice of its arrival number, so items
 * that arrived together are visited at different times, and each exactly once per interval.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { sweepInSlices } from "../../src/lifecycle/Slices.js"

const items = Array.from({ length: 6 }, (_, arrival) => ({ arrival }))

describe("sweepInSlices", () => {
  it.effect("a 300 ms interval visits arrivals 0,3 then 1,4 then 2,5, 100 ms apart, and starts over", () =>
    Effect.gen(function* () {
      const visits: Array<{ at: number; arrivals: ReadonlyArray<number> }> = []
      const fiber = yield* Effect.fork(
        sweepInSlices(
          () => items,
          300,
          (slice) =>
            Effect.map(TestClock.currentTimeMillis, (at) => {
              visits.push({ at, arrivals: slice.map((i) => i.arrival) })
            }),
        ),
      )
      for (let t = 0; t < 6; t++) yield* TestClock.adjust("100 millis")
      yield* Fiber.interrupt(fiber)
      expect(visits).toEqual([
        { at: 100, arrivals: [0, 3] },
        { at: 200, arrivals: [1, 4] },
        { at: 300, arrivals: [2, 5] },
        { at: 400, arrivals: [0, 3] },
        { at: 500, arrivals: [1, 4] },
        { at: 600, arrivals: [2, 5] },
      ])
    }),
  )

  it.effect("an item that arrives later joins its slice; one that leaves is no longer visited", () =>
    Effect.gen(function* () {
      const live = new Map([[0, { arrival: 0 }]])
      const seen: Array<ReadonlyArray<number>> = []
      const fiber = yield* Effect.fork(
        sweepInSlices(
          () => live.values(),
          200,
          (slice) => Effect.sync(() => seen.push(slice.map((i) => i.arrival))),
        ),
      )
      yield* TestClock.adjust("100 millis")
      live.set(1, { arrival: 1 })
      yield* TestClock.adjust("100 millis")
      live.delete(0)
      yield* TestClock.adjust("200 millis")
      yield* Fiber.interrupt(fiber)
      expect(seen).toEqual([[0], [1], [1]])
    }),
  )
})
