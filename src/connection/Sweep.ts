/**
 * Per-connection work that must happen once per interval (heartbeat pings, refreshing attached
 * sessions in Redis), on one clock for every connection but spread over the interval: one slice
 * every SLICE_MS, each connection always in the slice of its arrival number, so the slices are
 * even and a connection is visited exactly once per interval however others come and go.
 *
 * Why not all at once: at 10,000 connections, one heartbeat sweep held the event loop for about
 * 190 ms (10,000 pings written, then 10,000 pongs read), and every connection's messages waited
 * behind it once per interval. A session refresh of 10,000 connections in one go is 10,000 Redis
 * scripts in one burst, which every other instance's traffic then queues behind.
 */
import { Effect, Schedule } from "effect"
import { yieldingToIo } from "../lifecycle/EventLoop.js"
import type { Conn } from "./Conn.js"
import type { RegistryImpl } from "./Registry.js"

/** How far apart the slices of an interval are. */
const SLICE_MS = 100

/** How many slices an interval has: one per SLICE_MS, at least one. */
const slicesOf = (intervalMs: number): number => Math.max(1, Math.round(intervalMs / SLICE_MS))

/** A function whose n-th call returns the live connections of slice n mod `slices`. */
const sliceCursor = (registry: RegistryImpl, slices: number): (() => ReadonlyArray<Conn>) => {
  let slice = 0
  return () => {
    const out: Array<Conn> = []
    for (const conn of registry.byId.values()) if (conn.arrival % slices === slice) out.push(conn)
    slice = (slice + 1) % slices
    return out
  }
}

/**
 * Runs `visit` on one slice of the live connections every `intervalMs / slices` until
 * interrupted (or `visit` fails): the first slice one step after it starts, so every connection
 * is visited within one interval of that.
 */
export const sweepInSlices = <E, R>(
  registry: RegistryImpl,
  intervalMs: number,
  visit: (conns: ReadonlyArray<Conn>) => Effect.Effect<void, E, R>,
): Effect.Effect<void, E, R> => {
  const slices = slicesOf(intervalMs)
  const next = sliceCursor(registry, slices)
  const step = Math.max(1, Math.round(intervalMs / slices))
  const once = Effect.suspend(() => {
    const conns = next()
    return conns.length === 0 ? Effect.void : visit(conns)
  })
  return Effect.delay(
    Effect.repeat(once, yieldingToIo(Schedule.fixed(`${step} millis`))),
    `${step} millis`,
  ).pipe(Effect.asVoid)
}
