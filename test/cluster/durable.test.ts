/**
 * A user message (an alert) published while Redis is unreachable is not lost for the other
 * instances: it is delivered locally at once and sent through Redis when it is back. One
 * instance's RedisClient and Broker in this process, against a private redis-server that the
 * test kills and restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Option } from "effect"
import type { Redis } from "ioredis"
import { Broker, type BrokerShape } from "../../src/broker/Broker.js"
import { userTopic } from "../../src/broker/topics.js"
import { RedisBrokerLive, recentKeyOf } from "../../src/cluster/RedisBroker.js"
import { RedisClient, RedisClientLive, type RedisClientShape } from "../../src/cluster/RedisClient.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { InstanceId } from "../../src/config/InstanceId.js"
import { type PrivateRedis, startPrivateRedis, uniquePrefix, waitFor } from "./support.js"

const prefix = uniquePrefix()
let server: PrivateRedis
let runtime: ManagedRuntime.ManagedRuntime<Broker | RedisClient, unknown>
let redis: RedisClientShape
let broker: BrokerShape
let admin: Redis

beforeAll(async () => {
  server = await startPrivateRedis()
  runtime = ManagedRuntime.make(
    Layer.provideMerge(RedisBrokerLive, RedisClientLive).pipe(
      Layer.provide(AppConfig.layerWith({ redisUrl: Option.some(server.url), redisPrefix: prefix })),
      Layer.provide(InstanceId.layer),
      Layer.provide(Logger.minimumLogLevel(process.env.TEST_LOGS ? LogLevel.Debug : LogLevel.None)),
    ),
  )
  ;[redis, broker] = await runtime.runPromise(Effect.all([RedisClient, Broker]))
}, 20_000)

afterAll(async () => {
  admin?.disconnect()
  await runtime?.dispose()
  await server?.kill()
}, 20_000)

describe("a user message published while Redis is away", () => {
  it("reaches the other instances once Redis is back (here: restarted empty)", async () => {
    const topic = userTopic("away-trader")
    const body = '{"type":"alert","alert_id":"sent-late"'
    const local: Array<string> = []
    await runtime.runPromise(broker.join(topic, { deliver: (m) => local.push(m.body) }))

    await server.kill()
    await waitFor(() => redis.degraded() !== undefined, 5000, "the loss noticed")
    await runtime.runPromise(broker.publish(topic, { key: undefined, body }))
    // Local delivery does not wait for Redis.
    expect(local).toEqual([body])

    await server.start()
    // Sent by the durable publish script: PUBLISHed to the other instances and kept in the
    // recent list they replay from (what is checked here: a subscriber's timing would race).
    admin = server.client()
    const recent = () => admin.lrange(recentKeyOf(prefix), 0, -1)
    await waitFor(async () => (await recent()).length > 0, 10_000, "the message to be sent through Redis")
    const entries = await recent()
    expect(entries).toHaveLength(1)
    expect(entries[0]?.split("\t")[1]).toBe(`${prefix}${topic}`)
    expect(entries[0]?.endsWith(`\n${body}`)).toBe(true)
    // This instance skips its own message.
    expect(local).toEqual([body])
  }, 30_000)
})
