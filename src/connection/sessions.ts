/**
 * A connection's session: restore one (taking it over from its holder), adopt what it held
 * (subscriptions, snapshots, alerts kept while no connection held it), and switch to another
 * session on `reconnect`.
 */
import { Effect, Option } from "effect"
import { SUBSCRIPTION_TYPES, type SubscriptionType } from "../protocol/client.js"
import { type Outgoing } from "../protocol/encode.js"
import { SessionRestorationFailed } from "../protocol/errors.js"
import { isUserTopic, type Topic } from "../protocol/topics.js"
import { type Owner, type SessionRecord } from "../session/SessionStore.js"
import { type Actor, answerAtMark, now, send, snapshotsInto } from "./Actor.js"
import { type Env } from "./Env.js"
import { reconnectedMsg } from "./messages.js"

// ---- sessions ----

export const restore = (env: Env, sessionId: string, userId: string | null, owner: Owner) =>
  Effect.gen(function* () {
    const found = yield* env.sessions.get(sessionId)
    if (Option.isNone(found)) return yield* new SessionRestorationFailed({ sessionId, reason: "not_found" })
    if (found.value.userId !== userId) {
      return yield* new SessionRestorationFailed({ sessionId, reason: "user_mismatch" })
    }
    if (found.value.owner !== null) {
      // A holder that does not let go in time loses the session anyway: its release is then
      // a no-op, because it is no longer the owner.
      const handedOver = yield* env.takeover
        .takeover(sessionId, found.value.owner)
        .pipe(Effect.timeoutOption(env.config.sessionTakeoverWaitMs))
      if (Option.isNone(handedOver)) {
        env.stats.sessionTakeoverTimeouts++
        yield* Effect.logWarning("session claimed without its holder's release").pipe(
          Effect.annotateLogs({ sessionId, waitMs: env.config.sessionTakeoverWaitMs }),
        )
      }
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
export const adopt = (env: Env, a: Actor, record: SessionRecord) =>
  answerAtMark(
    env,
    a.conn,
    Effect.gen(function* () {
      const conn = a.conn
      const restored: Record<SubscriptionType, Array<string>> = {
        stock: [],
        market: [],
        sector: [],
        candle: [],
      }
      const snaps: Array<Outgoing> = []
      let count = conn.subscriptionCount()
      for (const type of SUBSCRIPTION_TYPES) {
        const valid: Array<string> = []
        const topics: Array<Topic> = []
        for (const target of record.subscriptions[type]) {
          const topic = env.universe.topic(type, target)
          if (topic === undefined || count >= env.config.maxSubscriptions) continue
          if (!topics.includes(topic) && !conn.subs.has(topic)) count++
          valid.push(target)
          topics.push(topic)
        }
        yield* conn.subs.joinAll(topics)
        restored[type] = valid
        yield* snapshotsInto(env, topics, snaps)
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

export const reconnect = (env: Env, a: Actor, sessionId: string) =>
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
