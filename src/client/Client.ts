/**
 * The Effect API: `connect` gives a scoped client whose server messages are a Stream of typed
 * `ServerSingle`s (batches already unpacked) and whose lifecycle (gaps, reconnects, restores) is
 * a second Stream. Closing the scope closes the socket and ends both streams.
 *
 * ```ts
 * Effect.scoped(Effect.gen(function* () {
 *   const client = yield* Client.connect({ url: "ws://localhost:8000/v1/ws", WebSocket })
 *   yield* client.subscribe("stock", ["005930"])
 *   yield* client.messages.pipe(Stream.take(10), Stream.runForEach(Console.log))
 * }))
 * ```
 */
import { Effect, Mailbox, type Scope, type Stream } from "effect"
import type { ServerSingle } from "../protocol/server.js"
import type { ClientOptions, Engine } from "./api.js"
import { makeEngine } from "./engine.js"
import type { TerminalError, WebSocketUnavailable } from "./errors.js"
import type { ClientEvent } from "./events.js"

export interface ConnectOptions extends ClientOptions {
  /** Lifecycle events kept for a slow or absent `events` reader; the oldest are dropped. Default 1024. */
  readonly eventBuffer?: number | undefined
}

export interface Client extends Engine {
  /**
   * Every server message in sequence order, `batch`es unpacked. Buffered without limit until read
   * (a WebSocket cannot be paused from a browser), so read it. Ends when the client is closed by its
   * owner, fails with the terminal error otherwise. Single consumer: use `Stream.broadcast` to share.
   */
  readonly messages: Stream.Stream<ServerSingle, TerminalError>
  /** Lifecycle: Connected, Restored, RestoreFailed, Ready, Gap, InvalidMessage, Disconnected, Reconnecting, Closed. */
  readonly events: Stream.Stream<ClientEvent>
}

/** Connects, completes the first handshake, and returns the client; the scope owns the connection. */
export const connect = (
  options: ConnectOptions,
): Effect.Effect<Client, WebSocketUnavailable | TerminalError, Scope.Scope> =>
  Effect.gen(function* () {
    const messages = yield* Mailbox.make<ServerSingle, TerminalError>()
    const events = yield* Mailbox.make<ClientEvent>({
      capacity: options.eventBuffer ?? 1024,
      strategy: "sliding",
    })
    const engine = yield* makeEngine(options, {
      message: (message) => messages.offer(message),
      event: (event) =>
        event._tag === "Closed"
          ? Effect.gen(function* () {
              yield* events.offer(event)
              yield* events.end
              yield* event.error === undefined ? messages.end : messages.fail(event.error)
            })
          : events.offer(event),
    })
    return { ...engine, messages: Mailbox.toStream(messages), events: Mailbox.toStream(events) }
  })
