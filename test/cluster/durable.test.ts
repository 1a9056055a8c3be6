/**
 * A user message (an alert) whose publish through Redis fails is not lost for the other
 * instances: it is delivered locally at once and sent through Redis as soon as Redis takes it,
 * whether the connection was lost (Redis restarted) or stayed up (Redis refused the write: out
 * of memory). At most UNSENT_USER_MESSAGES_MAX wait; past it the oldest are dropped and counted.
 * One instance's RedisClient and Broker in this process, against a private redis-server that the
 * test kills, restarts and starves of memory.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Option } from "effect"
import type { Redis } from "ioredis"
import { Broker, type BrokerShape } from "../../src/broker/Broker.js"
import { decodeWire, RedisBrokerLive, recentKeyOf } from "../../src/cluster/RedisBroker.js"
import { RedisClient, RedisClientLive, type RedisClientShape } from "../../src/cluster/RedisClient.js"
import { AppConfig } from "../../src/config/AppConfig.js"
import { InstanceId } from "../../src/config/InstanceId.js"
import { GatewayStats, GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { userTopic } from "../../src/protocol/topics.js"
import { sleep } from "../support/gateway.js"
import { type PrivateRedis, startPrivateRedis, uniquePrefix, waitFor } from "./support.js"

const prefix = uniquePrefix()
let server: PrivateRedis
let runtime: ManagedRuntime.ManagedRuntime<Broker | RedisClient, unknown>
let redis: RedisClientShape
let broker: BrokerShape
let admin: Redis
const stats = new GatewayStatsImpl()
/** UNSENT_USER_MESSAGES_MAX here: small enough to overflow with a few messages. */
const UNSENT_MAX = 3

beforeAll(async () => {
  server = await startPrivateRedis()
  runtime = ManagedRuntime.make(
    Layer.provideMerge(RedisBrokerLive, RedisClientLive).pipe(
      Layer.provide(
        AppConfig.layerWith({
          redisUrl: Option.some(server.url),
          redisPrefix: prefix,
          unsentUserMessagesMax: UNSENT_MAX,
        }),
      ),
      Layer.provide(Layer.succeed(GatewayStats, stats)),
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

describe("a user message whose publish fails while the connection stays up", () => {
  /** Redis refuses every write (out of memory) until `lift`; its connections stay ready. */
  const starve = async (r: Redis) => {
    await r.config("SET", "maxmemory-policy", "noeviction")
    await r.config("SET", "maxmemory", "1")
  }
  const lift = (r: Redis) => r.config("SET", "maxmemory", "0")

  /** Another instance's view: the bodies PUBLISHed on the topic's channel. */
  const otherInstance = async (topic: string) => {
    const sub = server.client()
    const bodies: Array<string> = []
    sub.on("message", (_channel: string, payload: string) => {
      const wire = decodeWire(payload)
      if (wire !== undefined) bodies.push(wire.msg.body)
    })
    await sub.subscribe(`${prefix}${topic}`)
    return { sub, bodies }
  }

  it("reaches the other instances once Redis takes writes again, without any reconnect", async () => {
    const topic = userTopic("oom-trader")
    const body = '{"type":"alert","alert_id":"refused-then-sent"'
    const control = server.client()
    const other = await otherInstance(topic)
    let closes = 0
    const onClose = () => closes++
    redis.cmd.on("close", onClose)
    try {
      await waitFor(() => redis.degraded() === undefined, 10_000, "both connections ready")
      await starve(control)
      await runtime.runPromise(broker.publish(topic, { key: undefined, body }))
      // Refused, and still refused a while later (the resend clock runs meanwhile): kept. An
      // absence, watched for a bounded while.
      await sleep(1500)
      expect(other.bodies).toEqual([])

      await lift(control)
      await waitFor(() => other.bodies.length > 0, 10_000, "the message at the other instance")
      expect(other.bodies).toEqual([body])
      expect(stats.unsentUserMessages).toBe(0)
      expect(stats.unsentUserMessagesDropped).toBe(0)
      // Sent by the resend clock, not by a recovery: the connection never dropped.
      expect(closes).toBe(0)
      expect(redis.unrecoveredSince()).toBeUndefined()
    } finally {
      redis.cmd.off("close", onClose)
      await lift(control).catch(() => {})
      control.disconnect()
      other.sub.disconnect()
    }
  }, 30_000)

  it("keeps at most UNSENT_USER_MESSAGES_MAX, dropping the oldest, counted", async () => {
    const topic = userTopic("oom-flood-trader")
    const bodies = Array.from({ length: UNSENT_MAX + 2 }, (_, i) => `{"type":"alert","alert_id":"flood-${i}"`)
    const control = server.client()
    const other = await otherInstance(topic)
    const droppedBefore = stats.unsentUserMessagesDropped
    try {
      await waitFor(() => redis.degraded() === undefined, 10_000, "both connections ready")
      await starve(control)
      for (const body of bodies) await runtime.runPromise(broker.publish(topic, { key: undefined, body }))
      await waitFor(
        () => stats.unsentUserMessagesDropped - droppedBefore === 2,
        5000,
        "the two oldest to be dropped",
      )
      expect(stats.unsentUserMessages).toBe(UNSENT_MAX)

      await lift(control)
      await waitFor(
        () => other.bodies.length >= UNSENT_MAX,
        10_000,
        "the kept messages at the other instance",
      )
      await sleep(500) // an absence: nothing more (no older one, no copy) comes after them
      // The newest, in publish order.
      expect(other.bodies).toEqual(bodies.slice(2))
      expect(stats.unsentUserMessages).toBe(0)
    } finally {
      await lift(control).catch(() => {})
      control.disconnect()
      other.sub.disconnect()
    }
  }, 30_000)
})
