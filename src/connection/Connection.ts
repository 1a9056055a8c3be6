/**
 * The connection actor. Each WebSocket is served by one fiber running `serveConnection` inside
 * its own Scope: an Inbox fed by the socket's callbacks, an Outbox drained by the
 * Flusher's clock, and every resource it acquires (topic subscriptions, the session claim, the
 * registry entry, the token-expiry timer) bound to that Scope. However the connection ends
 * (client close, error, takeover, slow reader, shutdown), closing the Scope releases them.
 *
 * Memory matters here: 10,000+ of these are alive at once. So the behaviour is module-level
 * functions over one shared `Env` and the connection's `Conn`, not closures made per
 * connection; the socket listeners are shared functions that find their `Conn` through a
 * WeakMap; and the actor is one fiber (no race, no helper fibers) that waits on its inbox.
 * ARCHITECTURE.md "A connection's life" has the measurements behind each of these choices.
 */
import { randomUUID } from "node:crypto"
import type { IncomingMessage } from "node:http"
import { Cause, Clock, Effect, Either, Exit, FiberHandle, FiberSet, Option, Scope } from "effect"
import type { RawData, WebSocket } from "ws"
import { type Claims, JwtVerifier, type JwtVerifierShape } from "../auth/JwtVerifier.js"
import { Broker, type BrokerShape } from "../broker/Broker.js"
import { isUserTopic, type Topic, userTopic } from "../broker/topics.js"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import { InstanceId } from "../config/InstanceId.js"
import { logInfoAnnotated } from "../config/logging.js"
import { sharedScheduler } from "../lifecycle/sharedScheduler.js"
import { Universe, type UniverseShape } from "../market/Universe.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { type ClientMessage, SUBSCRIPTION_TYPES, type SubscriptionType } from "../protocol/client.js"
import { binaryFrame, decodeText } from "../protocol/decode.js"
import { asSnapshot, isAlertBody, nowIso, type Outgoing } from "../protocol/encode.js"
import {
  InvalidToken,
  type ProtocolError,
  RateLimitExceeded,
  SessionRestorationFailed,
  SubscriptionFailed,
  TokenRefreshError,
} from "../protocol/errors.js"
import { type Bucket, frameCost, RateLimiter, type RateLimiterShape } from "../ratelimit/RateLimiter.js"
import {
  NO_SUBSCRIPTIONS,
  type Owner,
  type SessionRecord,
  SessionStore,
  type SessionStoreShape,
} from "../session/SessionStore.js"
import { Takeover, type TakeoverShape } from "../session/Takeover.js"
import { SnapshotStore, type SnapshotStoreShape } from "../snapshot/SnapshotStore.js"
import { Admission, type AdmissionRejected } from "./Admission.js"
import { BINARY, CLOSE, type CloseRequest, Conn, type Inbound } from "./Conn.js"
import { negotiatedWindowBits } from "./deflate.js"
import { Flusher, type FlusherShape } from "./Flusher.js"
import {
  connectedMsg,
  errorMsg,
  pongMsg,
  reconnectedMsg,
  subscribedMsg,
  tokenRefreshedMsg,
} from "./messages.js"
import { Outbox } from "./Outbox.js"
import { Registry, type RegistryImpl } from "./Registry.js"

/** Frames waiting for the actor; beyond this the client is flooding far past any limit (1008). */
const INBOUND_CAPACITY = 1024

export interface ConnectionParams {
  readonly token: string | undefined
  readonly sessionId: string | undefined
  readonly remoteAddress: string | undefined
  /** What the client's address counts under for per-address bounds (the address; its /64 for IPv6). */
  readonly addressKey: string | undefined
}

/**
 * `remoteAddress`: the client's address as the server resolved it (`http/clientAddress.ts`:
 * X-Forwarded-For from a trusted proxy, else the TCP peer); defaults to the TCP peer.
 */
