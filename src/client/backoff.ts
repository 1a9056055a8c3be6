/**
 * Reconnect backoff: exponential, capped, with jitter so that thousands of clients dropped by
 * the same restart (close 1012) do not return in lockstep.
 */
import { Duration, Schedule } from "effect"

export interface BackoffOptions {
  /** First delay (before jitter). Default 500 ms. */
  readonly initialDelay: Duration.DurationInput
  /** Largest delay (before jitter, so also the largest after it). Default 30 s. */
  readonly maxDelay: Duration.DurationInput
  /** Growth per attempt. Default 2. */
  readonly factor: number
  /**
   * Fraction of each delay that is random, 0..1: a delay d becomes uniform in [d * (1 - jitter), d].
   * Default 0.5 ("equal jitter"). Jitter only shortens, so `maxDelay` stays a true bound.
   */
  readonly jitter: number
  /** Attempts after a disconnect before giving up; undefined = keep trying. Default undefined. */
  readonly maxAttempts: number | undefined
}

export const defaultBackoff: BackoffOptions = {
  initialDelay: "500 millis",
  maxDelay: "30 seconds",
  factor: 2,
  jitter: 0.5,
  maxAttempts: undefined,
}

const clamp01 = (n: number): number => (Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0)

/**
 * The delays between reconnect attempts. Output: the delay chosen for this attempt (after jitter).
 * Attempt n (0-based) waits min(initial * factor^n, max) scaled by a random factor in [1 - jitter, 1];
 * the randomness comes from Effect's `Random` service, so tests can seed it.
 */
export const backoffSchedule = (
  options: Partial<BackoffOptions> = {},
): Schedule.Schedule<Duration.Duration> => {
  const o = { ...defaultBackoff, ...options }
  const max = Duration.decode(o.maxDelay)
  const capped = Schedule.exponential(o.initialDelay, o.factor).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, max)),
    Schedule.jitteredWith({ min: 1 - clamp01(o.jitter), max: 1 }),
  )
  const bounded =
    o.maxAttempts === undefined
      ? capped
      : Schedule.zipLeft(capped, Schedule.recurs(Math.max(0, o.maxAttempts)))
  return Schedule.delays(bounded)
}

/** The un-jittered delay of attempt `n` (0-based), the upper bound of what `backoffSchedule` picks. */
export const nominalDelayMillis = (n: number, options: Partial<BackoffOptions> = {}): number => {
  const o = { ...defaultBackoff, ...options }
  return Math.min(
    Duration.toMillis(Duration.decode(o.initialDelay)) * o.factor ** n,
    Duration.toMillis(Duration.decode(o.maxDelay)),
  )
}
