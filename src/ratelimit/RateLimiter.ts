/**
 * Reject-and-report throttling (PROTOCOL.md): a token bucket per connection that refills at
 * `limit` tokens per second, holding at most one second's worth. Time comes from Effect's
 * Clock, so TestClock drives it in tests. `effect/RateLimiter` only delays work, which the
 * protocol does not allow, hence this service.
 */
import { Clock, Context, Effect, Layer } from "effect"

export type Verdict =
  /** Process the message. */
  | "allow"
  /** Drop it and tell the client (at most one error per second). */
  | "reject_report"
  /** Drop it silently: an error was already sent this second. */
  | "reject_silent"
  /** Sustained abuse: close the connection with 1008. */
  | "abuse"

export interface Bucket {
  readonly limit: number
  tokens: number
  lastRefill: number
  lastReport: number
  /** Messages rejected since the client last went a full second without a rejection. */
  streak: number
  lastReject: number
}

export interface RateLimiterShape {
  readonly bucket: (limit: number) => Effect.Effect<Bucket>
  readonly take: (bucket: Bucket) => Effect.Effect<Verdict>
  /** Rejections in one streak after which the connection is closed: `abuseFactor × limit`. */
  readonly abuseFactor: number
}

export class RateLimiter extends Context.Tag("quotecast/RateLimiter")<RateLimiter, RateLimiterShape>() {
  static readonly layer = Layer.succeed(RateLimiter, makeRateLimiter(5))
}

export function makeRateLimiter(abuseFactor: number): RateLimiterShape {
  return {
    abuseFactor,
    bucket: (limit) =>
      Effect.map(Clock.currentTimeMillis, (now) => ({
        limit,
        tokens: limit,
        lastRefill: now,
        lastReport: Number.NEGATIVE_INFINITY,
        streak: 0,
        lastReject: Number.NEGATIVE_INFINITY,
      })),
    take: (b) =>
      Effect.map(Clock.currentTimeMillis, (now): Verdict => {
        const elapsed = now - b.lastRefill
        if (elapsed > 0) {
          b.tokens = Math.min(b.limit, b.tokens + (elapsed * b.limit) / 1000)
          b.lastRefill = now
        }
        if (b.tokens >= 1) {
          b.tokens -= 1
          if (now - b.lastReject >= 1000) b.streak = 0
          return "allow"
        }
        if (now - b.lastReject >= 1000) b.streak = 0
        b.streak++
        b.lastReject = now
        if (b.streak > abuseFactor * b.limit) return "abuse"
        if (now - b.lastReport >= 1000) {
          b.lastReport = now
          return "reject_report"
        }
        return "reject_silent"
      }),
  }
}
