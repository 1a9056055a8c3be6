/**
 * The client engine shared by the Effect API (`Client.ts`) and the callback facade
 * (`QuotecastClient.ts`). It wires three parts: the lifecycle reducer (`lifecycle.ts`: handshake,
 * restore, sequence numbers, subscriptions), request matching (`requests.ts`: ping and
 * refresh_token answers) and the reconnect supervisor (`supervisor.ts`: one connection after
 * another on the backoff schedule). This file runs one connection (open the socket, feed its frames
 * to the reducer, perform the reducer's actions) and owns the client's end. Output goes to a
 * `Sink`, so each API decides how to deliver it (mailboxes for Streams, direct calls for callbacks).
 */
import { Cause, Deferred, Effect, Fiber, Queue, Ref, type Scope } from "effect"
import type { ClientMessage } from "../protocol/client.js"
import { CloseCode } from "../protocol/errors.js"
import type { ServerSingle } from "../protocol/server.js"
import type { ClientOptions, Engine, Sink } from "./api.js"
import {
  ConnectFailed,
  ConnectionLost,
  NotConnected,
  type TerminalError,
  WebSocketUnavailable,
} from "./errors.js"
import { ClientEvent } from "./events.js"
import { decodeSingle, excerpt, sequenceOf, unpackFrame } from "./frames.js"
import { type Action, Input, initial, step, touchesSubscriptions } from "./lifecycle.js"
import { type Link, openLink } from "./link.js"
import { makeRequests } from "./requests.js"
import { globalWebSocket } from "./socket.js"
import { fromSubscriptionSet, toSubscriptionSet } from "./subscriptions.js"
import { type Outcome, type Policy, supervise } from "./supervisor.js"
import { buildUrl } from "./url.js"

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
    const validate = options.validate ?? true
    const policy: Policy = {
      reconnect: options.reconnect !== false,
      backoff: typeof options.reconnect === "object" ? options.reconnect : {},
      retryInitialConnect: options.retryInitialConnect ?? false,
      retryInvalidToken: options.tokenProvider !== undefined,
    }

    const state = yield* Ref.make(
      initial({
        sessionId: options.sessionId,
        token: options.token,
        desired: options.subscriptions ? fromSubscriptionSet(options.subscriptions) : undefined,
      }),
    )
    /** The connection requests go to; set only once its handshake is done. */
    const live = yield* Ref.make<Link | undefined>(undefined)
    // Serializes the inputs that read or change the subscriptions with sending what they ask for,
    // so a subscribe racing a handshake is either part of the handshake's plan or sent after it.
    const lock = yield* Effect.makeSemaphore(1)
    const firstReady = yield* Deferred.make<void, TerminalError>()
    const done = yield* Deferred.make<void, TerminalError>()
    const finished = yield* Ref.make(false)

    const sendAll = (link: Link, messages: ReadonlyArray<ClientMessage>) =>
      Effect.forEach(messages, (m) => link.send(m), { discard: true })

    /** Performs the reducer's actions; `link` is the connection the input concerns. */
    const perform = (actions: ReadonlyArray<Action>, link: Link | undefined) =>
      Effect.forEach(
        actions,
        (action) => {
          switch (action._tag) {
            case "Emit":
              return sink.event(action.event)
            case "Deliver":
              return sink.message(action.message)
            case "Send":
              return link === undefined ? Effect.void : sendAll(link, action.messages)
            case "Ready":
              return Effect.zipRight(Ref.set(live, link), Deferred.succeed(firstReady, undefined))
          }
        },
        { discard: true },
      )

    const apply = (input: Input, link: Link | undefined) =>
      Effect.flatMap(
        Ref.modify(state, (s) => {
          const next = step(s, input)
          return [next.actions, next.state]
        }),
        (actions) => perform(actions, link),
      )

    const requests = yield* makeRequests({
      transport: {
        live: (operation) =>
          Effect.flatMap(Ref.get(live), (link) =>
            link === undefined ? Effect.fail(new NotConnected({ operation })) : Effect.succeed(link.send),
          ),
        serialized: lock.withPermits(1),
      },
      timeout: options.requestTimeout ?? "10 seconds",
      onRefreshed: (token) => apply(Input.TokenChanged({ token }), undefined),
    })

    /** Ends the client once, whoever gets here first (owner close, or a terminal outcome). */
    const finish = (error: TerminalError | undefined) =>
      Effect.gen(function* () {
        if (yield* Ref.getAndSet(finished, true)) return
        yield* Ref.set(live, undefined)
        yield* apply(Input.Closed(), undefined)
        yield* requests.failAll
        yield* sink.event(ClientEvent.Closed({ error }))
        if (error === undefined) {
          yield* Deferred.succeed(done, undefined)
          yield* Deferred.fail(
            firstReady,
            new ConnectionLost({ code: CloseCode.normal, reason: "closed", attempts: 0 }),
          )
        } else {
          yield* Deferred.fail(done, error)
          yield* Deferred.fail(firstReady, error)
        }
      })

    const receive = (link: Link, message: ServerSingle) => {
      const received = apply(Input.Received({ message }), link)
      return Effect.zipRight(
        touchesSubscriptions(message) ? lock.withPermits(1)(received) : received,
        requests.answer(message),
      )
    }

    const handleText = (link: Link, text: string) =>
      Effect.gen(function* () {
        const unpacked = unpackFrame(text)
        if (unpacked._tag === "Left") {
          return yield* sink.event(ClientEvent.InvalidMessage({ reason: unpacked.left, raw: excerpt(text) }))
        }
        for (const item of unpacked.right.items) {
          const decoded = decodeSingle(item, validate)
          if (decoded._tag === "Right") {
            yield* receive(link, decoded.right)
            continue
          }
          yield* apply(Input.Unreadable({ sequence: sequenceOf(item) }), link)
          yield* sink.event(
            ClientEvent.InvalidMessage({ reason: decoded.left, raw: excerpt(JSON.stringify(item) ?? "") }),
          )
        }
      })

    const currentToken = Effect.gen(function* () {
      if (options.tokenProvider === undefined) return (yield* Ref.get(state)).token
      const token = yield* options.tokenProvider
      yield* apply(Input.TokenChanged({ token }), undefined)
      return token
    })

    /** One connection, from opening the socket until it closes. Never fails: the outcome says how it went. */
    const runConnection: Effect.Effect<Outcome> = Effect.scoped(
      Effect.gen(function* () {
        const tokenResult = yield* Effect.either(currentToken)
        if (tokenResult._tag === "Left") {
          // No token: do not connect anonymously in its place; count it as a failed attempt.
          const failure = new ConnectFailed({ reason: `token provider failed: ${String(tokenResult.left)}` })
          return { opened: false, wasReady: false, code: CloseCode.abnormal, reason: failure.reason, failure }
        }
        const url = buildUrl(options.url, {
          token: tokenResult.right,
          sessionId: (yield* Ref.get(state)).sessionId,
        })
        const opened = yield* Effect.either(openLink(WebSocket, url, connectTimeout))
        if (opened._tag === "Left") {
          const failure = opened.left
          const code = failure.code ?? CloseCode.abnormal
          return { opened: false, wasReady: false, code, reason: failure.reason, failure }
        }
        const link = opened.right
        yield* apply(Input.Opened(), link)
        // A server that opens the socket but never completes the handshake must not hang us.
        yield* Effect.sleep(connectTimeout).pipe(
          Effect.zipRight(Ref.get(state)),
          Effect.flatMap((s) =>
            s.status === "ready" ? Effect.void : link.close(CloseCode.normal, "handshake timeout"),
          ),
          Effect.forkScoped,
        )
        for (;;) {
          const inbound = yield* Queue.take(link.inbound)
          switch (inbound._tag) {
            case "Text":
              yield* handleText(link, inbound.text)
              break
            case "Binary":
              yield* sink.event(
                ClientEvent.InvalidMessage({ reason: "binary frame (the protocol is JSON text)", raw: "" }),
              )
              break
            case "Closed": {
              const wasReady = yield* lock.withPermits(1)(
                Effect.gen(function* () {
                  const before = yield* Ref.get(state)
                  yield* Ref.set(live, undefined)
                  yield* apply(Input.LinkClosed(), undefined)
                  return before.status === "ready"
                }),
              )
              yield* requests.failAll
              const { code, reason } = inbound
              const failure = wasReady
                ? undefined
                : new ConnectFailed({
                    reason: `closed during handshake (${code}${reason ? ` ${reason}` : ""})`,
                    code,
                  })
              return { opened: true, wasReady, code, reason, failure }
            }
          }
        }
      }),
    )

    const supervisor = supervise(policy, runConnection, {
      event: sink.event,
      retrying: apply(Input.Connecting(), undefined),
    })
    // A defect (a bug, or a throwing sink) must end the client visibly, not leave it hanging.
    const guarded = supervisor.pipe(
      Effect.flatMap(finish),
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.void
          : finish(
              new ConnectionLost({
                code: CloseCode.abnormal,
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

    const changeSubscriptions = (input: Input) =>
      lock.withPermits(1)(Effect.flatMap(Ref.get(live), (link) => apply(input, link)))

    const engine: Engine = {
      subscribe: (subscriptionType, targets) =>
        changeSubscriptions(Input.Subscribe({ subscriptionType, targets })),
      unsubscribe: (subscriptionType, targets) =>
        changeSubscriptions(Input.Unsubscribe({ subscriptionType, targets })),
      ping: requests.ping,
      refreshToken: requests.refreshToken,
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