export const paramsOf = (
  req: IncomingMessage,
  remoteAddress = req.socket.remoteAddress,
  addressKey = remoteAddress,
): ConnectionParams => {
  const url = new URL(req.url ?? "/", "http://localhost")
  const token = url.searchParams.get("token")
  const sessionId = url.searchParams.get("session_id")
  return {
    token: token === null || token === "" ? undefined : token,
    sessionId: sessionId === null || sessionId === "" ? undefined : sessionId,
    remoteAddress,
    addressKey,
  }
}

/** The services every connection uses, resolved once per server. */
export interface Env {
  readonly config: AppConfigShape
  readonly universe: UniverseShape
  readonly broker: BrokerShape
  readonly snapshots: SnapshotStoreShape
  readonly sessions: SessionStoreShape
  readonly takeover: TakeoverShape
  readonly jwt: JwtVerifierShape
  readonly limiter: RateLimiterShape
  readonly flusher: FlusherShape
  readonly registry: RegistryImpl
  readonly stats: GatewayStatsImpl
  readonly instanceId: string
  /** Setup slots for reconnect storms (`Admission.ts`). */
  readonly admission: Admission
}

export const makeEnv = Effect.all({
  config: AppConfig,
  universe: Universe,
  broker: Broker,
  snapshots: SnapshotStore,
  sessions: SessionStore,
  takeover: Takeover,
  jwt: JwtVerifier,
  limiter: RateLimiter,
  flusher: Flusher,
  registry: Registry,
  stats: GatewayStats,
  instanceId: InstanceId,
  admission: Effect.map(
    Effect.all([AppConfig, GatewayStats]),
    ([config, stats]) =>
      new Admission(
        config.setupConcurrency,
        config.admissionQueue,
        config.admissionWaitMs,
        stats,
        config.setupTurnBudgetMs,
      ),
  ),
})

/** What a connection holds beyond `Conn`: only what the actor itself touches. */
interface Actor {
  readonly conn: Conn
  readonly owner: Owner
  /** Everything the connection acquires is released when this closes. */
  readonly scope: Scope.Scope
  readonly bucket: Bucket
  /** The token-expiry timer, made only for tokens that expire. */
  expiry: FiberHandle.FiberHandle<void, never> | undefined
}

// ---- socket listeners: shared functions, `this` is the socket ----

const conns = new WeakMap<WebSocket, Conn>()

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const conn = conns.get(this)
  if (conn === undefined) return
  conn.alive = true
  const item = isBinary ? BINARY : data.toString()
  // While the actor is busy (a restore, a snapshot read) frames wait here: bounded in count and size.
  const chars = item === BINARY ? 0 : item.length
  if (conn.inbound.size >= INBOUND_CAPACITY || conn.inboundChars + chars > conn.maxInboundChars) {
    conn.requestClose({ code: 1008, reason: "message flood", flush: false })
    return
  }
  conn.inboundChars += chars
  conn.inbound.offer(item)
}
function onClose(this: WebSocket, code: number): void {
  conns.get(this)?.requestClose({ code, reason: "client closed", flush: false })
}
function onPong(this: WebSocket): void {
  const conn = conns.get(this)
  if (conn !== undefined) conn.alive = true
}
function onError(this: WebSocket, err: Error): void {
  // `ws` emits the close right after; the actor logs the cause.
  conns.get(this)?.inbound.offer({ socketError: err.message })
}
function ignoreError(): void {}

const attachListeners = (ws: WebSocket, conn: Conn): void => {
  conns.set(ws, conn)
  ws.on("message", onMessage)
  ws.on("close", onClose)
  ws.on("pong", onPong)
  ws.on("error", onError)
}

const detachListeners = (ws: WebSocket): void => {
  conns.delete(ws)
  ws.off("message", onMessage)
  ws.off("close", onClose)
  ws.off("pong", onPong)
  ws.off("error", onError)
  // A late error after the actor is gone must not crash the process.
  ws.on("error", ignoreError)
}

// ---- helpers ----

/**
 * Acquires a resource into the connection's scope: `acquire` runs, then `release` is added as a
 * finalizer (run when the scope closes, in reverse order of acquisition), with nothing able to
 * interrupt in between. The finalizer is the one closure `release` is: unlike with
 * `Effect.acquireRelease`, it does not keep the fiber's context and FiberRefs (about 500 bytes
 * each time they differ), and unlike a generic wrapper, no second closure or acquire function.
 */
