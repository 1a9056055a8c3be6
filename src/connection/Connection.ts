/**
 * The connection actor. Each WebSocket is served by one fiber running `serveConnection` inside
 * its own Scope: an inbound Queue fed by the socket's callbacks, an Outbox drained by the
 * Flusher's clock, and every resource it acquires (topic subscriptions, the session claim, the
 * registry entry, the token-expiry timer) bound to that Scope. However the connection ends
 * (client close, error, takeover, slow reader, shutdown), closing the Scope releases them.
 */
import { randomUUID } from "node:crypto"
import type { IncomingMessage } from "node:http"
import {
  Clock,
  Deferred,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  FiberHandle,
  Option,
  Queue,
  Scope,
} from "effect"
import type { RawData, WebSocket } from "ws"
import { type Claims, JwtVerifier } from "../auth/JwtVerifier.js"
import { Broker } from "../broker/Broker.js"
import { type Topic, topicOf, userTopic } from "../broker/topics.js"
import { AppConfig } from "../config/AppConfig.js"
import { InstanceId } from "../config/InstanceId.js"
import { Universe } from "../market/Universe.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { type ClientMessage, SUBSCRIPTION_TYPES, type SubscriptionType } from "../protocol/client.js"
import { binaryFrame, decodeText } from "../protocol/decode.js"
import { asSnapshot, nowIso, type Outgoing } from "../protocol/encode.js"
import {
  InvalidToken,
  type ProtocolError,
  RateLimitExceeded,
  SessionRestorationFailed,
  SubscriptionFailed,
  TokenRefreshError,
} from "../protocol/errors.js"
import { RateLimiter } from "../ratelimit/RateLimiter.js"
import {
  emptySubscriptions,
  type SessionRecord,
  SessionStore,
  type Subscriptions,
} from "../session/SessionStore.js"
import { Takeover } from "../session/Takeover.js"
import { SnapshotStore } from "../snapshot/SnapshotStore.js"
import { type CloseRequest, Conn } from "./Conn.js"
import { negotiatedWindowBits } from "./deflate.js"
import { Flusher } from "./Flusher.js"
import {
  connectedMsg,
  errorMsg,
  pongMsg,
  reconnectedMsg,
  subscribedMsg,
  tokenRefreshedMsg,
} from "./messages.js"
import { Outbox } from "./Outbox.js"
import { Registry } from "./Registry.js"

/** Inbound frames waiting for the actor; beyond this the client is flooding far past any limit. */
const INBOUND_CAPACITY = 1024

type Inbound = { readonly text: string } | { readonly binary: true } | { readonly socketError: string }

export interface ConnectionParams {
  readonly token: string | undefined
  readonly sessionId: string | undefined
  readonly remoteAddress: string | undefined
}

export const paramsOf = (req: IncomingMessage): ConnectionParams => {
  const url = new URL(req.url ?? "/", "http://localhost")
  const token = url.searchParams.get("token")
  const sessionId = url.searchParams.get("session_id")
  return {
    token: token === null || token === "" ? undefined : token,
    sessionId: sessionId === null || sessionId === "" ? undefined : sessionId,
    remoteAddress: req.socket.remoteAddress,
  }
}

const subscriptionsOf = (conn: Conn): Subscriptions => ({
  stock: [...conn.targets.stock],
  market: [...conn.targets.market],
  sector: [...conn.targets.sector],
})

