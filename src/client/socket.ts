/**
 * The smallest WebSocket surface the SDK needs, satisfied structurally by both the browser's
 * global `WebSocket` and the Node `ws` package's `WebSocket`, so neither is imported here.
 */

/**
 * Handler parameters are declared bivariantly (the "bivariance hack") so that the DOM's
 * `(this: WebSocket, ev: MessageEvent) => any` and `ws`'s `(event: WebSocket.MessageEvent) => void`
 * are both assignable; the SDK only ever reads the fields declared here.
 */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"]

export interface MessageEventLike {
  readonly data: unknown
}

export interface CloseEventLike {
  readonly code: number
  readonly reason: string
}

export interface WebSocketLike {
  readonly readyState: number
  onopen: Handler<unknown> | null
  onmessage: Handler<MessageEventLike> | null
  onclose: Handler<CloseEventLike> | null
  onerror: Handler<unknown> | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

/**
 * A WebSocket constructor: `globalThis.WebSocket` in browsers (and Node >= 22), or `WebSocket`
 * from `ws` in Node. To pass `ws` options (compression, localAddress), pass a subclass:
 * `class extends WS { constructor(url: string) { super(url, { perMessageDeflate: false }) } }`.
 */
export type WebSocketConstructor = new (url: string) => WebSocketLike

/** Standard readyState values (same in `ws` and browsers). */
export const ReadyState = { connecting: 0, open: 1, closing: 2, closed: 3 } as const

/** The global constructor, if this runtime has one (browsers, Node >= 22, Deno, Bun). */
export const globalWebSocket = (): WebSocketConstructor | undefined => {
  const candidate: unknown = (globalThis as { readonly WebSocket?: unknown }).WebSocket
  return typeof candidate === "function" ? (candidate as WebSocketConstructor) : undefined
}
