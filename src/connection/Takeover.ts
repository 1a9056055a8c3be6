/**
 * Asks whoever owns a session to let go of it (docs/protocol.md "Sessions": the older connection
 * is closed with 4000) and waits until it has. Embedded mode: the owner is on this instance.
 * Cluster mode (`RedisTakeover.ts`): a control message to the owning instance.
 */
import { Context, Effect, Layer } from "effect"
import type { Owner } from "../session/SessionStore.js"
import { Registry } from "./Registry.js"

export interface TakeoverShape {
  /** Resolves once `owner` has released the session (or is known to be gone). */
  readonly takeover: (sessionId: string, owner: Owner) => Effect.Effect<void>
}

export class Takeover extends Context.Tag("quotecast/Takeover")<Takeover, TakeoverShape>() {}

export const LocalTakeoverLive = Layer.effect(
  Takeover,
  Effect.map(Registry, (registry) => ({
    takeover: (_sessionId: string, owner: Owner) => Effect.asVoid(registry.takeover(owner.connectionId)),
  })),
)
