/**
 * Recovery after a lost Redis connection (docs/cluster.md, docs/internals/cluster.md "Outages"), on one
 * instance's RedisClient and Broker in this process, against the real Redis:
 * - connected again is not recovered: until the recovery has run, the broker reports the
 *   instance as recovering (what /health shows), although both connections are ready;
 * - a connection lost again during the recovery makes the next one replay from the first loss;
 * - a recovery that fails while both connections stay up is tried again until it succeeds.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Option, Scope } from "effect"
import { Redis } from "ioredis"
import { Broker, type BrokerShape } from "../../src/broker/Broker.js"
import { RedisBrokerLive } from "../../src/cluster/RedisBroker.js"
import {
  type Recovery,
  RedisClient,
  RedisClientLive,
  type RedisClientShape,
} from "../../src/cluster/RedisClient.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { InstanceId } from "../../src/config/InstanceId.js"
import { sleep } from "../support/gateway.js"
import { cleanPrefix, killClients, SHARED_REDIS_URL, uniquePrefix, waitFor } from "./support.js"

const prefix = uniquePrefix()
const layer = Layer.provideMerge(RedisBrokerLive, RedisClientLive).pipe(
  Layer.provide(AppConfig.layerWith({ redisUrl: Option.some(SHARED_REDIS_URL), redisPrefix: prefix })),
  Layer.provide(InstanceId.layer),
  Layer.provide(Logger.minimumLogLevel(process.env.TEST_LOGS ? LogLevel.Debug : LogLevel.None)),
)
const runtime = ManagedRuntime.make(layer)
let redis: RedisClientShape
let broker: BrokerShape
let admin: Redis
let scope: Scope.CloseableScope

/** What the recovery handler saw, and the gate each call waits on before it returns. */
const calls: Array<Recovery> = []
let gate: Promise<void> = Promise.resolve()
let open: () => void = () => {}
const hold = () => {
  open() // a gate left shut by a failed test must not hold the next recovery
  gate = new Promise((resolve) => {
    open = resolve
  })
}

const health = () => runtime.runPromise(broker.degraded)

beforeAll(async () => {
  ;[redis, broker] = await runtime.runPromise(Effect.all([RedisClient, Broker]))
  admin = new Redis(SHARED_REDIS_URL)
  scope = await runtime.runPromise(Scope.make())
  await runtime.runPromise(
    Scope.extend(
      redis.onRecovered((r) =>
        Effect.promise(() => {
          calls.push(r)
          return gate
        }),
      ),
      scope,
    ),
  )
}, 20_000)

afterAll(async () => {
  open()
  await runtime.runPromise(Scope.close(scope, Exit.void))
  await runtime.dispose()
  admin?.disconnect()
  await cleanPrefix(SHARED_REDIS_URL, prefix)
}, 20_000)

const connectedAgain = () => waitFor(() => redis.degraded() === undefined, 10_000, "both connections ready")

describe("after a lost Redis connection", () => {
  it("is reported as recovering, not healthy, from reconnect until its recovery has run", async () => {
    expect(await health()).toBeUndefined()
    hold()
    const killedAt = Date.now()
    expect(await killClients(admin, prefix)).toBe(2)
    await waitFor(() => calls.length === 1, 10_000, "the recovery to start")
    await connectedAgain()
    // Both connections are up, and still: events from other instances may be missed until the
    // recovery is done, so the instance is not healthy yet.
    expect(await health()).toBe("recovering from a lost connection")
    expect(redis.unrecoveredSince()).toBeGreaterThanOrEqual(killedAt)
    open()
    await waitFor(async () => (await health()) === undefined, 5000, "recovered")
    expect(redis.unrecoveredSince()).toBeUndefined()
  })

  it("lost again during the recovery: the next recovery replays from the first loss", async () => {
    calls.length = 0
    hold()
    expect(await killClients(admin, prefix)).toBe(2)
    await waitFor(() => calls.length === 1, 10_000, "the first recovery to start")
    const first = calls[0]?.downSince
    await connectedAgain()
    // The first recovery is still in its last step when the connections drop again.
    expect(await killClients(admin, prefix)).toBe(2)
    await waitFor(() => redis.degraded() !== undefined, 5000, "the loss noticed")
    expect(await health()).toMatch(/^down: /)
    await connectedAgain()
    open()
    await waitFor(() => calls.length === 2, 10_000, "the second recovery")
    expect(calls[1]?.downSince).toBe(first)
    await waitFor(async () => (await health()) === undefined, 5000, "recovered")
  })

  it("a recovery that fails while connected is tried again until it succeeds", async () => {
    calls.length = 0
    open()
    // The recovery reads the epoch key first; as a list, that read fails (WRONGTYPE) while both
    // connections stay up.
    const epochKey = `${prefix}epoch`
    const epoch = await admin.get(epochKey)
    await admin.multi().del(epochKey).rpush(epochKey, "not an epoch").exec()
    expect(await killClients(admin, prefix)).toBe(2)
    await connectedAgain()
    await sleep(2500) // an absence: while the read fails, no recovery completes (several attempts)
    expect(calls).toHaveLength(0)
    expect(await health()).toBe("recovering from a lost connection")
    await admin
      .multi()
      .del(epochKey)
      .set(epochKey, epoch ?? "")
      .exec()
    await waitFor(async () => (await health()) === undefined, 5000, "recovered")
    expect(calls).toHaveLength(1)
  })
})
