/**
 * The callback/Promise facade for code that does not use Effect (the browser dashboard, plain
 * Node scripts). Same engine as the Effect API; handlers run in order as messages arrive.
 * Browser-safe: nothing here imports `ws` or `node:` modules.
 *
 * ```ts
 * const client = new QuotecastClient({ url: "ws://localhost:8000/v1/ws" })
 * client.on("price_update", (m) => render(m.code, m.price))
 * client.on("gap", ({ expected, received }) => console.warn("missed", received - expected))
 * await client.connect()
 * client.subscribe("stock", ["005930", "000660"])
 * ```
 */
import { Cause, Duration, Effect, Exit, Option, Scope } from "effect"
import type { SubscriptionType } from "../protocol/client.js"
import type { ServerSingle } from "../protocol/server.js"
import type { ClientOptions, ClientState, Engine, Sink } from "./api.js"
import { makeEngine } from "./engine.js"
import type {
  NotConnected,
  RequestTimeout,
  TerminalError,
  TokenRefreshFailed,
  WebSocketUnavailable,
} from "./errors.js"
import type { SequenceGap } from "./events.js"
import { addTargets, type Desired, emptyDesired, removeTargets, toSubscriptionSet } from "./subscriptions.js"

export type ServerMessageOf<K extends ServerSingle["type"]> = Extract<ServerSingle, { readonly type: K }>

/** One entry per server message type, so `on("price_update", m => m.price)` is typed. */
export type MessageEvents = { readonly [K in ServerSingle["type"]]: ServerMessageOf<K> }

export interface LifecycleEvents {
  /** Every server message (batches unpacked), after its type-specific handlers. */
  readonly message: ServerSingle
  /** A handshake completed (first connect, restore, or new session after a failed restore). */
  readonly ready: { readonly sessionId: string }
  readonly gap: SequenceGap
  readonly disconnect: { readonly code: number; readonly reason: string; readonly willReconnect: boolean }
  readonly reconnecting: { readonly attempt: number; readonly delayMillis: number }
  /** Restore failed: a new session started and the subscriptions were sent again. */
  readonly restore_failed: { readonly previousSessionId: string; readonly sessionId: string }
  readonly invalid_message: { readonly reason: string; readonly raw: string }
  /** The client stopped for good; `error` is undefined after `close()`. */
  readonly close: { readonly error: TerminalError | undefined }
}

export type QuotecastEventMap = MessageEvents & LifecycleEvents
export type QuotecastEventName = keyof QuotecastEventMap

export interface QuotecastClientOptions extends Omit<ClientOptions, "tokenProvider"> {
  /** Called before every (re)connect for a current token (e.g. from a refresh flow). */
  readonly tokenProvider?: (() => string | undefined | Promise<string | undefined>) | undefined
}

type AnyHandler = (event: never) => void

/** Errors `connect()` and the request methods reject with (all `Error` instances with a `_tag`). */
export type QuotecastError =
  | WebSocketUnavailable
  | TerminalError
  | NotConnected
  | RequestTimeout
  | TokenRefreshFailed

const reportHandlerError = (error: unknown): void => {
  // A throwing handler must not stop delivery to the others; surface it the platform's way.
  const report = (globalThis as { readonly reportError?: (e: unknown) => void }).reportError
  if (typeof report === "function") report(error)
  else console.error("quotecast handler failed:", error)
}

/** Runs an Effect and settles the Promise with its own typed error (not a FiberFailure wrapper). */
const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromiseExit(effect).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    throw Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
  })

export class QuotecastClient {
  readonly #options: QuotecastClientOptions
  readonly #handlers = new Map<QuotecastEventName, Set<AnyHandler>>()
  #engine: Engine | undefined
  #scope: Scope.CloseableScope | undefined
  #connecting: Promise<void> | undefined
  #closed = false
  /** Subscriptions requested before `connect()`; handed to the engine as its initial set. */
  #initial: Desired

  constructor(options: QuotecastClientOptions) {
    this.#options = options
    this.#initial = emptyDesired
  }

  /** Adds a handler; returns a function that removes it. */
  on<K extends QuotecastEventName>(type: K, handler: (event: QuotecastEventMap[K]) => void): () => void {
    let set = this.#handlers.get(type)
    if (set === undefined) {
      set = new Set()
      this.#handlers.set(type, set)
    }
    set.add(handler)
    return () => this.off(type, handler)
  }

  off<K extends QuotecastEventName>(type: K, handler: (event: QuotecastEventMap[K]) => void): void {
    this.#handlers.get(type)?.delete(handler)
  }

