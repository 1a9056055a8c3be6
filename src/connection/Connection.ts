/**
 * One connection's life: the runner, setup, and the end. Each WebSocket is served by one fiber
 * running `serveConnection` inside its own Scope: an Inbox fed by the socket's callbacks, an
 * Outbox drained by the Flusher's clock, and every resource it acquires (topic subscriptions, the session claim, the
 * registry entry, the token-expiry timer) bound to that Scope. However the connection ends
 * (client close, error, takeover, slow reader, shutdown), closing the Scope releases them.
 *
 * Memory matters here: 10,000+ of these are alive at once. So the behaviour is module-level
 * functions over one shared `Env` and the connection's `Conn`, not closures made per
 * connection; the socket listeners are shared functions that find their `Conn` through a
 * WeakMap; and the actor is one fiber (no race, no helper fibers) that waits on its inbox.
 * docs/internals/connection.md has the measurements behind each of these choices.
 *
 * The parts: `Env.ts` (services, upgrade parameters), `Actor.ts` (actor state, send),
 * `binding.ts` (socket listeners and the one release finalizer), `sessions.ts` (restore, adopt),
 * `commands.ts` (client commands), `conversation.ts` (the frame loop).
 */
import { randomUUID } from "node:crypto"
import { Cause, Clock, Effect, Either, Exit, Fiber, FiberSet, Option, Scope } from "effect"
import type { WebSocket } from "ws"
import { type Claims } from "../auth/JwtVerifier.js"
import { logInfoAnnotated } from "../config/logging.js"
import { sharedScheduler } from "../lifecycle/sharedScheduler.js"
import { CloseCode, InvalidToken, SessionRestorationFailed } from "../protocol/errors.js"
import { userTopic } from "../protocol/topics.js"
import { NO_SUBSCRIPTIONS, type Owner, type SessionRecord } from "../session/SessionStore.js"
import { type Actor, attach, now, send, sendError } from "./Actor.js"
import { type AdmissionRejected } from "./admissionTicket.js"
import { bind, closeForExit } from "./binding.js"
import { Conn } from "./Conn.js"
import { armExpiry } from "./commands.js"
import { conversation } from "./conversation.js"
import { negotiatedWindowBits } from "./deflate.js"
import { type ConnectionParams, type Env } from "./Env.js"
import { connectedMsg } from "./messages.js"
import { Outbox } from "./Outbox.js"
import { adopt, restore } from "./sessions.js"

/**
 * Forks the connection fibers, each supervised by a FiberSet that interrupts it when the
 * server's scope closes, all on the shared scheduler (`lifecycle/sharedScheduler.ts`). The
 * runtime is captured in an uninterruptible region, so the fibers start uninterruptible:
 * `serveConnection` makes the connection's Scope and the frame that closes it before anything
 * can interrupt, then opens interruption for the connection's life. Starting that way costs
 * nothing, where `uninterruptibleMask` would keep two more frames on every waiting fiber.
 *
 * The runtime is captured in a fiber forked for it, not in the Layer's own fiber: while a Layer
 * is built, Effect sets the fork-scope override to the Layer's scope, and a fiber forked from a
 * runtime captured there resets it to none, so every connection fiber got its own two-entry
 * stack for that FiberRef (about 260 bytes per connection, heap snapshots of
 * `bench/probes/perConnHeap.ts`). A forked fiber already holds none, which its forks share.
 */
export const connectionRunner: Effect.Effect<
  (env: Env, ws: WebSocket, params: ConnectionParams) => void,
  never,
  Scope.Scope
> = FiberSet.makeRuntime<never, void, never>().pipe(
  Effect.withScheduler(sharedScheduler),
  Effect.uninterruptible,
  Effect.fork,
  Effect.flatMap(Fiber.join),
  Effect.map((run) => (env: Env, ws: WebSocket, params: ConnectionParams) => {
    run(serveConnection(env, ws, params))
  }),
)

