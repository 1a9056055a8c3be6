/**
 * Per-user bounds in cluster mode (issue 12 point 3): two gateway processes on one Redis, under a
 * key prefix of this file's own.
 * - MAX_ALERTS_PER_USER holds across instances, even for creations racing on both.
 * - A crossing that fires every alert of a user reaches the user's live connections on every
 *   instance and every saved session (restored on either instance), each alert exactly once.
 * - MAX_SESSIONS_PER_USER and MAX_ANONYMOUS_SESSIONS_PER_ADDRESS hold across instances, oldest
 *   saved released first; an anonymous session without subscriptions is saved like any other.
 * - The per-user indexes in Redis stay bounded and expire.
 */

import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Redis } from "ioredis"
import {
  connect,
  type GatewayProcess,
  ingest,
  type Message,
  type MessageOf,
  ofType,
  priceEvent,
  signToken,
  sleep,
  TestClient,
} from "../support/gateway.js"
import { alertsApi, SHARED_REDIS_URL, useCluster, waitFor } from "./support.js"

const MAX_ALERTS = 120
const MAX_SESSIONS = 3
const MAX_ANONYMOUS = 2
const MAX_ANONYMOUS_TOTAL = 50
const SESSION_TTL_S = 300
const cluster = useCluster({
  instances: 2,
  env: {
    MAX_ALERTS_PER_USER: String(MAX_ALERTS),
    MAX_SESSIONS_PER_USER: String(MAX_SESSIONS),
    MAX_ANONYMOUS_SESSIONS_PER_ADDRESS: String(MAX_ANONYMOUS),
    MAX_ANONYMOUS_SESSIONS: String(MAX_ANONYMOUS_TOTAL),
    SESSION_TTL_S: String(SESSION_TTL_S),
  },
})
const prefix = cluster.prefix
let a: GatewayProcess
let b: GatewayProcess
let redis: Redis
beforeAll(async () => {
  ;[a, b] = cluster.nodes as [GatewayProcess, GatewayProcess]
  redis = new Redis(SHARED_REDIS_URL)
  redis.on("error", () => {})
  expect((await ingest(a, [priceEvent("005930", 73000), priceEvent("000660", 145000)])).status).toBe(202)
})
afterAll(() => redis?.disconnect())

