/**
 * Snapshots in cluster mode are read from Redis, so that every instance serves the state
 * current in Redis; what a read returns is the instance's own copy of a message whenever Redis
 * holds the same one, so every subscriber queues one object (and one snapshot copy of it), as
 * in embedded mode, instead of a copy each. A message Redis holds that this instance has not
 * seen is served as read. Against the shared redis-server, under a prefix of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Layer, Logger, LogLevel, ManagedRuntime, Option } from "effect"
import { Redis } from "ioredis"
import { RedisClientLive } from "../../src/cluster/RedisClient.js"
import { RedisSnapshotsLive } from "../../src/cluster/RedisSnapshots.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { InstanceId } from "../../src/config/InstanceId.js"
import { Universe } from "../../src/market/Universe.js"
import { GatewayStats, GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { encodeEvent } from "../../src/pipeline/MarketPipeline.js"
import { MarketState } from "../../src/pipeline/MarketState.js"
import { asSnapshot } from "../../src/protocol/encode.js"
import { SnapshotStore, type SnapshotStoreShape } from "../../src/snapshot/SnapshotStore.js"
import { samsungTrade } from "../support/events.js"
import { cleanPrefix, SHARED_REDIS_URL, uniquePrefix, waitFor } from "./support.js"

const prefix = uniquePrefix()
let runtime: ManagedRuntime.ManagedRuntime<SnapshotStore, unknown>
let store: SnapshotStoreShape
const admin = new Redis(SHARED_REDIS_URL, { lazyConnect: true })

beforeAll(async () => {
  const config = AppConfig.layerWith({ redisUrl: Option.some(SHARED_REDIS_URL), redisPrefix: prefix })
  runtime = ManagedRuntime.make(
    Layer.project(RedisSnapshotsLive, SnapshotStore, SnapshotStore, (s) => s).pipe(
      Layer.provide(Layer.provideMerge(MarketState.layer, Universe.layer)),
      Layer.provide(RedisClientLive),
      Layer.provide(config),
      Layer.provide(Layer.succeed(GatewayStats, new GatewayStatsImpl())),
      Layer.provide(InstanceId.layer),
      Layer.provide(Logger.minimumLogLevel(process.env.TEST_LOGS ? LogLevel.Debug : LogLevel.None)),
    ),
  )
  store = await runtime.runPromise(SnapshotStore)
  await admin.connect()
}, 20_000)

afterAll(async () => {
  await runtime?.dispose()
  await cleanPrefix(SHARED_REDIS_URL, prefix)
  admin.disconnect()
})

describe("snapshots read from Redis", () => {
  it("are one object for every subscriber while Redis holds what this instance holds, and fresh when it does not", async () => {
    const put = encodeEvent(samsungTrade)
    const { topic, msg } = put
    const key = `${prefix}snap:${topic}`
    await runtime.runPromise(store.putAll([{ topic, snapshotKey: put.snapshotKey ?? "", msg }]))
    await waitFor(async () => (await admin.hlen(key)) > 0, 5_000, "the snapshot to reach Redis")

    const [first] = await runtime.runPromise(store.getMany([topic]))
    const [second] = await runtime.runPromise(store.getMany([topic]))
    expect(first?.map((m) => m.body)).toEqual([msg.body])
    expect(second?.[0]).toBe(first?.[0])
    expect(asSnapshot(second?.[0] ?? msg)).toBe(asSnapshot(first?.[0] ?? msg))

    // Another writer's newer state, not yet seen here: served as Redis holds it.
    const newer = encodeEvent({ ...samsungTrade, price: 73100, timestamp: "2026-12-05T09:00:02.000Z" })
    const [field] = await admin.hkeys(key)
    await admin.hset(key, field ?? "", `${newer.msg.key ?? ""}\n${newer.msg.body}`)
    const [fresh] = await runtime.runPromise(store.getMany([topic]))
    expect(fresh?.map((m) => m.body)).toEqual([newer.msg.body])
    expect(fresh?.[0]?.shared).not.toBe(true)
  })
})
