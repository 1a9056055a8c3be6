/**
 * The engine's surface, shared by the Effect API (`Client.ts`) and the facade
 * (`QuotecastClient.ts`): its options, where its output goes, and what it offers.
 */
import type { Duration, Effect } from "effect"
import type { SubscriptionType } from "../protocol/client.js"
import type { ServerSingle, SubscriptionSet } from "../protocol/server.js"
import type { BackoffOptions } from "./backoff.js"
import type { NotConnected, RequestTimeout, TerminalError, TokenRefreshFailed } from "./errors.js"
import type { ClientEvent } from "./events.js"
import type { ClientStatus } from "./lifecycle.js"
import type { TokenRefreshed } from "./requests.js"
import type { WebSocketConstructor } from "./socket.js"

export type { ClientStatus } from "./lifecycle.js"

export interface ClientOptions {
  /** e.g. `ws://localhost:8000/v1/ws`. */
  readonly url: string
  /** JWT sent as `?token=`; omit for anonymous use. */
  readonly token?: string | undefined
  /**
   * Asked for the token before every (re)connect, for tokens that rotate; wins over `token`.
   * With a provider, a 4001 close is retried (the provider may have a fresh token).
   */
  readonly tokenProvider?: Effect.Effect<string | undefined, unknown> | undefined
  /** Restore this session on the first connect (e.g. saved across a page reload). */
  readonly sessionId?: string | undefined
  /** Defaults to `globalThis.WebSocket`; pass `WebSocket` from `ws` in Node < 22. */
  readonly WebSocket?: WebSocketConstructor | undefined
  /** `false` disables reconnecting; an object tunes the backoff. Default: on, `defaultBackoff`. */
  readonly reconnect?: boolean | Partial<BackoffOptions> | undefined
  /** Keep retrying (with backoff) when the very first connect fails. Default false: `connect` fails. */
  readonly retryInitialConnect?: boolean | undefined
  /** Socket open plus handshake (`connected`, and `reconnected` when restoring). Default 10 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** ping / refresh_token answers. Default 10 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Check every message against the protocol Schemas (default true); false only checks `type`/`sequence`. */
  readonly validate?: boolean | undefined
  /** Subscriptions to hold from the start; sent once connected. */
  readonly subscriptions?: SubscriptionSet | undefined
}

/** Where the engine delivers its output. Calls happen in order, on the engine's fiber. */
export interface Sink {
  readonly message: (message: ServerSingle) => Effect.Effect<void>
  readonly event: (event: ClientEvent) => Effect.Effect<void>
}

export interface ClientState {
  readonly status: ClientStatus
  readonly sessionId: string | undefined
  readonly connectionId: string | undefined
  readonly userId: string | null | undefined
  /** Last sequence number seen in the current session (0 before any). */
  readonly lastSequence: number
  /** What the client wants to be subscribed to (re-sent after a failed restore). */
  readonly subscriptions: SubscriptionSet
}

export interface Engine {
  /** Adds targets; sent now when connected, else on the next connect. Never fails. */
  readonly subscribe: (type: SubscriptionType, targets: ReadonlyArray<string>) => Effect.Effect<void>
  readonly unsubscribe: (type: SubscriptionType, targets: ReadonlyArray<string>) => Effect.Effect<void>
  /** Round trip of a `ping`/`pong`. */
  readonly ping: Effect.Effect<Duration.Duration, NotConnected | RequestTimeout>
  /** Sends `refresh_token`; on `token_refreshed` the new token is also used for later reconnects. */
  readonly refreshToken: (
    token: string,
  ) => Effect.Effect<TokenRefreshed, NotConnected | RequestTimeout | TokenRefreshFailed>
  readonly state: Effect.Effect<ClientState>
  /** Closes the client (idempotent); the sink sees `Closed` without an error. */
  readonly close: Effect.Effect<void>
  /** Completes when the client closed: succeeds when closed by its owner, fails with the terminal error. */
  readonly await: Effect.Effect<void, TerminalError>
}
