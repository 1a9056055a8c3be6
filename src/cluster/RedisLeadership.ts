/**
 * Feed leadership over Redis (cluster mode): exactly one instance runs the simulator, the sector
 * aggregator and the market clock's announcements.
 *
 * A lease: `SET prefix+"leader" <instance id> NX PX <LEADER_LEASE_MS>`. On one clock (every
 * lease/3) the leader renews it with a compare-and-PEXPIRE script and the others try to take it.
 * The leader counts its lease from the moment it *sent* the last successful renewal and steps
 * down (interrupting its tasks) when that lease, minus a margin, runs out without another
 * confirmation, which happens before the key can expire in Redis. So two leaders never overlap
 * (clocks only measure durations here, no cross-host comparison). When a leader dies, the key
 * expires and another instance takes it within lease + lease/3; a leader that shuts down cleanly
 * deletes its key, so the next one takes over within lease/3.
 *
 * A Redis that restarted empty has lost the key while the leader may still trust its lease (it
 * could not renew, and steps down only when the lease runs out): so an instance takes the lease
 * only once it has recovered from the outage, and after a recovery that found the data lost it
 * waits one more lease, by when the old leader has stepped down.
 */
import { Clock, Duration, Effect, FiberHandle, Layer, Stream, SubscriptionRef } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { FeedLeadership, type FeedLeadershipShape } from "../feed/FeedLeadership.js"
import { RedisClient } from "./RedisClient.js"
import { luaScript } from "./RedisScript.js"

/** KEYS: lease. ARGV: instance, ttl ms. */
const renewScript = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/** KEYS: lease. ARGV: instance. */
const releaseScript = luaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

export const LeadershipLive = Layer.scoped(
  FeedLeadership,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const config = yield* AppConfig
    const leaseMs = config.leaderLeaseMs
    const renewEvery = Duration.millis(Math.max(50, Math.floor(leaseMs / 3)))
    // Stop trusting the lease this long before it could expire in Redis.
    const safeFor = Duration.millis(Math.max(1, leaseMs - Math.max(100, Math.floor(leaseMs / 6))))
    const key = `${redis.prefix}leader`
    const me = redis.instanceId

    /** Epoch ms before which this instance does not take the lease (after Redis lost it). */
    let holdOffUntil = 0
    yield* redis.onRecovered(({ dataLost }) =>
      dataLost
        ? Effect.map(Clock.currentTimeMillis, (now) => {
            holdOffUntil = now + leaseMs
          })
        : Effect.void,
    )

    const state = yield* SubscriptionRef.make(false)
    let leader = false
    const setLeader = (value: boolean, reason: string, clean = false) =>
      Effect.gen(function* () {
        if (leader === value) return
        leader = value
        yield* SubscriptionRef.set(state, value)
        const log = value
          ? Effect.logInfo("feed leadership acquired")
          : clean
            ? Effect.logInfo("feed leadership released")
            : Effect.logWarning("feed leadership lost")
        yield* log.pipe(Effect.annotateLogs({ instance_id: me, reason }))
      })

    // Steps down when the lease runs out unconfirmed; restarted by every confirmation.
    const deadline = yield* FiberHandle.make<void, never>()
    const confirmed = (sentAt: number) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const left = Duration.toMillis(safeFor) - (now - sentAt)
        yield* FiberHandle.run(
          deadline,
          Effect.zipRight(
            Effect.sleep(Duration.millis(Math.max(0, left))),
            setLeader(false, "lease not renewed in time"),
          ),
        )
      })

    const step = Effect.gen(function* () {
      const sentAt = yield* Clock.currentTimeMillis
      if (leader) {
        const renewed = yield* redis.exec("renew leader lease", (r) => renewScript(r, [key], [me, leaseMs]))
        if (renewed === 1) yield* confirmed(sentAt)
        else {
          yield* FiberHandle.clear(deadline)
          yield* setLeader(false, "lease taken by another instance")
        }
      } else {
        if (redis.unrecoveredSince() !== undefined || sentAt < holdOffUntil) return
        const taken = yield* redis.exec("take leader lease", (r) => r.set(key, me, "PX", leaseMs, "NX"))
        if (taken === "OK") {
          yield* confirmed(sentAt)
          yield* setLeader(true, "lease acquired")
        }
      }
    }).pipe(
      // Redis unreachable: the deadline decides when a leader must step down.
      Effect.catchAll((e) => Effect.sync(() => redis.report(e.command, e.reason))),
    )
    // Added before the loop is forked, so it runs after the loop was interrupted (no re-take).
    yield* Effect.addFinalizer(() =>
      leader
        ? Effect.zipRight(
            setLeader(false, "shutting down", true),
            redis
              .exec("release leader lease", (r) => releaseScript(r, [key], [me]))
              .pipe(
                Effect.catchAll((e) => Effect.logWarning("could not release the leader lease", e.reason)),
              ),
          )
        : Effect.void,
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(step, Effect.sleep(renewEvery))))

    const until = (value: boolean) =>
      state.changes.pipe(
        Stream.filter((v) => v === value),
        Stream.take(1),
        Stream.runDrain,
      )

    const shape: FeedLeadershipShape = {
      isLeader: () => leader,
      lead: (task) =>
        Effect.asVoid(
          Effect.forkScoped(
            Effect.forever(
              Effect.gen(function* () {
                yield* until(true)
                yield* Effect.raceFirst(
                  Effect.zipRight(Effect.flatten(task), Effect.never),
                  until(false),
                ).pipe(
                  Effect.catchAllCause((cause) =>
                    // Not in a tight loop if the task keeps failing.
                    Effect.zipRight(
                      Effect.logError("feed leader task failed", cause),
                      Effect.sleep(renewEvery),
                    ),
                  ),
                )
              }),
            ),
          ),
        ),
    }
    return shape
  }),
)