  #emit<K extends QuotecastEventName>(type: K, event: QuotecastEventMap[K]): void {
    const set = this.#handlers.get(type)
    if (set === undefined) return
    for (const handler of [...set]) {
      try {
        ;(handler as (event: QuotecastEventMap[K]) => void)(event)
      } catch (error) {
        reportHandlerError(error)
      }
    }
  }

  readonly #sink: Sink = {
    message: (message) =>
      Effect.sync(() => {
        this.#emit(message.type, message as QuotecastEventMap[typeof message.type])
        this.#emit("message", message)
      }),
    event: (event) =>
      Effect.sync(() => {
        switch (event._tag) {
          case "Ready":
            return this.#emit("ready", { sessionId: event.sessionId })
          case "Gap":
            return this.#emit("gap", {
              expected: event.expected,
              received: event.received,
              sessionId: event.sessionId,
            })
          case "Disconnected":
            return this.#emit("disconnect", {
              code: event.code,
              reason: event.reason,
              willReconnect: event.willReconnect,
            })
          case "Reconnecting":
            return this.#emit("reconnecting", { attempt: event.attempt, delayMillis: event.delayMillis })
          case "RestoreFailed":
            return this.#emit("restore_failed", {
              previousSessionId: event.previousSessionId,
              sessionId: event.sessionId,
            })
          case "InvalidMessage":
            return this.#emit("invalid_message", { reason: event.reason, raw: event.raw })
          case "Closed":
            this.#closed = true
            return this.#emit("close", { error: event.error })
          case "Connected":
          case "Restored":
            // Visible as the `connected` / `reconnected` messages.
            return
        }
      }),
  }

  /**
   * Connects and resolves after the first handshake (`connected`, plus `reconnected` when restoring
   * `sessionId`). Rejects with `ConnectFailed`, `WebSocketUnavailable`, ... Calling it again returns
   * the same Promise.
   */
  connect(): Promise<void> {
    if (this.#connecting !== undefined) return this.#connecting
    const { tokenProvider, ...rest } = this.#options
    const options: ClientOptions = {
      ...rest,
      subscriptions: toSubscriptionSet(this.#initial),
      tokenProvider:
        tokenProvider === undefined
          ? undefined
          : Effect.tryPromise({ try: () => Promise.resolve(tokenProvider()), catch: (e) => e }),
    }
    const sink = this.#sink
    this.#connecting = run(
      Effect.gen(this, function* () {
        const scope = yield* Scope.make()
        this.#scope = scope
        const engine = yield* makeEngine(options, sink).pipe(
          Scope.extend(scope),
          Effect.onError(() => Scope.close(scope, Exit.void)),
        )
        this.#engine = engine
      }),
    )
    return this.#connecting
  }

  /** Subscribes (before `connect()` too: then sent once connected). Re-sent automatically after a failed restore. */
  subscribe(type: SubscriptionType, targets: ReadonlyArray<string>): Promise<void> {
    const engine = this.#engine
    if (engine !== undefined) return run(engine.subscribe(type, targets))
    // Mid-connect the initial set was already handed over: apply once the handshake is done.
    if (this.#connecting !== undefined) return this.#afterConnect(() => this.subscribe(type, targets))
    this.#initial = addTargets(this.#initial, type, targets)
    return Promise.resolve()
  }

  unsubscribe(type: SubscriptionType, targets: ReadonlyArray<string>): Promise<void> {
    const engine = this.#engine
    if (engine !== undefined) return run(engine.unsubscribe(type, targets))
    if (this.#connecting !== undefined) return this.#afterConnect(() => this.unsubscribe(type, targets))
    this.#initial = removeTargets(this.#initial, type, targets)
    return Promise.resolve()
  }

  /** Runs `f` after a pending connect; if that connect fails there is nothing to apply it to. */
  #afterConnect(f: () => Promise<void>): Promise<void> {
    return (this.#connecting ?? Promise.resolve()).then(f, () => undefined)
  }

  /** Round-trip time of a ping, in milliseconds. Rejects with `NotConnected` or `RequestTimeout`. */
  ping(): Promise<number> {
    if (this.#engine === undefined) return Promise.reject(new Error("not connected: call connect() first"))
    return run(Effect.map(this.#engine.ping, Duration.toMillis))
  }

  /** Sends `refresh_token`; resolves with `token_refreshed` (the token is then used for reconnects). */
  refreshToken(token: string): Promise<ServerMessageOf<"token_refreshed">> {
    if (this.#engine === undefined) return Promise.reject(new Error("not connected: call connect() first"))
    return run(this.#engine.refreshToken(token))
  }

  /** Closes the socket and stops reconnecting; `close` handlers see no error. */
  close(): Promise<void> {
    const scope = this.#scope
    if (scope === undefined) {
      this.#closed = true
      return Promise.resolve()
    }
    return run(Scope.close(scope, Exit.void))
  }

  /** A snapshot of the connection state (status, session id, last sequence, subscriptions). */
  get state(): ClientState {
    if (this.#engine !== undefined) return Effect.runSync(this.#engine.state)
    return {
      status: this.#closed ? "closed" : "connecting",
      sessionId: this.#options.sessionId,
      connectionId: undefined,
      userId: undefined,
      lastSequence: 0,
      subscriptions: toSubscriptionSet(this.#initial),
    }
  }

  get sessionId(): string | undefined {
    return this.state.sessionId
  }

  get closed(): boolean {
    return this.#closed
  }
}
