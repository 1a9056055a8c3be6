/**
 * PROTOCOL.md: over RATE_LIMIT a message is not processed; at most one RATE_LIMIT_EXCEEDED a
 * second; sustained abuse closes with 1008. Time is TestClock's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { makeRateLimiter } from "../src/ratelimit/RateLimiter.js"

describe("RateLimiter", () => {
  it.effect("allows `limit` messages a second and reports the excess once per second", () =>
    Effect.gen(function* () {
      const rl = makeRateLimiter(5)
      const b = yield* rl.bucket(10)
      const verdicts = yield* Effect.forEach(Array.from({ length: 13 }), () => rl.take(b))
      expect(verdicts.filter((v) => v === "allow")).toHaveLength(10)
      expect(verdicts.slice(10)).toEqual(["reject_report", "reject_silent", "reject_silent"])
      yield* TestClock.adjust("1 second")
      const after = yield* Effect.forEach(Array.from({ length: 11 }), () => rl.take(b))
      expect(after.filter((v) => v === "allow")).toHaveLength(10)
      expect(after[10]).toBe("reject_report")
    }),
  )

  it.effect("refills continuously", () =>
    Effect.gen(function* () {
      const rl = makeRateLimiter(5)
      const b = yield* rl.bucket(10)
      for (let i = 0; i < 10; i++) yield* rl.take(b)
      yield* TestClock.adjust("100 millis")
      expect(yield* rl.take(b)).toBe("allow")
      expect(yield* rl.take(b)).not.toBe("allow")
    }),
  )

  it.effect("calls it abuse after abuseFactor × limit rejections without a quiet second", () =>
    Effect.gen(function* () {
      const rl = makeRateLimiter(5)
      const b = yield* rl.bucket(10)
      const verdicts = yield* Effect.forEach(Array.from({ length: 10 + 51 }), () => rl.take(b))
      expect(verdicts.slice(0, 60)).not.toContain("abuse")
      expect(verdicts[60]).toBe("abuse")
    }),
  )

  it.effect("forgives a client that paused for a full second", () =>
    Effect.gen(function* () {
      const rl = makeRateLimiter(5)
      const b = yield* rl.bucket(10)
      for (let i = 0; i < 50; i++) yield* rl.take(b)
      yield* TestClock.adjust("2 seconds")
      const verdicts = yield* Effect.forEach(Array.from({ length: 40 }), () => rl.take(b))
      expect(verdicts).not.toContain("abuse")
    }),
  )
})
