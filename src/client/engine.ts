/**
 * The client engine shared by the Effect API (`Client.ts`) and the callback facade
 * (`QuotecastClient.ts`): one supervisor fiber connects, runs the handshake (including session
 * restore), pumps frames, and reconnects on the backoff schedule. Output goes to a `Sink`, so each
 * API decides how to deliver it (mailboxes for Streams, direct calls for callbacks).
 */
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Fiber,
  Option,
  Queue,
  Ref,
  Schedule,
  ScheduleDecision,
  type Scope,
} from "effect"
import type { ClientMessage, SubscriptionType } from "../protocol/client.js"
import type { ServerSingle, SubscriptionSet } from "../protocol/server.js"
import { type BackoffOptions, backoffSchedule } from "./backoff.js"
import {
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
import { ClientEvent, type SequenceGap } from "./events.js"
import { decodeSingle, excerpt, sequenceOf, unpackFrame } from "./frames.js"
import { type Link, openLink } from "./link.js"
import { checkSequence, lastBeforeConnected } from "./sequence.js"
import { globalWebSocket, type WebSocketConstructor } from "./socket.js"
import {
  addTargets,
  chunkedMessages,
  type Desired,
  emptyDesired,
  fromSubscriptionSet,
  reconcile,
  removeTargets,
  subscribeAll,
  toSubscriptionSet,
} from "./subscriptions.js"
import { buildUrl } from "./url.js"

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

export type ClientStatus = "connecting" | "handshaking" | "ready" | "reconnecting" | "closed"

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
  ) => Effect.Effect<
    Extract<ServerSingle, { readonly type: "token_refreshed" }>,
    NotConnected | RequestTimeout | TokenRefreshFailed
  >
  readonly state: Effect.Effect<ClientState>
  /** Closes the client (idempotent); the sink sees `Closed` without an error. */
  readonly close: Effect.Effect<void>
  /** Completes when the client closed: succeeds when closed by its owner, fails with the terminal error. */
  readonly await: Effect.Effect<void, TerminalError>
}

type TokenRefreshed = Extract<ServerSingle, { readonly type: "token_refreshed" }>

interface Internal {
  readonly status: ClientStatus
  readonly sessionId: string | undefined
  readonly connectionId: string | undefined
  readonly userId: string | null | undefined
  readonly last: number
  readonly token: string | undefined
  readonly desired: Desired
  /** The connection requests go to; set only once its handshake is done. */
  readonly live: Link | undefined
}

interface PendingRefresh {
  readonly token: string
  readonly deferred: Deferred.Deferred<TokenRefreshed, TokenRefreshFailed | NotConnected>
}

/** How one connection attempt ended. */
interface Outcome {
  readonly opened: boolean
  readonly wasReady: boolean
  readonly code: number
  readonly reason: string
  readonly failure: ConnectFailed | undefined
}

type Phase = "awaiting_connected" | "awaiting_restore" | "ready"

/** Per-connection handshake state, confined to that connection's fiber. */
interface Attempt {
  readonly link: Link
  readonly restoring: string | undefined
  phase: Phase
  readonly ready: Deferred.Deferred<void>
  /**
   * A restore's `connected` that did not continue the numbering: reported as a gap only if
   * `reconnected` does not announce the jump (after a crash of the session's instance).
   */
  jump: SequenceGap | undefined
}

const CODE_TAKEN_OVER = 4000
const CODE_INVALID_TOKEN = 4001
/** 1006: abnormal closure, what browsers report when no close frame arrived. */
const CODE_ABNORMAL = 1006