const acquireIn = (
  scope: Scope.Scope,
  acquire: () => void,
  release: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>,
): Effect.Effect<void> =>
  Effect.uninterruptible(
    Effect.suspend(() => {
      acquire()
      return Scope.addFinalizerExit(scope, release)
    }),
  )

const now = Effect.map(Clock.currentTimeMillis, nowIso)

const send = (conn: Conn, msg: Outgoing) => Effect.sync(() => conn.enqueue(msg))
const sendError = (conn: Conn, e: ProtocolError) => Effect.flatMap(now, (ts) => send(conn, errorMsg(e, ts)))

const attach = (a: Actor, topic: Topic) => a.conn.subs.join(topic)

/** Latest state of topics, as snapshot messages, in topic order. */
const snapshotOf = (env: Env, topics: ReadonlyArray<Topic>) =>
  Effect.map(env.snapshots.getMany(topics), (lists) => lists.flat().map(asSnapshot))

/**
 * Runs `f` with flushing held, then places its messages where the queue stood when it
 * started: answers and snapshots go out before live events that arrived meanwhile.
 */
const answerAtMark = <E, R>(env: Env, conn: Conn, f: Effect.Effect<ReadonlyArray<Outgoing>, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      conn.held++
      return conn.outbox.mark()
    }),
    (mark) => Effect.map(f, (msgs) => conn.outbox.insertAt(mark, msgs)),
    () =>
      Effect.sync(() => {
        conn.held--
        env.flusher.scheduler.schedule(conn)
      }),
  )

// ---- sessions ----

const restore = (env: Env, sessionId: string, userId: string | null, owner: Owner) =>
  Effect.gen(function* () {
    const found = yield* env.sessions.get(sessionId)
    if (Option.isNone(found)) return yield* new SessionRestorationFailed({ sessionId, reason: "not_found" })
    if (found.value.userId !== userId) {
      return yield* new SessionRestorationFailed({ sessionId, reason: "user_mismatch" })
    }
    if (found.value.owner !== null) {
      // A holder that does not let go in time loses the session anyway: its release is then
      // a no-op, because it is no longer the owner.
      yield* env.takeover.takeover(sessionId, found.value.owner).pipe(Effect.timeoutOption("5 seconds"))
    }
    const claimed = yield* env.sessions.claim(sessionId, owner)
    if (Option.isNone(claimed)) return yield* new SessionRestorationFailed({ sessionId, reason: "expired" })
    return claimed.value
  }).pipe(
    Effect.catchTag("SessionStoreError", () =>
      Effect.fail(new SessionRestorationFailed({ sessionId, reason: "store_unavailable" })),
    ),
  )

/** Takes over a restored session's subscriptions and sends `reconnected` + what was missed. */
const adopt = (env: Env, a: Actor, record: SessionRecord) =>
  answerAtMark(
    env,
    a.conn,
    Effect.gen(function* () {
      const conn = a.conn
      const restored: Record<SubscriptionType, Array<string>> = { stock: [], market: [], sector: [] }
      const snaps: Array<Outgoing> = []
      for (const type of SUBSCRIPTION_TYPES) {
        const valid: Array<string> = []
        const topics: Array<Topic> = []
        for (const target of record.subscriptions[type]) {
          const topic = env.universe.topic(type, target)
          if (topic === undefined || conn.subscriptionCount() >= env.config.maxSubscriptions) continue
          valid.push(target)
          topics.push(topic)
          yield* attach(a, topic)
        }
        restored[type] = valid
        snaps.push(...(yield* snapshotOf(env, topics)))
      }
      const alerts = yield* env.sessions
        .takeAlerts(record.id)
        .pipe(
          Effect.catchAll((e) =>
            Effect.as(Effect.logWarning("kept alerts unavailable", e.reason), [] as ReadonlyArray<string>),
          ),
        )
      const missed = [...snaps, ...alerts.map((body): Outgoing => ({ key: undefined, body }))]
      // The restored set can differ from the saved one (targets no longer known): save it.
      env.sessions.changed(conn)
      return [reconnectedMsg(record.id, restored, missed.length, yield* now, record.sequenceJump), ...missed]
    }),
  )

