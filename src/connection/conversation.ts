/**
 * The conversation: take a frame, charge it to the rate budget by cost, decode it, run the
 * command; until the inbox yields CLOSE.
 */
import { Clock, Effect, Either } from "effect"
import { binaryFrame, decodeText } from "../protocol/decode.js"
import { CloseCode, RateLimitExceeded } from "../protocol/errors.js"
import { frameCost, type Verdict } from "../ratelimit/RateLimiter.js"
import { type Actor, sendError } from "./Actor.js"
import { BINARY, CLOSE, type Inbound } from "./Conn.js"
import { handle } from "./commands.js"
import { type Env } from "./Env.js"

/** What a frame costs after its rate check, without a generator: one runs for every frame. */
const processOne = (env: Env, a: Actor, item: Exclude<Inbound, typeof CLOSE>): Effect.Effect<void> => {
  const conn = a.conn
  if (typeof item === "object") {
    return Effect.logDebug("socket error").pipe(
      Effect.annotateLogs({ connection_id: conn.id, error: item.socketError }),
    )
  }
  if (item !== BINARY) conn.inboundChars -= item.length
  conn.messagesReceived++
  env.stats.messagesReceived++
  // Charged by cost (RateLimiter.ts): large frames by size before decoding, invalid ones after.
  const cost = item === BINARY ? 1 : frameCost(item.length, env.config.wsFrameCostBytes)
  return Effect.flatMap(Clock.currentTimeMillis, (now) => {
    conn.lastActivity = now
    return Effect.flatMap(env.limiter.take(a.bucket, cost), (verdict) =>
      afterCheck(env, a, item, cost, verdict),
    )
  })
}

const afterCheck = (
  env: Env,
  a: Actor,
  item: string | typeof BINARY,
  cost: number,
  verdict: Verdict,
): Effect.Effect<void> => {
  const conn = a.conn
  if (verdict !== "allow") {
    env.stats.rateLimitRejections++
    if (verdict === "abuse")
      conn.requestClose({ code: CloseCode.policyViolation, reason: "rate limit abuse", flush: true })
    else if (verdict === "reject_report")
      return sendError(conn, new RateLimitExceeded({ limit: a.bucket.limit }))
    return Effect.void
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
    return sendError(conn, decoded.left)
  }
  return Effect.catchAll(handle(env, a, decoded.right), (e) => sendError(conn, e))
}

/**
 * Takes frames until the connection is asked to close. Frames still waiting then are not run:
 * the CLOSE item comes after them, and a storm client the outbound budget closed had its
 * `subscribe`s answered (subscriptions joined, snapshots read and queued) for a socket already
 * destroyed.
 */
export const conversation = (env: Env, a: Actor): Effect.Effect<void> =>
  Effect.flatMap(a.conn.inbound.take(), (item) =>
    item === CLOSE || a.conn.closeRequest !== undefined
      ? Effect.void
      : Effect.zipRight(processOne(env, a, item), conversation(env, a)),
  )
