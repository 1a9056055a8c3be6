/**
 * The two Redis connections of one instance (cluster mode): `cmd` for commands and publishes,
 * `sub` for SUBSCRIBE. Everything Redis-backed in `cluster/` goes through this service, so
 * connection state, error reporting and recovery after an outage live in one place.
 *
 * Outage behaviour (docs/cluster.md):
 * - `cmd` has no offline queue: while it is not ready a command fails at once instead of
 *   buffering without bound, so publishing never blocks the hot path.
 * - `sub` keeps ioredis' offline queue (it only ever holds SUBSCRIBE/UNSUBSCRIBE, bounded by topic
 *   churn) and `autoResubscribe`; after a reconnect we also re-SUBSCRIBE every routed channel
 *   ourselves, so the subscription set is right even if the two views diverged.
 * - When both connections are ready again after a loss, the registered recovery handlers run
 *   (alert cache reload, missed alert replay, re-seeding after data loss). Data loss (a Redis that
 *   restarted empty) is detected with an epoch key written at startup. Until a recovery has
 *   finished without a new loss meanwhile, the instance is "recovering" (`unrecoveredSince`), and
 *   the replay covers everything since the first loss.
 */
import { randomUUID } from "node:crypto"
import {
  Clock,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Queue,
  Runtime,
  type Scope,
} from "effect"
import type { ChainableCommander, Redis, RedisOptions } from "ioredis"
import { AppConfig } from "../config/AppConfig.js"
import { InstanceId } from "../config/InstanceId.js"
import { GatewayStats, GatewayStatsImpl } from "../metrics/GatewayStats.js"
import type { Codec } from "./codec.js"
import { redisConnection } from "./RedisConnection.js"
import { errorText, makeReports } from "./RedisReports.js"
import { type MessageHandler, routeMessages } from "./RedisRoutes.js"

/** Startup could not reach Redis: cluster mode does not start without it. */
export class RedisUnavailable extends Data.TaggedError("RedisUnavailable")<{
  readonly reason: string
  readonly message: string
}> {}
const unavailable = (reason: string) =>
  new RedisUnavailable({ reason, message: `Redis unavailable: ${reason}` })

export class RedisCommandError extends Data.TaggedError("RedisCommandError")<{
  readonly command: string
  readonly reason: string
}> {}

export interface Recovery {
  /** Redis came back without our data (restarted without persistence, flushed). */
  readonly dataLost: boolean
  /** Epoch ms when the first of the two connections was lost. */
  readonly downSince: number
}

export interface RedisClientShape {
  readonly prefix: string
  readonly instanceId: string
  /** The command connection (no offline queue: fails fast while disconnected). */
  readonly cmd: Redis
  /** Undefined when both connections are ready, else what is wrong. */
  readonly degraded: () => string | undefined
  /**
   * Since when (epoch ms) this instance has not been whole: a connection was lost and the
   * recovery after it has not finished yet (re-SUBSCRIBE confirmed, recovery handlers run).
   * Undefined when whole.
   */
  readonly unrecoveredSince: () => number | undefined
  /** Runs a command as an Effect. */
  readonly exec: <A>(command: string, f: (r: Redis) => Promise<A>) => Effect.Effect<A, RedisCommandError>
  /**
   * Runs a command whose reply ioredis cannot type (a Lua script's) and decodes it with `codec`:
   * a reply that does not decode fails the command, and is logged and counted.
   */
  readonly query: <A>(
    command: string,
    codec: Codec<A>,
    f: (r: Redis) => Promise<unknown>,
  ) => Effect.Effect<A, RedisCommandError>
  /**
   * Decodes a value read from Redis (a stored field, a pub/sub message): None when it does not
   * decode, which is logged (rate-limited) and counted.
   */
  readonly decode: <A>(codec: Codec<A>, value: unknown) => Option.Option<A>
  /**
   * Issues a command without waiting for its reply; a failure is reported (rate-limited), never
   * thrown. Auto-pipelined: it leaves with the other commands of this event-loop turn, in call
   * order, when ioredis flushes them (setImmediate).
   */
  readonly fire: (command: string, f: (r: Redis) => Promise<unknown>) => void
  /**
   * Writes the commands `build` adds to a pipeline to the socket at once, without waiting for
   * the replies; any failure is reported. For the market-data path: it must not wait for the
   * auto-pipeline's flush (which, under Effect's microtask scheduling, comes after all the work
   * of this turn). Writes that must reach Redis in a given order all go through here, in that
   * order: an earlier `fire` may still be waiting for its flush.
   */
  readonly fireNow: (command: string, build: (p: ChainableCommander) => void) => void
  /** Logs a failure, at most once per 5 s per `what` (with the number suppressed meanwhile). */
  readonly report: (what: string, cause: unknown) => void
  /**
   * Routes `channel`'s messages to `handler` and SUBSCRIBEs. Synchronous, so the SUBSCRIBE and
   * UNSUBSCRIBE calls of one channel reach Redis in call order; the promise settles when Redis
   * confirmed (or the attempt failed, which is reported).
   */
  readonly subscribe: (channel: string, handler: MessageHandler) => Promise<void>
  readonly unsubscribe: (channel: string) => void
  /** `subscribe` for the lifetime of the scope, waiting for the confirmation. */
  readonly listen: (channel: string, handler: MessageHandler) => Effect.Effect<void, never, Scope.Scope>
  /** Runs `f` after every recovery from a lost connection, for the lifetime of the scope. */
  readonly onRecovered: (
    f: (r: Recovery) => Effect.Effect<void, RedisCommandError>,
  ) => Effect.Effect<void, never, Scope.Scope>
}

