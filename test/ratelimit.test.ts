/**
 * docs/protocol.md: over RATE_LIMIT a message is not processed; at most one RATE_LIMIT_EXCEEDED a
 * second; sustained abuse closes with 1008. Time is TestClock's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { MAX_TARGETS } from "../src/protocol/client.js"
import { frameCost, makeRateLimiter } from "../src/ratelimit/RateLimiter.js"

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

  describe("input charged by cost", () => {
    it("a legal message costs one token however large it may legally be; larger frames one per started 4 KB", () => {
      const biggest = JSON.stringify({
        type: "subscribe",
        subscription_type: "stock",
        targets: Array.from({ length: MAX_TARGETS }, () => "x".repeat(32)),
      })
      expect(frameCost(biggest.length, 4096)).toBe(1)
      expect(frameCost(4097, 4096)).toBe(2)
      expect(frameCost(65_536, 4096)).toBe(16)
    })

    it.effect("a costly frame passes while a whole token is left; its debt holds back what follows", () =>
      Effect.gen(function* () {
        const rl = makeRateLimiter(5)
        const b = yield* rl.bucket(100)
        expect(yield* rl.take(b, 16)).toBe("allow")
        expect(b.tokens).toBe(84)
        for (let i = 0; i < 5; i++) expect(yield* rl.take(b, 16)).toBe("allow")
        // 4 tokens left: the seventh 16-token frame still passes, into debt.
        expect(yield* rl.take(b, 16)).toBe("allow")
        expect(b.tokens).toBe(-12)
        expect(yield* rl.take(b, 1)).toBe("reject_report")
        // 13 tokens of refill (130 ms at 100/s) before anything passes again.
        yield* TestClock.adjust("120 millis")
        expect(yield* rl.take(b, 1)).not.toBe("allow")
        yield* TestClock.adjust("20 millis")
        expect(yield* rl.take(b, 1)).toBe("allow")
      }),
    )

    it.effect("a charge after the fact (an invalid frame) is taken from the same budget", () =>
      Effect.gen(function* () {
        const rl = makeRateLimiter(5)
        const b = yield* rl.bucket(10)
        expect(yield* rl.take(b)).toBe("allow")
        rl.charge(b, 4)
        expect(b.tokens).toBe(5)
        let allowed = 0
        while ((yield* rl.take(b)) === "allow") allowed++
        expect(allowed).toBe(5)
      }),
    )

    it.effect("debt never exceeds one second's worth, so one costly frame is forgiven within a second", () =>
      Effect.gen(function* () {
        const rl = makeRateLimiter(5)
        const b = yield* rl.bucket(10)
        expect(yield* rl.take(b, 1000)).toBe("allow")
        rl.charge(b, 1000)
        expect(b.tokens).toBe(-10)
        yield* TestClock.adjust("2100 millis")
        expect(yield* rl.take(b)).toBe("allow")
      }),
    )

    it.effect(
      "a flood of 16-token frames at the message limit is rejected, reported once a second, then closed as abuse",
      () =>
        Effect.gen(function* () {
          const rl = makeRateLimiter(5)
          const b = yield* rl.bucket(100)
          const verdicts: Array<string> = []
          // 100 frames a second, one every 10 ms, for up to 10 s.
          for (let i = 0; i < 1000 && verdicts.at(-1) !== "abuse"; i++) {
            verdicts.push(yield* rl.take(b, 16))
            yield* TestClock.adjust("10 millis")
          }
          const firstSecond = verdicts.slice(0, 100)
          expect(firstSecond.filter((v) => v === "allow").length).toBeLessThanOrEqual(100 / 16 + 7)
          expect(firstSecond.filter((v) => v === "reject_report")).toHaveLength(1)
          expect(verdicts.at(-1)).toBe("abuse")
          expect(verdicts.length).toBeLessThan(700)
        }),
    )
  })
})
