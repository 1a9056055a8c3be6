/**
 * The live connections of this instance: for stats, the admin connection list, the heartbeat
 * sweep, shutdown, and session takeover (closing the connection that holds a session).
 */
import { Context, Deferred, Effect, Layer, type Scope } from "effect"
import type { Conn } from "./Conn.js"

export interface LiveConnection {
  readonly conn: Conn
  /** Completed after the connection's scope has closed (socket closed, session released). */
  readonly done: Deferred.Deferred<void>
}

export class RegistryImpl {
  readonly byId = new Map<string, LiveConnection>()

  register(entry: LiveConnection): Effect.Effect<void, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.sync(() => {
        this.byId.set(entry.conn.id, entry)
      }),
      () =>
        Effect.sync(() => {
          this.byId.delete(entry.conn.id)
        }),
    )
  }

  get size(): number {
    return this.byId.size
  }

  /**
   * Closes the connection holding a session with 4000 and waits until it has released the
   * session, so the next owner continues from its final sequence number.
   */
  takeover(connectionId: string): Effect.Effect<boolean> {
    const entry = this.byId.get(connectionId)
    if (entry === undefined) return Effect.succeed(false)
    entry.conn.requestClose({ code: 4000, reason: "session taken over", flush: true })
    return Effect.as(Deferred.await(entry.done), true)
  }
}

export class Registry extends Context.Tag("quotecast/Registry")<Registry, RegistryImpl>() {
  static readonly layer = Layer.sync(Registry, () => new RegistryImpl())
}
