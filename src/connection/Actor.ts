/**
 * The connection actor's own state (`Actor`: what it holds beyond `Conn`) and the few operations
 * every part of it uses: acquire into its Scope, send, answer at the queue's mark.
 */
import { Clock, Effect, Exit, FiberHandle, Scope } from "effect"
import { candleSnapshots } from "../candles/snapshots.js"
import { asSnapshot, nowIso, type Outgoing } from "../protocol/encode.js"
import { CloseCode, type ProtocolError } from "../protocol/errors.js"
import { type Topic } from "../protocol/topics.js"
import { type Bucket } from "../ratelimit/RateLimiter.js"
import { type Owner } from "../session/SessionStore.js"
import { Conn } from "./Conn.js"
import { type Env } from "./Env.js"
import { errorMsg } from "./messages.js"

/** What a connection holds beyond `Conn`: only what the actor itself touches. */
export interface Actor {
  readonly conn: Conn
  readonly owner: Owner
  /** Everything the connection acquires is released when this closes. */
  readonly scope: Scope.Scope
  readonly bucket: Bucket
  /** The token-expiry timer, made only for tokens that expire. */
  expiry: FiberHandle.FiberHandle<void, never> | undefined
}

/**
 * Acquires a resource into the connection's scope: `acquire` runs, then `release` is added as a
 * finalizer (run when the scope closes, in reverse order of acquisition), with nothing able to
 * interrupt in between. The finalizer is the one closure `release` is: unlike with
 * `Effect.acquireRelease`, it does not keep the fiber's context and FiberRefs (about 500 bytes
 * each time they differ), and unlike a generic wrapper, no second closure or acquire function.
 */
export const acquireIn = (
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

export const now = Effect.map(Clock.currentTimeMillis, nowIso)

export const send = (conn: Conn, msg: Outgoing) => Effect.sync(() => conn.enqueue(msg))
export const sendError = (conn: Conn, e: ProtocolError) =>
  Effect.flatMap(now, (ts) => send(conn, errorMsg(e, ts)))

export const attach = (a: Actor, topic: Topic) => a.conn.subs.join(topic)

/**
 * Appends the latest state of topics to `out`, as snapshot messages in topic order, then the
 * candle series' bars; returns `out`.
 */
export const snapshotsInto = (env: Env, topics: ReadonlyArray<Topic>, out: Array<Outgoing>) =>
  Effect.zipWith(
    env.snapshots.getMany(topics),
    candleSnapshots(env.candles, topics, env.config.candles.snapshotBars),
    (lists, candles) => {
      for (const list of lists) for (const msg of list) out.push(asSnapshot(msg))
      for (const bars of candles) out.push(bars)
      return out
    },
  )

/**
 * Runs `f` with flushing held, then places its messages where the queue stood when it
 * started: answers and snapshots go out before live events that arrived meanwhile. An answer
 * let through by `AnswerGate` gives what it reserved back once queued (or given up), and its
 * size teaches the gate's estimate (`topics`: how many topics' snapshots it holds).
 */
export const answerAtMark = <E, R>(
  env: Env,
  conn: Conn,
  f: Effect.Effect<ReadonlyArray<Outgoing>, E, R>,
  reserved = 0,
  topics = 0,
) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      conn.held++
      return conn.outbox.mark()
    }),
    (mark) =>
      Effect.map(f, (msgs) => {
        // Closed meanwhile without a flush: nothing more will be written to it.
        if (conn.closing) return
        const before = conn.outbox.bytes
        conn.outbox.insertAt(mark, msgs)
        if (topics > 0) env.flusher.answers.learn(conn.outbox.bytes - before, topics)
        // Answers and snapshots count against the same bound as other unkeyed messages: a client
        // that subscribes again and again without reading is closed as it asks, not later.
        if (conn.outbox.unkeyed > conn.limits.maxUnkeyed) {
          env.stats.slowConsumerCloses++
          conn.requestClose({ code: CloseCode.tryAgainLater, reason: "slow consumer", flush: false })
        }
      }),
    () =>
      Effect.sync(() => {
        conn.held--
        if (reserved > 0) env.flusher.answers.release(reserved)
        env.flusher.scheduler.schedule(conn)
      }),
  )
