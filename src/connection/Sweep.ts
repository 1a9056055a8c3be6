/**
 * Per-connection work that must happen once per interval (heartbeat pings), on one clock for
 * every live connection but spread over the interval by arrival number (`lifecycle/Slices.ts`).
 */
import type { Effect } from "effect"
import { sweepInSlices as sweepItemsInSlices } from "../lifecycle/Slices.js"
import type { Conn } from "./Conn.js"
import type { RegistryImpl } from "./Registry.js"

/** Runs `visit` on one slice of the live connections every `intervalMs / slices` (see `lifecycle/Slices.ts`). */
export const sweepInSlices = <E, R>(
  registry: RegistryImpl,
  intervalMs: number,
  visit: (conns: ReadonlyArray<Conn>) => Effect.Effect<void, E, R>,
): Effect.Effect<void, E, R> => sweepItemsInSlices(() => registry.byId.values(), intervalMs, visit)
