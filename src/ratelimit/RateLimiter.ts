/**
 * Reject-and-report throttling (docs/protocol.md): a token bucket per connection that refills at
 * `limit` tokens per second, holding at most one second's worth. Time comes from Effect's
 * Clock, so TestClock drives it in tests. `effect/RateLimiter` only delays work, which the
 * protocol does not allow, hence this service.
 *
 * Input is charged by cost, not by count (docs/limits.md): an ordinary message costs
 * one token, a large frame one token per started `WS_FRAME_COST_BYTES` (`frameCost`), and a frame
 * answered INVALID_MESSAGE `WS_INVALID_FRAME_COST` more once decoded (`charge`). A frame is let
 * through whenever a whole token is left and its cost may take the bucket into debt (never
 * below one second's worth), so a costly frame is never refused outright, even under a low
 * limit; the debt then holds back what follows. With cost 1 this is exactly the count limit.
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
  /** Takes `cost` tokens (default 1) for a frame about to be processed; the verdict says whether to. */
  readonly take: (bucket: Bucket, cost?: number) => Effect.Effect<Verdict>
  /** Charges `cost` more tokens for a frame already let through (found invalid once decoded). */
  readonly charge: (bucket: Bucket, cost: number) => void
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
    charge: (b, cost) => {
      b.tokens = Math.max(-b.limit, b.tokens - cost)
    },
    take: (b, cost = 1) =>
      Effect.map(Clock.currentTimeMillis, (now): Verdict => {
        const elapsed = now - b.lastRefill
        if (elapsed > 0) {
          b.tokens = Math.min(b.limit, b.tokens + (elapsed * b.limit) / 1000)
          b.lastRefill = now
        }
        if (b.tokens >= 1) {
          b.tokens = Math.max(-b.limit, b.tokens - cost)
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

/**
 * Tokens a text frame of `length` characters costs: one per started `costChars` (at least one).
 * Every legal message fits in one token at the default 4096 (100 targets of 32 characters are
 * about 3.6 KB), so only frames larger than any ordinary message pay more.
 */
export const frameCost = (length: number, costChars: number): number =>
  length <= costChars ? 1 : Math.ceil(length / costChars)
