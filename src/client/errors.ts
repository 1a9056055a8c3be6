/**
 * Failures the SDK reports. Server-side protocol errors arrive as `error` messages in the
 * message stream; these are the client's own outcomes (could not connect, gave up, ...).
 */
import { Data } from "effect"

/** No WebSocket constructor was given and the runtime has no global one (Node < 22). */
export class WebSocketUnavailable extends Data.TaggedError("WebSocketUnavailable")<{
  readonly message: string
}> {}

/** The (first) connection could not be established, or closed before the handshake completed. */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly reason: string
  /** WebSocket close code when the socket closed, absent for timeouts and constructor errors. */
  readonly code?: number
}> {}

/** The server closed with 4001 after `INVALID_TOKEN` and no token provider can supply another. */
export class TokenRejected extends Data.TaggedError("TokenRejected")<{
  readonly code: number
  readonly reason: string
}> {}

/** Another connection restored this session (close code 4000); reconnecting would steal it back. */
export class SessionTakenOver extends Data.TaggedError("SessionTakenOver")<{
  readonly code: number
  readonly reason: string
}> {}

/** Reconnection is disabled, or the reconnect schedule gave up. */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{
  readonly code: number
  readonly reason: string
  /** Reconnect attempts made since the last healthy connection. */
  readonly attempts: number
}> {}

/** How a client ends when it was not closed by its owner. */
export type TerminalError = ConnectFailed | TokenRejected | SessionTakenOver | ConnectionLost

/** A request that needs a live connection (ping, refresh_token) was made while there was none. */
export class NotConnected extends Data.TaggedError("NotConnected")<{ readonly operation: string }> {}

/** No answer in time. */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{
  readonly operation: string
  readonly millis: number
}> {}

/** The server answered `refresh_token` with `TOKEN_REFRESH_ERROR`; the old identity stays. */
export class TokenRefreshFailed extends Data.TaggedError("TokenRefreshFailed")<{
  readonly message: string
  readonly details: Readonly<Record<string, unknown>>
}> {}