export const makeEngine = (
  options: ClientOptions,
  sink: Sink,
): Effect.Effect<Engine, WebSocketUnavailable | TerminalError, Scope.Scope> =>
  Effect.gen(function* () {
    const WebSocket = options.WebSocket ?? globalWebSocket()
    if (WebSocket === undefined) {
      return yield* new WebSocketUnavailable({
        message:
          "No global WebSocket in this runtime; pass the `ws` package's WebSocket as the WebSocket option",
      })
    }
    const connectTimeout = options.connectTimeout ?? "10 seconds"
    const requestTimeout = Duration.decode(options.requestTimeout ?? "10 seconds")
    const validate = options.validate ?? true
    const reconnectEnabled = options.reconnect !== false
    const backoff = typeof options.reconnect === "object" ? options.reconnect : {}

    const state = yield* Ref.make<Internal>({
      status: "connecting",
      sessionId: options.sessionId,
      connectionId: undefined,
      userId: undefined,
      last: 0,
      token: options.token,
      desired: options.subscriptions ? fromSubscriptionSet(options.subscriptions) : emptyDesired,
      live: undefined,
    })
    // Serializes changes to `desired` with sending them, so a subscribe racing a handshake is
    // either included in the handshake's re-subscribe or sent after it, never lost.
    const lock = yield* Effect.makeSemaphore(1)
    const pendingRefresh = yield* Ref.make<ReadonlyArray<PendingRefresh>>([])
    const pendingPings = yield* Ref.make<ReadonlyMap<string, Deferred.Deferred<void, NotConnected>>>(
      new Map(),
    )
    const pingCounter = yield* Ref.make(0)
    const firstReady = yield* Deferred.make<void, TerminalError>()
    const done = yield* Deferred.make<void, TerminalError>()
    const finished = yield* Ref.make(false)

    const failPending = Effect.gen(function* () {
      const refreshes = yield* Ref.getAndSet(pendingRefresh, [])
      for (const p of refreshes)
        yield* Deferred.fail(p.deferred, new NotConnected({ operation: "refresh_token" }))
      const pings = yield* Ref.getAndSet(pendingPings, new Map())
      for (const d of pings.values()) yield* Deferred.fail(d, new NotConnected({ operation: "ping" }))
    })

    /** Ends the client once, whoever gets here first (owner close, or a terminal outcome). */
    const finish = (error: TerminalError | undefined) =>
      Effect.gen(function* () {
        if (yield* Ref.getAndSet(finished, true)) return
        yield* Ref.update(state, (s) => ({ ...s, status: "closed" as const, live: undefined }))
        yield* failPending
        yield* sink.event(ClientEvent.Closed({ error }))
        if (error === undefined) {
          yield* Deferred.succeed(done, undefined)
          yield* Deferred.fail(firstReady, new ConnectionLost({ code: 1000, reason: "closed", attempts: 0 }))
        } else {
          yield* Deferred.fail(done, error)
          yield* Deferred.fail(firstReady, error)
        }
      })

    const track = (received: number) =>
      Effect.gen(function* () {
        const s = yield* Ref.get(state)
        const check = checkSequence(s.last, received)
        yield* Ref.set(state, { ...s, last: check.last })
        if (check.gap !== undefined) {
          yield* sink.event(ClientEvent.Gap({ ...check.gap, sessionId: s.sessionId }))
        }
      })

    const sendAll = (link: Link, messages: ReadonlyArray<ClientMessage>) =>
      Effect.forEach(messages, (m) => link.send(m), { discard: true })

    /** Handshake done: send what `desired` needs on this session, then accept direct requests. */
    const becomeReady = (attempt: Attempt, plan: (desired: Desired) => ReadonlyArray<ClientMessage>) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const s = yield* Ref.get(state)
          yield* sendAll(attempt.link, plan(s.desired))
          attempt.phase = "ready"
          yield* Ref.set(state, { ...s, status: "ready", live: attempt.link })
          yield* Deferred.succeed(attempt.ready, undefined)
          yield* Deferred.succeed(firstReady, undefined)
          if (s.sessionId !== undefined) yield* sink.event(ClientEvent.Ready({ sessionId: s.sessionId }))
        }),
      )

    const restoreFailed = (attempt: Attempt, previousSessionId: string) =>
      Effect.gen(function* () {
        const s = yield* Ref.get(state)
        yield* sink.event(ClientEvent.RestoreFailed({ previousSessionId, sessionId: s.sessionId ?? "" }))
        yield* becomeReady(attempt, subscribeAll)
      })

    const handleError = (attempt: Attempt, msg: Extract<ServerSingle, { readonly type: "error" }>) =>
      Effect.gen(function* () {
        switch (msg.code) {
          case "SESSION_RESTORATION_FAILED":
            // Normally `connected` already carried a new session id; this covers a server that says so later.
            if (attempt.phase === "awaiting_restore") yield* restoreFailed(attempt, attempt.restoring ?? "")
            return
          case "SUBSCRIPTION_FAILED": {
            // Forget rejected targets, so they are not re-sent after every reconnect.
            const details = msg.details
            const type = details.subscription_type
            const rejected = Array.isArray(details.rejected) ? details.rejected : []
            const targets = rejected.flatMap((r: unknown) =>
              typeof r === "object" && r !== null && typeof (r as { target?: unknown }).target === "string"
                ? [(r as { target: string }).target]
                : typeof r === "string"
                  ? [r]
                  : [],
            )
            if ((type === "stock" || type === "market" || type === "sector") && targets.length > 0) {
              yield* lock.withPermits(1)(
                Ref.update(state, (s) => ({ ...s, desired: removeTargets(s.desired, type, targets) })),
              )
            }
            return
          }
          case "TOKEN_REFRESH_ERROR": {
            const pending = yield* Ref.modify(pendingRefresh, (ps) => [ps[0], ps.slice(1)] as const)
            if (pending !== undefined) {
              yield* Deferred.fail(
                pending.deferred,
                new TokenRefreshFailed({ message: msg.message, details: msg.details }),
              )
            }
            return
          }
          default:
            return
        }
      })

    const handleSingle = (attempt: Attempt, msg: ServerSingle) =>
      Effect.gen(function* () {
        if (msg.type === "connected") {
          const restoring = attempt.restoring
          const s0 = yield* Ref.updateAndGet(state, (s) => ({
            ...s,
            sessionId: msg.session_id,
            connectionId: msg.connection_id,
            userId: msg.user_id,
            last: lastBeforeConnected(s.last, restoring, msg.session_id),
          }))
          if (restoring !== undefined && restoring === msg.session_id && msg.sequence !== s0.last + 1) {
            // Held until `reconnected` says whether the server announced this jump.
            attempt.jump = { expected: s0.last + 1, received: msg.sequence, sessionId: msg.session_id }
            yield* Ref.set(state, { ...s0, last: msg.sequence })
          } else yield* track(msg.sequence)
          yield* sink.event(
            ClientEvent.Connected({
              connectionId: msg.connection_id,
              sessionId: msg.session_id,
              userId: msg.user_id,
              restoring: restoring !== undefined,
            }),
          )
          yield* sink.message(msg)
          if (restoring === undefined) yield* becomeReady(attempt, subscribeAll)
          else if (restoring !== msg.session_id) yield* restoreFailed(attempt, restoring)
          else attempt.phase = "awaiting_restore"
          return
        }
        yield* track(msg.sequence)
        yield* sink.message(msg)
        switch (msg.type) {
          case "reconnected":
            if (attempt.jump !== undefined && msg.sequence_jumped !== true)
              yield* sink.event(ClientEvent.Gap(attempt.jump))
            attempt.jump = undefined
            if (attempt.phase === "awaiting_restore") {
              yield* sink.event(
                ClientEvent.Restored({
                  sessionId: msg.session_id,
                  restoredSubscriptions: msg.restored_subscriptions,
                  missedMessagesCount: msg.missed_messages_count,
                  sequenceJumped: msg.sequence_jumped === true,
                }),
              )
              yield* becomeReady(attempt, (desired) => reconcile(desired, msg.restored_subscriptions))
            }
            return
          case "error":
            return yield* handleError(attempt, msg)
          case "token_refreshed": {
            const pending = yield* Ref.modify(pendingRefresh, (ps) => [ps[0], ps.slice(1)] as const)
            if (pending !== undefined) {
              yield* Ref.update(state, (s) => ({ ...s, token: pending.token }))
              yield* Deferred.succeed(pending.deferred, msg)
            }
            return
          }
          case "pong": {
            if (typeof msg.id !== "string") return
            const id = msg.id
            const waiting = yield* Ref.modify(pendingPings, (m) => {
              const d = m.get(id)
              if (d === undefined) return [undefined, m] as const
              const next = new Map(m)
              next.delete(id)
              return [d, next] as const
            })
            if (waiting !== undefined) yield* Deferred.succeed(waiting, undefined)
            return
          }
          default:
            return
        }
      })

    const handleText = (attempt: Attempt, text: string) =>
      Effect.gen(function* () {
        const unpacked = unpackFrame(text)
        if (unpacked._tag === "Left") {
          return yield* sink.event(ClientEvent.InvalidMessage({ reason: unpacked.left, raw: excerpt(text) }))
        }
        for (const item of unpacked.right.items) {
          const decoded = decodeSingle(item, validate)
          if (decoded._tag === "Right") {
            yield* handleSingle(attempt, decoded.right)
            continue
          }
          // Keep numbering through a message we cannot type, so it is not also reported as a gap.
          const seq = sequenceOf(item)
          if (seq !== undefined) yield* track(seq)
          yield* sink.event(
            ClientEvent.InvalidMessage({ reason: decoded.left, raw: excerpt(JSON.stringify(item) ?? "") }),
          )
        }
      })

    const currentToken = Effect.gen(function* () {
      if (options.tokenProvider === undefined) return (yield* Ref.get(state)).token
      const token = yield* options.tokenProvider
      yield* Ref.update(state, (s) => ({ ...s, token }))
      return token
    })

    /** One connection, from opening the socket until it closes. Never fails: the outcome says how it went. */
    const runConnection: Effect.Effect<Outcome> = Effect.scoped(
      Effect.gen(function* () {
        const tokenResult = yield* Effect.either(currentToken)
        if (tokenResult._tag === "Left") {
          // No token: do not connect anonymously in its place; count it as a failed attempt.
          const failure = new ConnectFailed({ reason: `token provider failed: ${String(tokenResult.left)}` })
          return { opened: false, wasReady: false, code: CODE_ABNORMAL, reason: failure.reason, failure }
        }
        const token = tokenResult.right
        const restoring = (yield* Ref.get(state)).sessionId
        const url = buildUrl(options.url, { token, sessionId: restoring })
        const opened = yield* Effect.either(openLink(WebSocket, url, connectTimeout))
        if (opened._tag === "Left") {
          const failure = opened.left
          return {
            opened: false,
            wasReady: false,
            code: failure.code ?? CODE_ABNORMAL,
            reason: failure.reason,
            failure,
          }
        }
        const link = opened.right
        yield* Ref.update(state, (s) => ({ ...s, status: "handshaking" as const }))
        const attempt: Attempt = {
          link,
          restoring,
          phase: "awaiting_connected",
          ready: yield* Deferred.make<void>(),
          jump: undefined,
        }
        // A server that opens the socket but never completes the handshake must not hang us.
        yield* Deferred.await(attempt.ready).pipe(
          Effect.timeout(connectTimeout),
          Effect.catchAll(() => link.close(1000, "handshake timeout")),
          Effect.forkScoped,
        )
        for (;;) {
          const inbound = yield* Queue.take(link.inbound)
          switch (inbound._tag) {
            case "Text":
              yield* handleText(attempt, inbound.text)
              break
            case "Binary":
              yield* sink.event(
                ClientEvent.InvalidMessage({ reason: "binary frame (the protocol is JSON text)", raw: "" }),
              )
              break
            case "Closed": {
              const wasReady = attempt.phase === "ready"
              yield* lock.withPermits(1)(
                Ref.update(state, (s) => ({ ...s, live: undefined, status: "reconnecting" as const })),
              )
              yield* failPending
              return {
                opened: true,
                wasReady,
                code: inbound.code,
                reason: inbound.reason,
                failure: wasReady
                  ? undefined
                  : new ConnectFailed({
                      reason: `closed during handshake (${inbound.code}${inbound.reason ? ` ${inbound.reason}` : ""})`,
                      code: inbound.code,
                    }),
              }
            }
          }
        }
      }),
    )

    const attempts = yield* Ref.make(0)
    const driver = yield* Schedule.driver(
      backoffSchedule(backoff).pipe(
        // onDecision rather than tapOutput: the step that ends the schedule is not an attempt.
        Schedule.onDecision((delay, decision) =>
          ScheduleDecision.isDone(decision)
            ? Effect.void
            : Effect.flatMap(
                Ref.updateAndGet(attempts, (n) => n + 1),
                (attempt) =>
                  sink.event(ClientEvent.Reconnecting({ attempt, delayMillis: Duration.toMillis(delay) })),
              ),
        ),
      ),
    )

    /** Why this outcome ends the client, if it does. */
    const terminalFor = (outcome: Outcome, everReady: boolean): TerminalError | undefined => {
      if (outcome.code === CODE_TAKEN_OVER) {
        return new SessionTakenOver({ code: outcome.code, reason: outcome.reason })
      }
      if (outcome.code === CODE_INVALID_TOKEN && options.tokenProvider === undefined) {
        return new TokenRejected({ code: outcome.code, reason: outcome.reason })
      }
      if (!everReady && !(options.retryInitialConnect ?? false)) {
        return (
          outcome.failure ??
          new ConnectFailed({ reason: `closed before ready (${outcome.code})`, code: outcome.code })
        )
      }
      if (!reconnectEnabled)
        return new ConnectionLost({ code: outcome.code, reason: outcome.reason, attempts: 0 })
      return undefined
    }

    const supervise = Effect.gen(function* () {
      let everReady = false
      for (;;) {
        const outcome = yield* runConnection
        if (outcome.wasReady) {
          everReady = true
          yield* driver.reset
          yield* Ref.set(attempts, 0)
        }
        const terminal = terminalFor(outcome, everReady)
        if (outcome.opened) {
          yield* sink.event(
            ClientEvent.Disconnected({
              code: outcome.code,
              reason: outcome.reason,
              willReconnect: terminal === undefined,
            }),
          )
        }
        if (terminal !== undefined) return yield* finish(terminal)
        const next = yield* Effect.option(driver.next(undefined))
        if (Option.isNone(next)) {
          const made = yield* Ref.get(attempts)
          return yield* finish(
            new ConnectionLost({
              code: outcome.code,
              reason: outcome.reason || "reconnect attempts exhausted",
              attempts: made,
            }),
          )
        }
        yield* Ref.update(state, (s) => ({ ...s, status: "connecting" as const }))
      }
    })

    // A defect (a bug, or a throwing sink) must end the client visibly, not leave it hanging.
    const guarded = supervise.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.void
          : finish(
              new ConnectionLost({
                code: CODE_ABNORMAL,
                reason: `client defect: ${Cause.pretty(cause)}`,
                attempts: 0,
              }),
            ),
      ),
    )
    const fiber = yield* Effect.forkScoped(guarded)
    const close = Effect.gen(function* () {
      if (yield* Ref.get(finished)) return
      yield* Fiber.interrupt(fiber)
      yield* finish(undefined)
    })
    yield* Effect.addFinalizer(() => close)

    // `connect` returns once the first handshake is done; on failure release at once, not at scope end.
    yield* Deferred.await(firstReady).pipe(Effect.onError(() => close))

    const requireLive = (operation: string) =>
      Effect.flatMap(Ref.get(state), (s) =>
        s.live === undefined ? Effect.fail(new NotConnected({ operation })) : Effect.succeed(s.live),
      )

    const engine: Engine = {
      subscribe: (type, targets) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const unique = [...new Set(targets)]
            if (unique.length === 0) return
            const s = yield* Ref.updateAndGet(state, (s) => ({
              ...s,
              desired: addTargets(s.desired, type, unique),
            }))
            if (s.live !== undefined) yield* sendAll(s.live, chunkedMessages("subscribe", type, unique))
          }),
        ),
      unsubscribe: (type, targets) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const unique = [...new Set(targets)]
            if (unique.length === 0) return
            const s = yield* Ref.updateAndGet(state, (s) => ({
              ...s,
              desired: removeTargets(s.desired, type, unique),
            }))
            if (s.live !== undefined) yield* sendAll(s.live, chunkedMessages("unsubscribe", type, unique))
          }),
        ),
      ping: Effect.gen(function* () {
        const link = yield* requireLive("ping")
        const id = `qc-${yield* Ref.updateAndGet(pingCounter, (n) => n + 1)}`
        const answered = yield* Deferred.make<void, NotConnected>()
        yield* Ref.update(pendingPings, (m) => new Map(m).set(id, answered))
        const started = yield* Clock.currentTimeMillis
        yield* link.send({ type: "ping", id })
        yield* Deferred.await(answered).pipe(
          Effect.timeoutFail({
            duration: requestTimeout,
            onTimeout: () =>
              new RequestTimeout({ operation: "ping", millis: Duration.toMillis(requestTimeout) }),
          }),
          Effect.ensuring(
            Ref.update(pendingPings, (m) => {
              const next = new Map(m)
              next.delete(id)
              return next
            }),
          ),
        )
        return Duration.millis((yield* Clock.currentTimeMillis) - started)
      }),
      refreshToken: (token) =>
        Effect.gen(function* () {
          // Enqueue and send under the lock: answers come in send order and are matched FIFO.
          const answered = yield* lock.withPermits(1)(
            Effect.gen(function* () {
              const link = yield* requireLive("refresh_token")
              const deferred = yield* Deferred.make<TokenRefreshed, TokenRefreshFailed | NotConnected>()
              yield* Ref.update(pendingRefresh, (ps) => [...ps, { token, deferred }])
              yield* link.send({ type: "refresh_token", token })
              return deferred
            }),
          )
          // A timed-out entry stays queued so that a late answer still pairs with it.
          return yield* Deferred.await(answered).pipe(
            Effect.timeoutFail({
              duration: requestTimeout,
              onTimeout: () =>
                new RequestTimeout({ operation: "refresh_token", millis: Duration.toMillis(requestTimeout) }),
            }),
          )
        }),
      state: Effect.map(Ref.get(state), (s) => ({
        status: s.status,
        sessionId: s.sessionId,
        connectionId: s.connectionId,
        userId: s.userId,
        lastSequence: s.last,
        subscriptions: toSubscriptionSet(s.desired),
      })),
      close,
      await: Deferred.await(done),
    }
    return engine
  })
