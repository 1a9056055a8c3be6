/**
 * One WebSocket connection as a scoped resource: socket callbacks feed a Queue that the
 * connection's fiber drains, and closing the scope closes the socket.
 */
import { Deferred, Duration, Effect, Exit, Queue, type Scope } from "effect"
import type { ClientMessage } from "../protocol/client.js"
import { CloseCode } from "../protocol/errors.js"
import { ConnectFailed } from "./errors.js"
import { ReadyState, type WebSocketConstructor, type WebSocketLike } from "./socket.js"
import { redactUrl } from "./url.js"

export type Inbound =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Binary" }
  | { readonly _tag: "Closed"; readonly code: number; readonly reason: string }

export interface Link {
  readonly inbound: Queue.Dequeue<Inbound>
  /** Sends one message; false when the socket is no longer open (the close event will follow). */
  readonly send: (message: ClientMessage) => Effect.Effect<boolean>
  readonly close: (code: number, reason: string) => Effect.Effect<void>
}

const closeQuietly = (socket: WebSocketLike, code: number, reason: string): void => {
  if (socket.readyState === ReadyState.closing || socket.readyState === ReadyState.closed) return
  try {
    socket.close(code, reason)
  } catch {
    // A socket that cannot be closed is already going away; nothing to report.
  }
}

/** Opens a socket and waits for `open` (not for the protocol handshake, which the caller reads). */
export const openLink = (
  WebSocket: WebSocketConstructor,
  url: string,
  timeout: Duration.DurationInput,
): Effect.Effect<Link, ConnectFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const inbound = yield* Queue.unbounded<Inbound>()
    const opened = yield* Deferred.make<void, ConnectFailed>()
    const socket = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const socket = new WebSocket(url)
          // Handlers go on in the same tick as construction, before any event can be dispatched.
          socket.onopen = () => {
            Deferred.unsafeDone(opened, Exit.void)
          }
          socket.onmessage = (event) => {
            const data = event.data
            Queue.unsafeOffer(
              inbound,
              typeof data === "string" ? { _tag: "Text", text: data } : { _tag: "Binary" },
            )
          }
          socket.onclose = (event) => {
            Deferred.unsafeDone(
              opened,
              Exit.fail(
                new ConnectFailed({
                  reason: `closed before open (${event.code}${event.reason ? ` ${event.reason}` : ""})`,
                  code: event.code,
                }),
              ),
            )
            Queue.unsafeOffer(inbound, { _tag: "Closed", code: event.code, reason: event.reason })
          }
          // An error is always followed by close, which carries what we report.
          socket.onerror = () => {}
          return socket
        },
        catch: (e) =>
          new ConnectFailed({
            reason: `cannot open ${redactUrl(url)}: ${e instanceof Error ? e.message : String(e)}`,
          }),
      }),
      (socket) => Effect.sync(() => closeQuietly(socket, CloseCode.normal, "client closed")),
    )
    yield* Deferred.await(opened).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new ConnectFailed({ reason: `no open within ${Duration.format(Duration.decode(timeout))}` }),
      }),
    )
    return {
      inbound,
      send: (message) =>
        Effect.sync(() => {
          if (socket.readyState !== ReadyState.open) return false
          try {
            socket.send(JSON.stringify(message))
            return true
          } catch {
            return false
          }
        }),
      close: (code, reason) => Effect.sync(() => closeQuietly(socket, code, reason)),
    }
  })