// ---- client messages ----

const subscribe = (env: Env, a: Actor, type: SubscriptionType, requested: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const conn = a.conn
    const accepted: Array<string> = []
    const rejected: Array<{ target: string; reason: string }> = []
    let total = conn.subscriptionCount()
    const topics: Array<Topic> = []
    for (const target of new Set(requested)) {
      const topic = env.universe.topic(type, target)
      if (topic === undefined) rejected.push({ target, reason: "unknown_target" })
      else if (conn.subs.has(topic)) {
        accepted.push(target)
        topics.push(topic)
      } else if (total >= env.config.maxSubscriptions) rejected.push({ target, reason: "max_subscriptions" })
      else {
        accepted.push(target)
        topics.push(topic)
        total++
      }
    }
    if (accepted.length > 0) {
      yield* answerAtMark(
        env,
        conn,
        Effect.gen(function* () {
          for (const topic of topics) yield* attach(a, topic)
          env.sessions.changed(conn)
          const snaps = yield* snapshotOf(env, topics)
          return [subscribedMsg("subscribed", type, accepted, yield* now), ...snaps]
        }),
      )
    }
    if (rejected.length > 0) {
      yield* sendError(
        conn,
        new SubscriptionFailed({
          subscriptionType: type,
          rejected,
          accepted,
          limit: env.config.maxSubscriptions,
        }),
      )
    }
  })

const unsubscribe = (env: Env, a: Actor, type: SubscriptionType, requested: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const removed: Array<string> = []
    for (const target of new Set(requested)) {
      const topic = env.universe.topic(type, target)
      if (topic !== undefined && a.conn.subs.leave(topic)) removed.push(target)
    }
    if (removed.length > 0) env.sessions.changed(a.conn)
    yield* send(a.conn, subscribedMsg("unsubscribed", type, removed, yield* now))
  })

/** Arms (or replaces, or clears) the one timer that closes the connection when its token expires. */
const armExpiry = (a: Actor, expiresAt: number | undefined): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (expiresAt === undefined) {
      if (a.expiry !== undefined) yield* FiberHandle.clear(a.expiry)
      return
    }
    if (a.expiry === undefined) a.expiry = yield* Scope.extend(FiberHandle.make<void, never>(), a.scope)
    yield* FiberHandle.run(
      a.expiry,
      Effect.gen(function* () {
        const left = expiresAt - (yield* Clock.currentTimeMillis)
        yield* Effect.sleep(`${Math.max(0, left)} millis`)
        yield* sendError(a.conn, new InvalidToken({ reason: "expired" }))
        a.conn.requestClose({ code: 4001, reason: "token expired", flush: true })
      }),
    )
  })

const refreshToken = (env: Env, a: Actor, token: string) =>
  Effect.gen(function* () {
    const next = yield* env.jwt
      .verify(token)
      .pipe(Effect.mapError((e) => new TokenRefreshError({ reason: e.reason })))
    if (next.userId !== a.conn.userId) return yield* new TokenRefreshError({ reason: "different_user" })
    yield* armExpiry(a, next.expiresAt)
    yield* send(
      a.conn,
      tokenRefreshedMsg(
        next.userId,
        next.expiresAt === undefined ? null : nowIso(next.expiresAt),
        yield* now,
      ),
    )
  })

const reconnect = (env: Env, a: Actor, sessionId: string) =>
  Effect.gen(function* () {
    const conn = a.conn
    if (sessionId === conn.sessionId) {
      // Already attached here: nothing was missed.
      yield* send(conn, reconnectedMsg(conn.sessionId, conn.subscriptions(), 0, yield* now))
      return
    }
    const record = yield* restore(env, sessionId, conn.userId, a.owner)
    // Messages of the session being left are numbered in its own sequence, so send them now.
    env.flusher.flushNow(conn)
    for (const topic of conn.subs.keys()) if (!isUserTopic(topic)) conn.subs.leave(topic)
    yield* env.sessions
      .remove(conn.sessionId)
      .pipe(Effect.catchAll((e) => Effect.logWarning("abandoned session not removed", e.reason)))
    conn.sessionId = record.id
    conn.seq = record.lastSequence
    yield* adopt(env, a, record)
  })