/** Serves one accepted WebSocket until it closes. Never fails: every error is answered or logged. */
export const serveConnection = (ws: WebSocket, params: ConnectionParams) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const universe = yield* Universe
    const broker = yield* Broker
    const snapshots = yield* SnapshotStore
    const sessions = yield* SessionStore
    const takeover = yield* Takeover
    const jwt = yield* JwtVerifier
    const limiter = yield* RateLimiter
    const flusher = yield* Flusher
    const registry = yield* Registry
    const stats = yield* GatewayStats
    const instanceId = yield* InstanceId
    const connScope = yield* Effect.scope

    const connectionId = randomUUID()
    const owner = { instanceId, connectionId }
    const now = () => Effect.map(Clock.currentTimeMillis, nowIso)

    // ---- socket wiring first, so no frame or close is missed while we authenticate ----
    const inbound = yield* Queue.bounded<Inbound>(INBOUND_CAPACITY)
    const shutdown = yield* Deferred.make<CloseRequest>()
    const requestClose = (req: CloseRequest) => {
      Deferred.unsafeDone(shutdown, Exit.succeed(req))
    }
    let current: Conn | undefined
    const onMessage = (data: RawData, isBinary: boolean) => {
      if (current !== undefined) current.alive = true
      const item: Inbound = isBinary ? { binary: true } : { text: data.toString() }
      if (!Queue.unsafeOffer(inbound, item)) {
        requestClose({ code: 1008, reason: "message flood", flush: false })
      }
    }
    const onClose = (code: number) => requestClose({ code, reason: "client closed", flush: false })
    const onPong = () => {
      if (current !== undefined) current.alive = true
    }
    const onError = (err: Error) => {
      // `ws` emits the close right after; the actor logs the cause.
      Queue.unsafeOffer(inbound, { socketError: err.message })
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        ws.on("message", onMessage)
        ws.on("close", onClose)
        ws.on("pong", onPong)
        ws.on("error", onError)
      }),
      () =>
        Effect.sync(() => {
          ws.off("message", onMessage)
          ws.off("close", onClose)
          ws.off("pong", onPong)
          ws.off("error", onError)
          // A late error after the actor is gone must not crash the process.
          ws.on("error", () => {})
        }),
    )

    // ---- identity ----
    const auth: Either.Either<Claims | undefined, InvalidToken> =
      params.token === undefined ? Either.right(undefined) : yield* Effect.either(jwt.verify(params.token))
    const claims = Either.getOrUndefined(auth)
    const userId = claims?.userId ?? null

    // ---- restore or create the session ----
    const restore = (sessionId: string) =>
      Effect.gen(function* () {
        const found = yield* sessions.get(sessionId)
        if (Option.isNone(found))
          return yield* new SessionRestorationFailed({ sessionId, reason: "not_found" })
        if (found.value.userId !== userId) {
          return yield* new SessionRestorationFailed({ sessionId, reason: "user_mismatch" })
        }
        if (found.value.owner !== null) {
          // A holder that does not let go in time loses the session anyway: its release is then
          // a no-op, because it is no longer the owner.
          yield* takeover.takeover(sessionId, found.value.owner).pipe(Effect.timeoutOption("5 seconds"))
        }
        const claimed = yield* sessions.claim(sessionId, owner)
        if (Option.isNone(claimed))
          return yield* new SessionRestorationFailed({ sessionId, reason: "expired" })
        return claimed.value
      }).pipe(
        Effect.catchTag("SessionStoreError", () =>
          Effect.fail(new SessionRestorationFailed({ sessionId, reason: "store_unavailable" })),
        ),
      )

    const freshSession = (): SessionRecord => ({
      id: randomUUID(),
      userId,
      subscriptions: emptySubscriptions(),
      lastSequence: 0,
      owner,
    })

    const restored: Option.Option<Either.Either<SessionRecord, SessionRestorationFailed>> =
      Either.isRight(auth) && params.sessionId !== undefined
        ? Option.some(yield* Effect.either(restore(params.sessionId)))
        : Option.none()
    const session = Option.match(restored, {
      onNone: freshSession,
      onSome: Either.match({ onLeft: freshSession, onRight: (s) => s }),
    })
    const isNew = Option.isNone(restored) || Either.isLeft(restored.value)
    if (isNew && Either.isRight(auth)) {
      yield* sessions
        .create(session)
        .pipe(Effect.catchAll((e) => Effect.logWarning("session not stored", e.reason)))
    }

    const conn = new Conn(
      connectionId,
      ws,
      new Outbox(),
      flusher.scheduler,
      shutdown,
      requestClose,
      yield* Clock.currentTimeMillis,
      { id: session.id, userId, lastSequence: session.lastSequence },
      negotiatedWindowBits(ws),
    )
    current = conn
    const done = yield* Deferred.make<void>()

    // Release order is the reverse of these acquisitions: subscriptions first, then the socket
    // is flushed and closed, then the session is released with its final sequence, then the
    // registry entry goes and `done` tells a waiting takeover that the session is free.
    yield* Effect.addFinalizer(() => Deferred.succeed(done, undefined))
    yield* registry.register({ conn, done })
    stats.connectionsOpened++
    stats.activeConnections++
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stats.activeConnections--
      }),
    )
    if (Either.isRight(auth)) {
      yield* Effect.addFinalizer(() =>
        sessions
          .release(
            {
              id: conn.sessionId,
              userId: conn.userId,
              subscriptions: subscriptionsOf(conn),
              lastSequence: conn.seq,
            },
            owner,
          )
          .pipe(Effect.catchAll((e) => Effect.logWarning("session not saved", e.reason))),
      )
    }
    yield* Effect.addFinalizer((exit) =>
      Effect.gen(function* () {
        conn.closing = true
        const req = Option.getOrElse(
          yield* Deferred.poll(shutdown).pipe(Effect.flatMap(Effect.transposeOption)),
          () =>
            Exit.isInterrupted(exit)
              ? { code: 1012, reason: "server restart", flush: true }
              : { code: 1011, reason: "internal error", flush: true },
        )
        if (req.flush) flusher.flushNow(conn)
        if (ws.readyState === ws.OPEN) {
          if (req.code === 1013 || req.code === 1008 || req.code === 1006) {
            ws.close(req.code, req.reason)
            // A stuck reader may never complete the closing handshake.
            ws.once("close", () => {})
            setTimeout(() => ws.terminate(), 1000).unref()
          } else ws.close(req.code, req.reason)
        }
        stats.closed(req.code)
        yield* Effect.logInfo("connection closed").pipe(
          Effect.annotateLogs({
            connection_id: connectionId,
            session_id: conn.sessionId,
            user_id: conn.userId ?? "anonymous",
            code: req.code,
            reason: req.reason,
            messages_sent: conn.messagesSent,
          }),
        )
      }),
    )
    yield* Effect.logInfo("connection opened").pipe(
      Effect.annotateLogs({
        connection_id: connectionId,
        session_id: conn.sessionId,
        user_id: userId ?? "anonymous",
        remote: params.remoteAddress ?? "unknown",
        restored: Option.isSome(restored) && Either.isRight(restored.value),
      }),
    )

    // ---- subscriptions: one child scope per topic, closed on unsubscribe or with the connection ----
    const topicScopes = new Map<Topic, Scope.CloseableScope>()
    const attach = (topic: Topic) =>
      Effect.gen(function* () {
        if (topicScopes.has(topic)) return
        const scope = yield* Scope.fork(connScope, ExecutionStrategy.sequential)
        topicScopes.set(topic, scope)
        yield* Scope.extend(broker.subscribe(topic, conn), scope)
      })
    const detach = (topic: Topic) =>
      Effect.suspend(() => {
        const scope = topicScopes.get(topic)
        if (scope === undefined) return Effect.void
        topicScopes.delete(topic)
        return Scope.close(scope, Exit.void)
      })

    /** Latest state of targets, as snapshot messages, in target order. */
    const snapshotOf = (type: SubscriptionType, targets: ReadonlyArray<string>) =>
      Effect.map(snapshots.getMany(targets.map((t) => topicOf(type, t))), (lists) =>
        lists.flat().map(asSnapshot),
      )

    /**
     * Runs `f` with flushing held, then places its messages where the queue stood when it
     * started: answers and snapshots go out before live events that arrived meanwhile.
     */
    const answerAtMark = <E, R>(f: Effect.Effect<ReadonlyArray<Outgoing>, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          conn.held++
          return conn.outbox.mark()
        }),
        (mark) => Effect.map(f, (msgs) => conn.outbox.insertAt(mark, msgs)),
        () =>
          Effect.sync(() => {
            conn.held--
            flusher.scheduler.schedule(conn)
          }),
      )

    const send = (msg: Outgoing) => Effect.sync(() => conn.enqueue(msg))
    const sendError = (e: ProtocolError) => Effect.flatMap(now(), (ts) => send(errorMsg(e, ts)))

    const subscribe = (type: SubscriptionType, requested: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const accepted: Array<string> = []
        const rejected: Array<{ target: string; reason: string }> = []
        let total = conn.subscriptionCount()
        for (const target of new Set(requested)) {
          if (conn.targets[type].has(target)) accepted.push(target)
          else if (!universe.has(type, target)) rejected.push({ target, reason: "unknown_target" })
          else if (total >= config.maxSubscriptions) rejected.push({ target, reason: "max_subscriptions" })
          else {
            accepted.push(target)
            total++
          }
        }
        if (accepted.length > 0) {
          yield* answerAtMark(
            Effect.gen(function* () {
              for (const target of accepted) {
                conn.targets[type].add(target)
                yield* attach(topicOf(type, target))
              }
              const snaps = yield* snapshotOf(type, accepted)
              return [subscribedMsg("subscribed", type, accepted, yield* now()), ...snaps]
            }),
          )
        }
        if (rejected.length > 0) {
          yield* sendError(
            new SubscriptionFailed({
              subscriptionType: type,
              rejected,
              accepted,
              limit: config.maxSubscriptions,
            }),
          )
        }
      })

    const unsubscribe = (type: SubscriptionType, requested: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const removed: Array<string> = []
        for (const target of new Set(requested)) {
          if (conn.targets[type].delete(target)) {
            removed.push(target)
            yield* detach(topicOf(type, target))
          }
        }
        yield* send(subscribedMsg("unsubscribed", type, removed, yield* now()))
      })

    /** Takes over a restored session's subscriptions and sends `reconnected` + what was missed. */
    const adopt = (record: SessionRecord) =>
      answerAtMark(
        Effect.gen(function* () {
          const restoredSubs: Record<SubscriptionType, Array<string>> = { stock: [], market: [], sector: [] }
          const snaps: Array<Outgoing> = []
          for (const type of SUBSCRIPTION_TYPES) {
            const valid = record.subscriptions[type].filter(
              (t) => universe.has(type, t) && conn.subscriptionCount() < config.maxSubscriptions,
            )
            for (const target of valid) {
              conn.targets[type].add(target)
              yield* attach(topicOf(type, target))
            }
            restoredSubs[type] = valid
            snaps.push(...(yield* snapshotOf(type, valid)))
          }
          const alerts = yield* sessions
            .takeAlerts(record.id)
            .pipe(Effect.catchAll(() => Effect.succeed<ReadonlyArray<string>>([])))
          const missed = [...snaps, ...alerts.map((body): Outgoing => ({ key: undefined, body }))]
          return [reconnectedMsg(record.id, restoredSubs, missed.length, yield* now()), ...missed]
        }),
      )

    // ---- token expiry: one timer per authenticated connection, replaced on refresh ----
    const expiryTimer = yield* FiberHandle.make<void, never>()
    const armExpiry = (expiresAt: number | undefined) =>
      expiresAt === undefined
        ? FiberHandle.clear(expiryTimer)
        : FiberHandle.run(
            expiryTimer,
            Effect.gen(function* () {
              const left = expiresAt - (yield* Clock.currentTimeMillis)
              yield* Effect.sleep(`${Math.max(0, left)} millis`)
              yield* sendError(new InvalidToken({ reason: "expired" }))
              requestClose({ code: 4001, reason: "token expired", flush: true })
            }),
          ).pipe(Effect.asVoid)

    const refreshToken = (token: string) =>
      Effect.gen(function* () {
        const next = yield* jwt
          .verify(token)
          .pipe(Effect.mapError((e) => new TokenRefreshError({ reason: e.reason })))
        if (next.userId !== conn.userId) return yield* new TokenRefreshError({ reason: "different_user" })
        yield* armExpiry(next.expiresAt)
        yield* send(
          tokenRefreshedMsg(
            next.userId,
            next.expiresAt === undefined ? null : nowIso(next.expiresAt),
            yield* now(),
          ),
        )
      })

    const reconnect = (sessionId: string) =>
      Effect.gen(function* () {
        if (sessionId === conn.sessionId) {
          // Already attached here: nothing was missed.
          yield* send(reconnectedMsg(conn.sessionId, subscriptionsOf(conn), 0, yield* now()))
          return
        }
        const record = yield* restore(sessionId)
        // Messages of the session being left are numbered in its own sequence, so send them now.
        flusher.flushNow(conn)
        for (const topic of [...topicScopes.keys()]) {
          if (!topic.startsWith("user:")) yield* detach(topic)
        }
        for (const type of SUBSCRIPTION_TYPES) conn.targets[type].clear()
        yield* sessions.remove(conn.sessionId).pipe(Effect.ignore)
        conn.sessionId = record.id
        conn.seq = record.lastSequence
        yield* adopt(record)
      })

    const handle = (msg: ClientMessage): Effect.Effect<void, ProtocolError> => {
      switch (msg.type) {
        case "subscribe":
          return subscribe(msg.subscription_type, msg.targets)
        case "unsubscribe":
          return unsubscribe(msg.subscription_type, msg.targets)
        case "ping":
          return Effect.flatMap(now(), (ts) => send(pongMsg(msg.id, ts)))
        case "refresh_token":
          return refreshToken(msg.token)
        case "reconnect":
          return reconnect(msg.session_id)
      }
    }

    const bucket = yield* limiter.bucket(claims?.rateLimit ?? config.rateLimit)
    const processOne = (item: Inbound) =>
      Effect.gen(function* () {
        if ("socketError" in item) {
          return yield* Effect.logDebug("socket error").pipe(
            Effect.annotateLogs({ connection_id: connectionId, error: item.socketError }),
          )
        }
        conn.messagesReceived++
        stats.messagesReceived++
        conn.lastActivity = yield* Clock.currentTimeMillis
        const verdict = yield* limiter.take(bucket)
        if (verdict !== "allow") {
          stats.rateLimitRejections++
          if (verdict === "abuse") requestClose({ code: 1008, reason: "rate limit abuse", flush: true })
          else if (verdict === "reject_report")
            yield* sendError(new RateLimitExceeded({ limit: bucket.limit }))
          return
        }
        const decoded = "text" in item ? decodeText(item.text) : Either.left(binaryFrame())
        if (Either.isLeft(decoded)) {
          stats.decodeErrors++
          return yield* sendError(decoded.left)
        }
        yield* handle(decoded.right).pipe(Effect.catchAll(sendError))
      })

    // ---- the conversation ----
    // `connected` goes out alone and at once: clients read the first frame to learn their ids.
    yield* send(connectedMsg(connectionId, conn.sessionId, userId, yield* now()))
    flusher.flushNow(conn)
    if (Either.isLeft(auth)) {
      yield* sendError(auth.left)
      requestClose({ code: 4001, reason: "invalid token", flush: true })
    } else {
      if (Option.isSome(restored)) {
        yield* Either.match(restored.value, { onLeft: sendError, onRight: adopt })
      }
      if (userId !== null) yield* attach(userTopic(userId))
      yield* armExpiry(claims?.expiresAt)
    }
    yield* Effect.raceFirst(
      Effect.forever(Effect.flatMap(Queue.take(inbound), processOne)),
      Deferred.await(shutdown),
    )
  }).pipe(Effect.scoped)
