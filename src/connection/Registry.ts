/**
 * The live connections of this instance: for stats, the admin connection list, the heartbeat
 * sweep, shutdown, and session takeover (closing the connection that holds a session).
 * Entries are added and removed by each connection's own scope (`Connection.ts` `register`).
 */
import { Context, Effect, Layer } from "effect"
import { CloseCode } from "../protocol/errors.js"
import type { Conn } from "./Conn.js"

export class RegistryImpl {
  readonly byId = new Map<string, Conn>()

  get size(): number {
    return this.byId.size
  }

  /**
   * Closes the connection holding a session with 4000 and waits until it has released the
   * session, so the next owner continues from its final sequence number.
   */
  takeover(connectionId: string): Effect.Effect<boolean> {
    const conn = this.byId.get(connectionId)
    if (conn === undefined) return Effect.succeed(false)
    conn.requestClose({ code: CloseCode.takenOver, reason: "session taken over", flush: true })
    return Effect.as(conn.awaitEnd(), true)
  }
}

export class Registry extends Context.Tag("quotecast/Registry")<Registry, RegistryImpl>() {
  static readonly layer = Layer.sync(Registry, () => new RegistryImpl())
}