const handle = (env: Env, a: Actor, msg: ClientMessage): Effect.Effect<void, ProtocolError> => {
  switch (msg.type) {
    case "subscribe":
      return subscribe(env, a, msg.subscription_type, msg.targets)
    case "unsubscribe":
      return unsubscribe(env, a, msg.subscription_type, msg.targets)
    case "ping":
      return Effect.flatMap(now, (ts) => send(a.conn, pongMsg(msg.id, ts)))
    case "refresh_token":
      return refreshToken(env, a, msg.token)
    case "reconnect":
      return reconnect(env, a, msg.session_id)
  }
}

const processOne = (env: Env, a: Actor, item: Exclude<Inbound, typeof CLOSE>) =>
  Effect.gen(function* () {
    const conn = a.conn
    if (typeof item === "object") {
      return yield* Effect.logDebug("socket error").pipe(
        Effect.annotateLogs({ connection_id: conn.id, error: item.socketError }),
      )
    }
    if (item !== BINARY) conn.inboundChars -= item.length
    conn.messagesReceived++
    env.stats.messagesReceived++
    conn.lastActivity = yield* Clock.currentTimeMillis
    // Charged by cost (RateLimiter.ts): large frames by size before decoding, invalid ones after.
    const cost = item === BINARY ? 1 : frameCost(item.length, env.config.wsFrameCostBytes)
    const verdict = yield* env.limiter.take(a.bucket, cost)
    if (verdict !== "allow") {
      env.stats.rateLimitRejections++
      if (verdict === "abuse") conn.requestClose({ code: 1008, reason: "rate limit abuse", flush: true })
      else if (verdict === "reject_report")
        yield* sendError(conn, new RateLimitExceeded({ limit: a.bucket.limit }))
      return
    }
    env.stats.wsInputCost += cost
    const decoded = item === BINARY ? Either.left(binaryFrame()) : decodeText(item, env.config.wsJsonLimits)
    if (Either.isLeft(decoded)) {
      env.stats.decodeErrors++
      const reason = decoded.left.details.reason
      if (reason === "too_deep" || reason === "array_too_long" || reason === "too_many_members")
        env.stats.wsFramesRejected[reason]++
      env.limiter.charge(a.bucket, env.config.wsInvalidFrameCost)
      env.stats.wsInputCost += env.config.wsInvalidFrameCost
      return yield* sendError(conn, decoded.left)
    }
    yield* handle(env, a, decoded.right).pipe(Effect.catchAll((e) => sendError(conn, e)))
  })

/** Takes frames until a CLOSE arrives. */
const conversation = (env: Env, a: Actor): Effect.Effect<void> =>
  Effect.flatMap(a.conn.inbound.take(), (item) =>
    item === CLOSE ? Effect.void : Effect.zipRight(processOne(env, a, item), conversation(env, a)),
  )

// ---- the connection's resources, released in reverse order ----

/**
 * Binds the connection to this process: the registry entry and stats, the session (held when
 * `owner` is given: the connection has an identity), the socket's listeners. One finalizer
 * releases them in reverse order: listeners off; queued messages flushed (unless the reader is
 * stuck) and the socket closed with the requested code; the session released with its final
 * state; the registry entry removed, which tells a waiting takeover that the session is free.
 * One finalizer, not four: each weighs a key object, a Map entry and a closure in the Scope, for
 * every connection (scenario C). A failing step does not skip the ones after it.
 */
const bind = (
  scope: Scope.Scope,
  env: Env,
  conn: Conn,
  owner: Owner | undefined,
  addressKey: string | undefined,
) =>
  acquireIn(
    scope,
    () => {
      env.registry.byId.set(conn.id, conn)
      env.stats.connectionsOpened++
      env.stats.activeConnections++
      attachListeners(conn.ws, conn)
    },
    (exit) =>
      Effect.suspend(() => {
        detachListeners(conn.ws)
        return closeSocket(env, conn, exit)
      }).pipe(
        // Suspended: the session's final sequence number is known only once the socket was flushed.
        Effect.ensuring(
          Effect.suspend(() =>
            owner === undefined ? Effect.void : releaseSession(env, conn, owner, addressKey),
          ),
        ),
        Effect.ensuring(Effect.sync(() => unregister(env, conn))),
      ),
  )

