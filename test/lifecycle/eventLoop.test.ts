/**
 * Repeating loops hand Node's event loop a turn between runs (lifecycle/EventLoop.ts): a loop
 * that falls behind its schedule (zero delay) must still let socket I/O and timers in.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { yieldingToIo } from "../../src/lifecycle/EventLoop.js"

/** Runs `schedule`'s repeats of one step and counts, per run, the event-loop turns seen so far. */
const turnsSeenPerRun = (schedule: Schedule.Schedule<unknown>) =>
  Effect.gen(function* () {
    let turns = 0
    let done = false
    const tick = () => {
      turns++
      if (!done) setImmediate(tick)
    }
    setImmediate(tick)
    const seen: Array<number> = []
    yield* Effect.repeat(
      Effect.sync(() => seen.push(turns)),
      schedule,
    ).pipe(Effect.ensuring(Effect.sync(() => (done = true))))
    return seen
  })

describe("yieldingToIo", () => {
  it.live("a zero-delay schedule alone runs back to back without returning to the event loop", () =>
    Effect.gen(function* () {
      expect(yield* turnsSeenPerRun(Schedule.recurs(3))).toEqual([0, 0, 0, 0])
    }),
  )

  it.live("with yieldingToIo, each next run comes after a turn of the event loop", () =>
    Effect.gen(function* () {
      const seen = yield* turnsSeenPerRun(yieldingToIo(Schedule.recurs(3)))
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] as number)
    }),
  )
})