export class RedisClient extends Context.Tag("quotecast/cluster/RedisClient")<
  RedisClient,
  RedisClientShape
>() {}

/**
 * The key that holds the epoch: a random value written by the first writer after Redis starts
 * empty. It exists as long as Redis kept our data; a new value means a new run (data lost).
 */
export const epochKeyOf = (prefix: string) => `${prefix}epoch`

const STARTUP_TIMEOUT = Duration.seconds(10)
const RECOVERY_RETRY = Duration.seconds(1)

export const RedisClientLive = Layer.scoped(
  RedisClient,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const instanceId = yield* InstanceId
    const url = Option.getOrElse(config.redisUrl, () => "redis://127.0.0.1:6379")
    const prefix = config.redisPrefix
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)

    // Optional so the client runs without the gateway's stats (tests); counted apart then.
    const stats = Option.getOrElse(yield* Effect.serviceOption(GatewayStats), () => new GatewayStatsImpl())
    const { report, decodeFailed } = makeReports(runFork, stats)

    const make = (role: "cmd" | "sub", options: RedisOptions) =>
      redisConnection(url, `${prefix}${instanceId}:${role}`, options)
    const cmd = yield* make("cmd", {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      // Bounds a hung server (no RST): a command fails instead of waiting for TCP to give up.
      commandTimeout: 2_000,
    })
    const sub = yield* make("sub", { autoResubscribe: true, maxRetriesPerRequest: null })

    // ---- connection state ----
    let started = false
    // Runs before the connections' releases (added after them): a clean shutdown is no outage.
    let stopping = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stopping = true
      }),
    )
    // The first loss not yet recovered from: kept until a recovery that no new loss interrupted
    // has finished, so a connection that drops again mid-recovery replays from the first loss.
    let lostSince: number | undefined
    let losses = 0
    const recoveries = yield* Queue.sliding<number>(1)
    /** Queues a recovery from the first unrecovered loss, once both connections are ready. */
    const queueRecoveryIfDue = () => {
      if (lostSince !== undefined && cmd.status === "ready" && sub.status === "ready")
        Queue.unsafeOffer(recoveries, lostSince)
    }
    const watch = (r: Redis, role: string) => {
      let wasReady = false
      r.on("error", (e: unknown) => report(`${role} connection`, e))
      r.on("close", () => {
        if (!wasReady || stopping) return
        wasReady = false
        if (started) {
          losses++
          lostSince ??= Date.now()
        }
        runFork(Effect.logWarning("redis connection lost").pipe(Effect.annotateLogs({ connection: role })))
      })
      r.on("ready", () => {
        wasReady = true
        if (!started) return
        runFork(Effect.logInfo("redis connection ready").pipe(Effect.annotateLogs({ connection: role })))
        queueRecoveryIfDue()
      })
    }
    watch(cmd, "command")
    watch(sub, "subscriber")

    const connect = (r: Redis, role: string) =>
      Effect.tryPromise({
        try: () => r.connect(),
        catch: (e) => unavailable(`${role} connection to ${url}: ${errorText(e)}`),
      }).pipe(
        Effect.timeoutFail({
          duration: STARTUP_TIMEOUT,
          onTimeout: () => unavailable(`${role} connection to ${url}: timed out`),
        }),
      )
    yield* Effect.all([connect(cmd, "command"), connect(sub, "subscriber")], { concurrency: 2 })

    const exec = <A>(command: string, f: (r: Redis) => Promise<A>) =>
      Effect.tryPromise({
        try: () => f(cmd),
        catch: (e) => new RedisCommandError({ command, reason: errorText(e) }),
      })
    const decode = <A>(codec: Codec<A>, value: unknown): Option.Option<A> =>
      Either.match(codec.decode(value), {
        onLeft: (e) => {
          decodeFailed(e)
          return Option.none()
        },
        onRight: Option.some,
      })
    const query = <A>(command: string, codec: Codec<A>, f: (r: Redis) => Promise<unknown>) =>
      Effect.flatMap(exec(command, f), (reply) =>
        Either.match(codec.decode(reply), {
          onLeft: (e) => {
            decodeFailed(e)
            return Effect.fail(new RedisCommandError({ command, reason: `unexpected reply: ${e.reason}` }))
          },
          onRight: Effect.succeed,
        }),
      )
    const fire = (command: string, f: (r: Redis) => Promise<unknown>) => {
      try {
        f(cmd).catch((e: unknown) => report(command, e))
      } catch (e) {
        report(command, e)
      }
    }
    const fireNow = (command: string, build: (p: ChainableCommander) => void) =>
      fire(command, (r) => {
        const p = r.pipeline()
        build(p)
        // A pipeline resolves with [error, reply] pairs rather than rejecting.
        return p.exec().then((results) => {
          const failed = results?.find(([err]) => err !== null)?.[0]
          if (failed) throw failed
        })
      })

    // ---- the epoch: a key that exists as long as Redis kept our data ----
    const epochKey = epochKeyOf(prefix)
    const adoptEpoch = Effect.gen(function* () {
      yield* exec("SET epoch", (r) => r.set(epochKey, randomUUID(), "NX"))
      return yield* exec("GET epoch", (r) => r.get(epochKey))
    })
    let epoch = yield* adoptEpoch.pipe(Effect.mapError((e) => unavailable(`${e.command}: ${e.reason}`)))

    // ---- subscriptions: one message listener, routed by channel ----
    const { routes, subscribe, unsubscribe, listen } = routeMessages(sub, prefix, report)

    // ---- recovery after an outage ----
    const handlers = new Set<(r: Recovery) => Effect.Effect<void, RedisCommandError>>()
    const onRecovered = (f: (r: Recovery) => Effect.Effect<void, RedisCommandError>) =>
      Effect.acquireRelease(
        Effect.sync(() => handlers.add(f)),
        () => Effect.sync(() => handlers.delete(f)),
      ).pipe(Effect.asVoid)
    const recover = (since: number) =>
      Effect.gen(function* () {
        const lossesAtStart = losses
        // Belt and braces beside autoResubscribe: SUBSCRIBE is idempotent.
        if (routes.size > 0) yield* exec("re-SUBSCRIBE", () => sub.subscribe(...routes.keys()))
        const current = yield* exec("GET epoch", (r) => r.get(epochKey))
        const dataLost = current !== epoch
        if (dataLost) epoch = yield* adoptEpoch
        const now = yield* Clock.currentTimeMillis
        yield* Effect.logInfo("redis recovered").pipe(
          Effect.annotateLogs({ data_lost: dataLost, down_ms: now - since, channels: routes.size }),
        )
        for (const h of handlers) {
          yield* h({ dataLost, downSince: since }).pipe(
            Effect.catchAllCause((cause) => Effect.logError("redis recovery step failed", cause)),
          )
        }
        // Lost again meanwhile: not whole yet; the next "ready" queues another recovery.
        if (losses === lossesAtStart) lostSince = undefined
      }).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(
            Effect.logWarning("redis recovery interrupted", e.reason),
            // Dropped again: the next "ready" queues another recovery. Still connected (a command
            // failed or timed out): try again shortly, or the instance would stay unrecovered.
            Effect.delay(Effect.sync(queueRecoveryIfDue), RECOVERY_RETRY),
          ),
        ),
      )
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(recoveries), recover)))

    started = true
    yield* Effect.logInfo("redis connected").pipe(
      Effect.annotateLogs({ url, prefix, instance_id: instanceId }),
    )

    const degraded = (): string | undefined => {
      if (cmd.status !== "ready") return `command connection ${cmd.status}`
      if (sub.status !== "ready") return `subscriber connection ${sub.status}`
      return undefined
    }

    return {
      prefix,
      instanceId,
      cmd,
      degraded,
      unrecoveredSince: () => lostSince,
      exec,
      query,
      decode,
      fire,
      fireNow,
      report,
      subscribe,
      unsubscribe,
      listen,
      onRecovered,
    } satisfies RedisClientShape
  }),
)
