/**
 * How the Redis implementations say that something failed without flooding the log: an outage
 * must not turn every publish into a log line, nor a corrupt entry read on every request into
 * one line per request. Each kind of failure is logged at most once per REPORT_EVERY_MS, with
 * the number suppressed meanwhile; values that do not decode are also counted, by what they
 * were (`quotecast_redis_decode_failures_total`).
 */
import { Effect } from "effect"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import type { RedisDecodeError } from "./codec.js"

const REPORT_EVERY_MS = 5_000

export const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

export interface Reports {
  /** Logs a failure, at most once per 5 s per `what` (with the number suppressed meanwhile). */
  readonly report: (what: string, cause: unknown) => void
  /** Counts a value that did not decode and logs it, at most once per 5 s per kind of value. */
  readonly decodeFailed: (e: RedisDecodeError) => void
}

export const makeReports = (
  runFork: (effect: Effect.Effect<void>) => unknown,
  stats: GatewayStatsImpl,
): Reports => {
  const last = new Map<string, { last: number; suppressed: number }>()
  /** The number suppressed since the last report of `key` when one is due now, else undefined. */
  const due = (key: string): number | undefined => {
    const now = Date.now()
    const r = last.get(key)
    if (r !== undefined && now - r.last < REPORT_EVERY_MS) {
      r.suppressed++
      return undefined
    }
    last.set(key, { last: now, suppressed: 0 })
    return r?.suppressed ?? 0
  }
  return {
    report: (what, cause) => {
      const suppressed = due(what)
      if (suppressed === undefined) return
      runFork(
        Effect.logWarning(`redis: ${what} failed`).pipe(
          Effect.annotateLogs({ error: errorText(cause), suppressed_since_last: suppressed }),
        ),
      )
    },
    decodeFailed: (e) => {
      stats.redisDecodeFailed(e.what)
      const suppressed = due(`decoding ${e.what}`)
      if (suppressed === undefined) return
      runFork(
        Effect.logWarning("redis: a value read does not decode").pipe(
          Effect.annotateLogs({ what: e.what, error: e.reason, suppressed_since_last: suppressed }),
        ),
      )
    },
  }
}
