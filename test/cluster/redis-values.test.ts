/**
 * What an instance reads from Redis is decoded, never trusted (`src/cluster/codec.ts`): a value
 * that does not have the shape this version writes is left out, logged and counted in
 * `quotecast_redis_decode_failures_total`. And a read that fails is said, not turned into a
 * default: `/v1/ws/stats` answers `saved_sessions: null` with `saved_sessions_error` while Redis
 * is down, counted in `quotecast_saved_sessions_count_failures_total`.
 * One instance against a private redis-server that the last test kills and restarts.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import type { Redis } from "ioredis"
import { Stats } from "../../src/http/Api.js"
import { connect, type GatewayProcess, signToken } from "../support/gateway.js"
import {
  healthOf,
  type PrivateRedis,
  startInstances,
  startPrivateRedis,
  statsOf,
  stopAll,
  uniquePrefix,
  waitFor,
} from "./support.js"

const prefix = uniquePrefix()
let server: PrivateRedis
let admin: Redis
let gw: GatewayProcess

beforeAll(async () => {
  server = await startPrivateRedis()
  admin = server.client()
  ;[gw] = (await startInstances(1, { REDIS_URL: server.url, REDIS_PREFIX: prefix })) as [GatewayProcess]
}, 120_000)

afterAll(async () => {
  await stopAll([gw])
  admin?.disconnect()
  await server?.kill()
}, 30_000)

/** The value of a counter in `/metrics`, 0 when absent. */
const counter = async (series: string): Promise<number> => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
const decodeFailures = (what: string) => counter(`quotecast_redis_decode_failures_total{what="${what}"}`)

describe("values in Redis that do not decode", () => {
  it("a member entry that is not an instance's beat is left out of the cluster view, logged and counted", async () => {
    await admin.hset(`${prefix}members`, "intruder", "{not json")
    const stats = await statsOf(gw)
    expect(stats.cluster?.instances).toBe(1)
    expect(stats.cluster?.members.map((m) => m.instance_id)).not.toContain("intruder")
    expect(await decodeFailures("member_entry")).toBeGreaterThanOrEqual(1)
    await waitFor(() => /a value read does not decode/.test(gw.output()), 5000, "the failure logged")
    expect(gw.output()).toMatch(/member_entry/)
    await admin.hdel(`${prefix}members`, "intruder")
  })

  it("a session whose stored subscriptions do not decode is not restored (SESSION_RESTORATION_FAILED), and counted", async () => {
    const token = await signToken({ sub: "decoded-user" })
    const id = "0b6f1d6e-0000-4000-8000-00000000dec0"
    await admin.hset(`${prefix}session:{${id}}`, {
      user: JSON.stringify("decoded-user"),
      subs: '{"stock":"005930"}',
      seq: "7",
      owner_instance: "",
      owner_conn: "",
    })
    const before = await decodeFailures("session_hash")
    const { client, connected } = await connect(gw, `token=${token}&session_id=${id}`)
    expect(connected.session_id).not.toBe(id)
    expect((await client.nextOfType("error")).code).toBe("SESSION_RESTORATION_FAILED")
    expect(await decodeFailures("session_hash")).toBeGreaterThan(before)
    await client.close()
  })
})

describe("/v1/ws/stats while Redis is down", () => {
  it("says saved_sessions is unknown (null, with the reason) instead of 0, and counts it", async () => {
    expect(typeof (await statsOf(gw)).saved_sessions).toBe("number")
    await server.kill()
    await waitFor(async () => (await healthOf(gw)).status === 503, 10_000, "redis reported down")
    const res = await fetch(`${gw.httpUrl}/v1/ws/stats`)
    expect(res.status).toBe(200)
    const stats = Schema.decodeUnknownSync(Stats)(await res.json())
    expect(stats.saved_sessions).toBeNull()
    expect(stats.saved_sessions_error).toMatch(/count released sessions/)
    expect(typeof stats.active_connections).toBe("number")
    expect(await counter("quotecast_saved_sessions_count_failures_total")).toBeGreaterThanOrEqual(1)

    await server.start()
    await waitFor(async () => (await healthOf(gw)).status === 200, 20_000, "redis recovered")
    const after = await statsOf(gw)
    expect(typeof after.saved_sessions).toBe("number")
    expect(after.saved_sessions_error).toBeUndefined()
  }, 40_000)
})
