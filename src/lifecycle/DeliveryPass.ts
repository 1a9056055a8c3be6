/**
 * The delivery side's pass (the flusher's write pass over dirty connections), seen from the
 * producers below it. A timed producer (the simulator) waits in `idle` before each tick: a pass
 * hands the event loop a turn for I/O, not for a feed tick that would fan out thousands of
 * messages into the middle of it (measured in scenario A: passes then grew by half).
 * The contract lives here so the feed does not import the connection layer; `FlusherLive`
 * provides it. Without a flusher (a feed on its own, in tests) there is never a pass to wait for.
 */
import { Context, Effect } from "effect"

export interface DeliveryPassShape {
  /** Completes when no pass is running. */
  readonly idle: Effect.Effect<void>
}

export class DeliveryPass extends Context.Reference<DeliveryPass>()("quotecast/DeliveryPass", {
  defaultValue: (): DeliveryPassShape => ({ idle: Effect.void }),
}) {}
