/**
 * Admission of connection setups (`connection/Admission.ts`): at most `limit` setups hold a
 * slot, the others wait in arrival order, a wait past `waitMs` or beyond `queueLimit` is refused,
 * and a slot is never lost, whether its setup succeeds, fails or is interrupted while waiting.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber } from "effect"
import { Admission } from "../../src/connection/Admission.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"

const make = (limit: number, queueLimit: number, waitMs: number) => {
  const stats = new GatewayStatsImpl()
  return { stats, admission: new Admission(limit, queueLimit, waitMs, stats) }
}

describe("Admission", () => {
  it.live("admits at most `limit` setups at once and the others in arrival order", () =>
    Effect.gen(function* () {
      const { stats, admission } = make(2, 100, 10_000)
      const order: Array<number> = []
      let running = 0
      let most = 0
      const setup = (i: number) =>
        admission.admitted(
          Effect.gen(function* () {
            running++
            most = Math.max(most, running)
            order.push(i)
            yield* Effect.sleep("5 millis")
            running--
          }),
        )
      yield* Effect.forEach([0, 1, 2, 3, 4, 5, 6, 7], setup, { concurrency: "unbounded" })
      expect(most).toBe(2)
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
      expect(stats.admissionQueued).toBe(6)
      expect(stats.setupsInFlightPeak).toBe(2)
      // Every slot came back (freed slots are handed on in the next turn).
      yield* Effect.sleep("5 millis")
      expect(admission.inFlight).toBe(0)
    }),
  )

  it.live("refuses a setup that waited longer than waitMs, and one that finds the queue full", () =>
    Effect.gen(function* () {
      const { stats, admission } = make(1, 1, 50)
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(admission.admitted(Deferred.await(release)))
      const waiter = yield* Effect.fork(Effect.either(admission.admitted(Effect.void)))
      yield* Effect.sleep("10 millis")
      const overflow = yield* Effect.either(admission.admitted(Effect.void))
      expect(Either.isLeft(overflow) && overflow.left.reason).toBe("queue_full")
      const waited = yield* Fiber.join(waiter)
      expect(Either.isLeft(waited) && waited.left.reason).toBe("timeout")
      expect(stats.admissionRejectedQueueFull).toBe(1)
      expect(stats.admissionRejectedTimeout).toBe(1)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      // The slot is free again.
      yield* Effect.sleep("5 millis")
      yield* admission.admitted(Effect.void)
    }),
  )

  it.live("gives the slot back when a setup fails, and the place when a waiting one is interrupted", () =>
    Effect.gen(function* () {
      const { admission } = make(1, 10, 10_000)
      const failed = yield* Effect.either(admission.admitted(Effect.fail("setup failed")))
      expect(Either.isLeft(failed)).toBe(true)
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(admission.admitted(Deferred.await(release)))
      yield* Effect.sleep("5 millis")
      const interrupted = yield* Effect.fork(admission.admitted(Effect.void))
      const next = yield* Effect.fork(admission.admitted(Effect.succeed("admitted")))
      yield* Effect.sleep("5 millis")
      yield* Fiber.interrupt(interrupted)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(next).pipe(Effect.timeout("2 seconds"))).toBe("admitted")
      yield* Effect.sleep("5 millis")
      expect(admission.inFlight).toBe(0)
      expect(admission.waiting).toBe(0)
    }),
  )
})