/**
 * Serves one accepted WebSocket until it closes. Never fails: every error is answered or logged.
 * Runs uninterruptible until `serve` (see `connectionRunner`). The Scope is made here and closed
 * with the fiber's exit however it ends: this is `Effect.acquireUseRelease` written out, so that
 * the waiting fiber's stack holds three frames (this match, the interruptible region's revert,
 * the conversation's continuation) where the combinators kept five, and nothing those frames
 * hold leads to setup's effect. The Scope is passed to what acquires into it
 * rather than provided as a service: providing it would copy the fiber's whole context (every
 * service of the gateway) for each connection.
 */
const serveConnection = (env: Env, ws: WebSocket, params: ConnectionParams): Effect.Effect<void> =>
  Effect.flatMap(Scope.make(), (scope) => serveIn(env, ws, new Handover(params), scope))

/**
 * The upgrade's parameters, handed to setup once. The frame that reverts the interruptible
 * region keeps the effect it entered with, and that effect's closure, for the connection's life:
 * what the closure holds beyond this cell (the parameters, their strings, the context they were
 * passed in) would stay with every connection.
 */
class Handover {
  constructor(public params: ConnectionParams | undefined) {}
}

/** A function of its own, so that the closure below holds only its arguments, not `serveConnection`'s. */
const serveIn = (
  env: Env,
  ws: WebSocket,
  handover: Handover,
  scope: Scope.CloseableScope,
): Effect.Effect<void> =>
  Effect.matchCauseEffect(
    Effect.interruptible(
      // Built when it runs: a frame keeps the effect it was made from, and setup's effect
      // (its generator function, that function's prototype and maps) would stay with it.
      Effect.suspend(() => {
        const params = handover.params
        handover.params = undefined
        return params === undefined ? Effect.void : serve(env, ws, params, scope)
      }),
    ),
    // Made by factories, not written as properties: tsx (esbuild keepNames) gives a named
    // function a property array, 256 bytes per connection for each.
    { onFailure: failedIn(env, scope, ws), onSuccess: endedIn(env, scope, ws) },
  )

/** Setup, then the conversation. Setup returns the actor and its generator ends, so nothing of setup stays alive with the connection. */
const serve = (env: Env, ws: WebSocket, params: ConnectionParams, scope: Scope.Scope): Effect.Effect<void> =>
  Effect.matchEffect(
    Effect.suspend(() => {
      // Frames that arrive while the setup waits for its slot stay in the socket's buffer.
      ws.pause()
      return env.admission.admitted(setup(env, ws, params, scope))
    }),
    { onFailure: (e) => refuse(env, ws, e), onSuccess: (a) => conversation(env, a) },
  )

/** A setup refused by admission (storm): 1013, which clients retry after a backoff. */
const refuse = (env: Env, ws: WebSocket, e: AdmissionRejected) =>
  Effect.suspend(() => {
    if (ws.readyState === ws.OPEN) {
      // Paused for the wait; the closing handshake needs the reply read.
      ws.resume()
      ws.close(CloseCode.tryAgainLater, "try again later")
      env.stats.closed(CloseCode.tryAgainLater)
    }
    return Effect.logDebug("connection setup refused").pipe(Effect.annotateLogs({ reason: e.reason }))
  })

const failedIn = (env: Env, scope: Scope.CloseableScope, ws: WebSocket) => (cause: Cause.Cause<never>) =>
  end(env, scope, ws, Exit.failCause(cause))
const endedIn = (env: Env, scope: Scope.CloseableScope, ws: WebSocket) => () => end(env, scope, ws, Exit.void)

/**
 * Closes the scope with the fiber's exit. A bug must not vanish with its connection: the socket
 * is closed (1011), then the defect is logged. The scope closes it once setup has bound it
 * (`closeSocket`); a connection that failed or was interrupted before that is closed here.
 */
const end = (env: Env, scope: Scope.CloseableScope, ws: WebSocket, exit: Exit.Exit<void>) =>
  Effect.zipRight(
    Scope.close(scope, exit),
    Effect.suspend(() => {
      if (ws.readyState === ws.OPEN) {
        const req = closeForExit(exit)
        // Setup paused the socket; the closing handshake needs its reply read.
        ws.resume()
        ws.close(req.code, req.reason)
        env.stats.closed(req.code)
      }
      return Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
        ? Effect.logError("connection failed", exit.cause)
        : Effect.void
    }),
  )