const post = (node: GatewayProcess, token: string, body: unknown) =>
  fetch(`${node.httpUrl}/v1/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  })

const sessionKey = (id: string) => `${prefix}session:{${id}}`

/** The session is released in Redis (saved) or gone (dropped). */
const settled = async (id: string) => {
  const owner = await redis.hget(sessionKey(id), "owner_conn")
  return owner === null || owner === ""
}

/** Opens a session on `node` (optionally subscribed), closes it, and waits until it is settled in Redis. */
const leaveSession = async (node: GatewayProcess, query: string, subscribe: boolean): Promise<string> => {
  const { client, connected } = await connect(node, query)
  if (subscribe) {
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await client.nextOfType("subscribed")
  }
  await client.close()
  const id = connected.session_id
  await waitFor(() => settled(id), 10_000, `session ${id} to be released`)
  return id
}

const restore = async (node: GatewayProcess, query: string) => {
  const client = await TestClient.open(`${node.wsUrl}?${query}`)
  await client.nextOfType("connected")
  const answer = await client.next(
    (m): m is MessageOf<"reconnected" | "error"> => m.type === "reconnected" || m.type === "error",
  )
  return { client, answer }
}

const alertIds = (msgs: ReadonlyArray<Message>) => ofType(msgs, "alert").map((m) => m.alert_id)

describe("alerts per user across instances", () => {
  it("MAX_ALERTS_PER_USER holds even when creations race on both instances", async () => {
    const token = await signToken({ sub: "racer" })
    const results = await Promise.all(
      Array.from({ length: MAX_ALERTS + 10 }, (_, i) =>
        post(i % 2 === 0 ? a : b, token, { code: "005930", alert_type: "price_above", threshold: 90000 + i }),
      ),
    )
    const statuses = results.map((r) => r.status)
    expect(statuses.filter((s) => s === 201)).toHaveLength(MAX_ALERTS)
    expect(statuses.filter((s) => s === 429)).toHaveLength(10)
    const refused = results.find((r) => r.status === 429)
    expect(await refused?.json()).toMatchObject({ _tag: "TooManyAlerts", limit: MAX_ALERTS })
    expect(await (await alertsApi(b, "racer")).list()).toHaveLength(MAX_ALERTS)
  }, 60_000)
})

describe("a crossing that fires every alert of a user with saved sessions on both instances", () => {
  it("reaches every live connection (both instances) and every saved session exactly once; the index then expires", async () => {
    const user = "storm-user"
    const api = await alertsApi(a, user)
    const ids = new Set<string>()
    for (let i = 0; i < MAX_ALERTS; i += 20) {
      const made = await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          api.create({ code: "000660", alert_type: "price_above", threshold: 146000 + (i + j) * 10 }),
        ),
      )
      for (const m of made) ids.add(m.id)
    }
    const saved: Array<string> = []
    for (let i = 0; i < MAX_SESSIONS; i++)
      saved.push(await leaveSession(i % 2 === 0 ? a : b, `token=${api.token}`, true))
    const live = await Promise.all([connect(a, `token=${api.token}`), connect(b, `token=${api.token}`)])
    // Every instance's cache learns of the alerts through the sync channel (not observable).
    await sleep(500)

    expect((await ingest(a, [priceEvent("000660", 160000)])).status).toBe(202)

    for (const { client } of live) {
      await waitFor(() => alertIds(client.messages).length >= MAX_ALERTS, 15_000, "every alert, live")
      await client.collectFor(300) // an absence: no second copy
      expect(alertIds(client.messages).sort()).toEqual([...ids].sort())
    }
    // Each saved session, restored on the instance it was not saved on, gets each alert once.
    for (const [i, id] of saved.entries()) {
      const { client, answer } = await restore(i % 2 === 0 ? b : a, `token=${api.token}&session_id=${id}`)
      expect(answer).toMatchObject({ type: "reconnected", session_id: id })
      const missed = await client.settle()
      expect(missed).toHaveLength(answer.type === "reconnected" ? answer.missed_messages_count : -1)
      expect(alertIds(missed).sort()).toEqual([...ids].sort())
      await client.close()
    }
    await Promise.all(live.map(({ client }) => client.close()))

    // All fired: the user's alert index holds them and expires with them (7 days), not never.
    const index = `${prefix}alerts-by-user:{${user}}`
    await waitFor(async () => (await redis.pttl(index)) > 0, 5000, "the fired alerts' index to expire")
    expect(await redis.zcard(index)).toBe(MAX_ALERTS)
    expect(await redis.pttl(index)).toBeLessThanOrEqual(7 * 24 * 3600 * 1000)
  }, 120_000)
})

describe("saved sessions across instances", () => {
  it("MAX_SESSIONS_PER_USER: the oldest saved sessions are released first, whichever instance saved them", async () => {
    const user = "roamer"
    const token = await signToken({ sub: user })
    const ids: Array<string> = []
    for (let i = 0; i < MAX_SESSIONS + 2; i++)
      ids.push(await leaveSession(i % 2 === 0 ? a : b, `token=${token}`, true))
    await waitFor(
      async () =>
        (await Promise.all(ids.map((id) => redis.exists(sessionKey(id))))).filter((n) => n === 1).length ===
        MAX_SESSIONS,
      5000,
      "the oldest sessions to be deleted",
    )
    const group = `${prefix}saved-sessions:{user:${user}}`
    expect(await redis.zcard(group)).toBe(MAX_SESSIONS)
    const ttl = await redis.pttl(group)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(SESSION_TTL_S * 1000)

    const open: Array<TestClient> = []
    for (const [i, id] of ids.entries()) {
      const { client, answer } = await restore(i % 2 === 0 ? b : a, `token=${token}&session_id=${id}`)
      open.push(client)
      if (i < 2) expect(answer).toMatchObject({ type: "error", code: "SESSION_RESTORATION_FAILED" })
      else expect(answer).toMatchObject({ type: "reconnected", session_id: id })
    }
    await Promise.all(open.map((c) => c.close()))
  }, 60_000)

  it("anonymous: saved without subscriptions too; at most MAX_ANONYMOUS_SESSIONS_PER_ADDRESS per address", async () => {
    const empty = await leaveSession(a, "", false)
    expect(await redis.exists(sessionKey(empty))).toBe(1)
    const { client: emptyRestored, answer: emptyAnswer } = await restore(b, `session_id=${empty}`)
    expect(emptyAnswer).toMatchObject({ type: "reconnected", session_id: empty })
    await emptyRestored.close()

    const ids: Array<string> = []
    for (let i = 0; i < MAX_ANONYMOUS + 1; i++) ids.push(await leaveSession(i % 2 === 0 ? a : b, "", true))
    await waitFor(
      async () => (await redis.exists(sessionKey(ids[0] ?? ""))) === 0,
      5000,
      "the oldest anonymous session to be deleted",
    )
    const open: Array<TestClient> = []
    for (const [i, id] of ids.entries()) {
      const { client, answer } = await restore(i % 2 === 0 ? b : a, `session_id=${id}`)
      open.push(client)
      if (i === 0) expect(answer).toMatchObject({ type: "error", code: "SESSION_RESTORATION_FAILED" })
      else
        expect(answer).toMatchObject({ type: "reconnected", restored_subscriptions: { stock: ["005930"] } })
    }
    await Promise.all(open.map((c) => c.close()))
  }, 60_000)
})

describe("Redis keys of the per-user indexes", () => {
  it("stay bounded and expire (an alert index without expiry holds an active alert)", async () => {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      keys.push(...found)
    } while (cursor !== "0")
    const groups = keys.filter((k) => k.startsWith(`${prefix}saved-sessions:`))
    const alertIndexes = keys.filter((k) => k.startsWith(`${prefix}alerts-by-user:`))
    expect(groups.length).toBeGreaterThan(0)
    expect(alertIndexes.length).toBeGreaterThan(0)
    for (const k of groups) {
      expect(await redis.pttl(k)).toBeGreaterThan(0)
      const cap = k.endsWith("{anonymous}") ? MAX_ANONYMOUS_TOTAL : Math.max(MAX_SESSIONS, MAX_ANONYMOUS)
      expect(await redis.zcard(k)).toBeLessThanOrEqual(cap)
    }
    for (const k of alertIndexes) {
      expect(await redis.zcard(k)).toBeLessThanOrEqual(MAX_ALERTS)
      if ((await redis.pttl(k)) === -1) expect(await redis.zcount(k, "+inf", "+inf")).toBeGreaterThan(0)
    }
  })
})
