/**
 * The client's commands: subscribe, unsubscribe, ping, refresh_token, reconnect. Each runs on
 * the actor's fiber, one at a time, and answers through the connection's outbox.
 */
import { Clock, Effect, FiberHandle, Scope } from "effect"
import { type ClientMessage, type SubscriptionType } from "../protocol/client.js"
import { nowIso } from "../protocol/encode.js"
import {
  CloseCode,
  InvalidToken,
  type ProtocolError,
  SubscriptionFailed,
  TokenRefreshError,
} from "../protocol/errors.js"
import { type Topic } from "../protocol/topics.js"
import { type Actor, answerAtMark, now, send, sendError, snapshotsInto } from "./Actor.js"
import { type Env } from "./Env.js"
import { pongMsg, subscribedMsg, tokenRefreshedMsg } from "./messages.js"
import { reconnect } from "./sessions.js"

/** Targets per `subscribe` up to which duplicates are found by scanning rather than with a Set. */
const SCAN_DUPLICATES = 32

/**
 * Written without a generator, and with the topics joined at once and the snapshots appended
 * to the answer's own array: at 10,000 connections each subscribing at setup, what a
 * `subscribe` allocates is promoted when a ramp keeps it alive across scavenges, and the holes
 * it leaves in the old space stay committed (scenario C).
 */
const subscribe = (
  env: Env,
  a: Actor,
  type: SubscriptionType,
  requested: ReadonlyArray<string>,
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const conn = a.conn
    const accepted: Array<string> = []
    const topics: Array<Topic> = []
    const rejected: Array<{ target: string; reason: string }> = []
    let total = conn.subscriptionCount()
    const targets = requested.length > SCAN_DUPLICATES ? [...new Set(requested)] : requested
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i] as string
      if (targets !== requested || requested.indexOf(target) === i) {
        const topic = env.universe.topic(type, target)
        if (topic === undefined) rejected.push({ target, reason: "unknown_target" })
        else if (conn.subs.has(topic)) {
          accepted.push(target)
          topics.push(topic)
        } else if (total >= env.config.maxSubscriptions)
          rejected.push({ target, reason: "max_subscriptions" })
        else {
          accepted.push(target)
          topics.push(topic)
          total++
        }
      }
    }
    const answer = (reserved: number) =>
      answerAtMark(
        env,
        conn,
        Effect.zipRight(
          conn.subs.joinAll(topics),
          Effect.flatMap(now, (timestamp) => {
            env.sessions.changed(conn)
            return snapshotsInto(env, topics, [subscribedMsg("subscribed", type, accepted, timestamp)])
          }),
        ),
        reserved,
        topics.length,
      )
    // Its snapshots wait for room in the outbound budget before its topics are joined (`AnswerGate`).
    // What is reserved is released when the answer is queued or given up (`answerAtMark`); a
    // connection's fiber is interrupted in between only when the server stops (`Connection.ts`).
    const gate = env.flusher.answers
    const reserved = accepted.length === 0 ? 0 : gate.reserve(conn, topics.length)
    const answered =
      accepted.length === 0
        ? Effect.void
        : reserved !== undefined
          ? answer(reserved)
          : Effect.flatMap(gate.wait(conn, topics.length), (granted) =>
              // Closed while it waited: nothing to answer.
              conn.closeRequest === undefined ? answer(granted) : Effect.sync(() => gate.release(granted)),
            )
    if (rejected.length === 0) return answered
    const failed = new SubscriptionFailed({
      subscriptionType: type,
      rejected,
      accepted,
      limit: env.config.maxSubscriptions,
    })
    return Effect.zipRight(answered, sendError(conn, failed))
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
export const armExpiry = (a: Actor, expiresAt: number | undefined): Effect.Effect<void> =>
  // Most connections have no expiring token and never had one: nothing to build for them.
  expiresAt === undefined && a.expiry === undefined ? Effect.void : armExpiryWith(a, expiresAt)

const armExpiryWith = (a: Actor, expiresAt: number | undefined): Effect.Effect<void> =>
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
        a.conn.requestClose({ code: CloseCode.invalidToken, reason: "token expired", flush: true })
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

export const handle = (env: Env, a: Actor, msg: ClientMessage): Effect.Effect<void, ProtocolError> => {
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
