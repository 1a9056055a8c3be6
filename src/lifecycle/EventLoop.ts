/**
 * Loops that repeat on a Schedule must hand Node's event loop a turn between runs. When a
 * schedule's next delay is zero (a `Schedule.fixed` loop running behind, a flush pass longer
 * than its interval), `Effect.repeat` goes straight into the next run without returning to the
 * event loop, so an overloaded process stops reading its sockets (pongs, client messages: every
 * heartbeat then times out) and stops writing out what the kernel could not take at once. Seen
 * in benchmark scenario E (2,000,000 msg/s offered): the feed fell behind, ran back to back,
 * and the event loop stalled for seconds until every connection was terminated.
 */
import { Duration, Effect, Schedule } from "effect"

/** One millisecond: Node runs its timers only after the I/O that is ready. */
const ONE_TURN = Duration.millis(1)

/** `schedule`, with every delay at least one turn of the event loop. */
export const yieldingToIo = <Out, In, R>(schedule: Schedule.Schedule<Out, In, R>) =>
  schedule.pipe(Schedule.modifyDelay((_, delay) => Duration.max(delay, ONE_TURN)))

/**
 * Lets Node run the I/O that is ready (socket reads, Redis messages, timers due), then goes on:
 * for long synchronous work (a flush pass over thousands of sockets) that must not hold
 * everything else back until it is done.
 */
export const yieldToIo: Effect.Effect<void> = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})
