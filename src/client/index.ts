/**
 * quotecast client SDK.
 * - Effect API: `Client.connect(options)` -> scoped `Client` with `messages` / `events` Streams.
 * - Callback/Promise facade: `new QuotecastClient(options)`, `on(type, handler)`, `connect()`.
 * Both work in Node (pass `WebSocket` from `ws`) and browsers (global WebSocket).
 */

export type { CandleInterval, SubscriptionType } from "../protocol/client.js"
export type {
  Candle,
  CandleSnapshot,
  CandleUpdate,
  ServerSingle,
  SubscriptionSet,
} from "../protocol/server.js"
export type { ClientOptions, ClientState, ClientStatus, Engine, Sink } from "./api.js"
export { type BackoffOptions, backoffSchedule, defaultBackoff, nominalDelayMillis } from "./backoff.js"
export type { Client as QuotecastEffectClient, ConnectOptions } from "./Client.js"
export * as Client from "./Client.js"
export {
  ConnectFailed,
  ConnectionLost,
  NotConnected,
  RequestTimeout,
  SessionTakenOver,
  type TerminalError,
  TokenRefreshFailed,
  TokenRejected,
  WebSocketUnavailable,
} from "./errors.js"
export { ClientEvent, type SequenceGap } from "./events.js"
export { decodeSingle, type UnpackedFrame, unpackFrame } from "./frames.js"
export {
  type LifecycleEvents,
  type MessageEvents,
  QuotecastClient,
  type QuotecastClientOptions,
  type QuotecastError,
  type QuotecastEventMap,
  type QuotecastEventName,
  type ServerMessageOf,
} from "./QuotecastClient.js"
export { checkSequence, type SequenceCheck } from "./sequence.js"
export type { CloseEventLike, MessageEventLike, WebSocketConstructor, WebSocketLike } from "./socket.js"
