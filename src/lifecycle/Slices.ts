/**
 * Work that must happen once per interval for every item of a changing set (heartbeat pings of
 * the live connections, refreshing the attached sessions in Redis), on one clock for all of them
 * but spread over the interval: one slice every SLICE_MS, each item always in the slice of its
 * arrival number, so the slices are even and an item is visited exactly once per interval
 * however others come and go.
 *
 * Why not all at once: at 10,000 connections, one heartbeat sweep held the event loop for about
 * 190 ms (10,000 pings written, then 10,000 pongs read), and every connection's messages waited
 * behind it once per interval. A session refresh of 10,000 connections in one go is 10,000 Redis
 * scripts in one burst, which every other instance's traffic then queues behind.
 */
import { Effect, Schedule } from "effect"
import { yieldingToIo } from "./EventLoop.js"

/** What a sweep visits: numbered in arrival order, the number fixed for the item's life. */
export interface Arrived {
  readonly arrival: number
}

/** How far apart the slices of an interval are. */
const SLICE_MS = 100

/** How many slices an interval has: one per SLICE_MS, at least one. */
const slicesOf = (intervalMs: number): number => Math.max(1, Math.round(intervalMs / SLICE_MS))

/** A function whose n-th call returns the current items of slice n mod `slices`. */
const sliceCursor = <A extends Arrived>(
  items: () => Iterable<A>,
  slices: number,
): (() => ReadonlyArray<A>) => {
  let slice = 0
  return () => {
    const out: Array<A> = []
    for (const item of items()) if (item.arrival % slices === slice) out.push(item)
    slice = (slice + 1) % slices
    return out
  }
}

/**
 * Runs `visit` on one slice of `items()` every `intervalMs / slices` until interrupted (or
 * `visit` fails): the first slice one step after it starts, so every item is visited within one
 * interval of that.
 */
export const sweepInSlices = <A extends Arrived, E, R>(
  items: () => Iterable<A>,
  intervalMs: number,
  visit: (slice: ReadonlyArray<A>) => Effect.Effect<void, E, R>,
): Effect.Effect<void, E, R> => {
  const slices = slicesOf(intervalMs)
  const next = sliceCursor(items, slices)
  const step = Math.max(1, Math.round(intervalMs / slices))
  const once = Effect.suspend(() => {
    const slice = next()
    return slice.length === 0 ? Effect.void : visit(slice)
  })
  return Effect.delay(
    Effect.repeat(once, yieldingToIo(Schedule.fixed(`${step} millis`))),
    `${step} millis`,
  ).pipe(Effect.asVoid)
}