/** Authenticates, restores or creates the session, acquires the connection's resources, says `connected`. */
const setup = (env: Env, ws: WebSocket, params: ConnectionParams, scope: Scope.Scope): Effect.Effect<Actor> =>
  Effect.gen(function* () {
    const connectionId = randomUUID()
    const owner: Owner = { instanceId: env.instanceId, connectionId }
    // `ws` drops frames that arrive while no "message" listener is attached, and setup waits
    // (token check, session store: a Redis round trip in cluster mode): hold the socket until
    // the listeners are on.
    ws.pause()

    // Identity first: the session to restore depends on it. Frames that arrive meanwhile wait
    // in the socket's buffer (paused above) because the listeners are attached only once `Conn` exists.
    const auth: Either.Either<Claims | undefined, InvalidToken> =
      params.token === undefined
        ? Either.right(undefined)
        : yield* Effect.either(env.jwt.verify(params.token))
    const claims = Either.getOrUndefined(auth)
    const userId = claims?.userId ?? null

    const restored =
      Either.isRight(auth) && params.sessionId !== undefined
        ? Option.some(yield* Effect.either(restore(env, params.sessionId, userId, owner)))
        : Option.none<Either.Either<SessionRecord, SessionRestorationFailed>>()
    const session: SessionRecord =
      Option.isSome(restored) && Either.isRight(restored.value)
        ? restored.value.right
        : { id: randomUUID(), userId, subscriptions: NO_SUBSCRIPTIONS, lastSequence: 0, owner }
    const isNew = Option.isNone(restored) || Either.isLeft(restored.value)
    if (isNew && Either.isRight(auth)) {
      yield* env.sessions
        .create(session)
        .pipe(Effect.catchAll((e) => Effect.logWarning("session not stored", e.reason)))
    }

    const conn = new Conn(
      connectionId,
      ws,
      new Outbox(),
      env.flusher.scheduler,
      env.broker,
      yield* Clock.currentTimeMillis,
      { id: session.id, userId, lastSequence: session.lastSequence },
      negotiatedWindowBits(ws),
    )
    conn.limits = env.connLimits
    // Released in reverse: subscriptions, then (one finalizer) listeners, socket, session, registry.
    yield* bind(scope, env, conn, Either.isRight(auth) ? owner : undefined, params.addressKey)
    ws.resume()
    yield* conn.subs.bindTo(scope)
    const a: Actor = {
      conn,
      owner,
      scope,
      bucket: yield* env.limiter.bucket(claims?.rateLimit ?? env.config.rateLimit),
      expiry: undefined,
    }
    if (ws.readyState !== ws.OPEN)
      conn.requestClose({ code: CloseCode.abnormal, reason: "closed during setup", flush: false })

    yield* logInfoAnnotated("connection opened", {
      connection_id: connectionId,
      session_id: conn.sessionId,
      user_id: userId ?? "anonymous",
      remote: params.remoteAddress ?? "unknown",
      restored: Option.isSome(restored) && Either.isRight(restored.value),
    })

    // `connected` goes out alone and at once: clients read the first frame to learn their ids.
    yield* send(conn, connectedMsg(connectionId, conn.sessionId, userId, yield* now))
    env.flusher.flushNow(conn)
    if (Either.isLeft(auth)) {
      yield* sendError(conn, auth.left)
      conn.requestClose({ code: CloseCode.invalidToken, reason: "invalid token", flush: true })
    } else {
      if (Option.isSome(restored)) {
        const r = restored.value
        yield* Either.isLeft(r) ? sendError(conn, r.left) : adopt(env, a, r.right)
      }
      if (userId !== null) yield* attach(a, userTopic(userId))
      yield* armExpiry(a, claims?.expiresAt)
    }
    return a
  })