const unregister = (env: Env, conn: Conn): void => {
  env.registry.byId.delete(conn.id)
  env.stats.activeConnections--
  conn.markEnded()
}

/** The session is kept with its final state (an anonymous one counted against its client address's saved sessions). */
const releaseSession = (env: Env, conn: Conn, owner: Owner, addressKey: string | undefined) =>
  env.sessions
    .release(
      {
        id: conn.sessionId,
        userId: conn.userId,
        subscriptions: conn.subscriptions(),
        lastSequence: conn.seq,
      },
      owner,
      addressKey,
      // What a stuck reader was not sent: its alerts wait for the session's restore.
      conn.outbox.bodiesWhere(isAlertBody),
    )
    .pipe(Effect.catchAll((e) => Effect.logWarning("session not saved", e.reason)))

/** The close for a connection that ends without having asked for one: shutdown, or a bug. */
const closeForExit = (exit: Exit.Exit<unknown, unknown>): CloseRequest =>
  Exit.isInterrupted(exit)
    ? { code: 1012, reason: "server restart", flush: true }
    : { code: 1011, reason: "internal error", flush: true }

/** Flushes what is queued (unless the reader is stuck) and closes the socket with the requested code. */
const closeSocket = (env: Env, conn: Conn, exit: Exit.Exit<unknown, unknown>) =>
  Effect.gen(function* () {
    conn.closing = true
    const req = conn.closeRequest ?? closeForExit(exit)
    if (req.flush) env.flusher.flushNow(conn)
    const ws = conn.ws
    if (ws.readyState === ws.OPEN) {
      ws.close(req.code, req.reason)
      // A stuck reader may never complete the closing handshake.
      if (!req.flush) setTimeout(() => ws.terminate(), 1000).unref()
    }
    env.stats.closed(req.code)
    yield* logInfoAnnotated("connection closed", {
      connection_id: conn.id,
      session_id: conn.sessionId,
      user_id: conn.userId ?? "anonymous",
      code: req.code,
      reason: req.reason,
      messages_sent: conn.messagesSent,
    })
  })

// ---- one connection ----

/**
 * Forks the connection fibers, each supervised by a FiberSet that interrupts it when the
 * server's scope closes, all on the shared scheduler (`lifecycle/sharedScheduler.ts`). The
 * runtime is captured in an uninterruptible region, so the fibers start uninterruptible:
 * `serveConnection` makes the connection's Scope and the frame that closes it before anything
 * can interrupt, then opens interruption for the connection's life. Starting that way costs
 * nothing, where `uninterruptibleMask` would keep two more frames on every waiting fiber.
 */
export const connectionRunner: Effect.Effect<
  (env: Env, ws: WebSocket, params: ConnectionParams) => void,
  never,
  Scope.Scope
> = FiberSet.makeRuntime<never, void, never>().pipe(
  Effect.withScheduler(sharedScheduler),
  Effect.uninterruptible,
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
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.matchCauseEffect(
      Effect.interruptible(
        // Built when it runs: a frame keeps the effect it was made from, and setup's effect
        // (its generator function, that function's prototype and maps) would stay with it.
        Effect.suspend(() => serve(env, ws, params, scope)),
      ),
      // Made by factories, not written as properties: tsx (esbuild keepNames) gives a named
      // function a property array, 256 bytes per connection for each.
      { onFailure: failedIn(env, scope, ws), onSuccess: endedIn(env, scope, ws) },
    ),
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
      ws.close(1013, "try again later")
      env.stats.closed(1013)
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
    conn.maxInboundChars = env.config.wsMaxQueuedInputBytes
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
      conn.requestClose({ code: 1006, reason: "closed during setup", flush: false })

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
      conn.requestClose({ code: 4001, reason: "invalid token", flush: true })
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
