/**
 * docs/protocol.md "HTTP endpoints": the HTTP API on the gateway's port, over real HTTP.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { ConnectionInfo, Health, IngestRejected, Liveness, Stats } from "../../src/http/Api.js"
import {
  connect,
  ingest,
  type MessageOf,
  priceEvent,
  readJson,
  signToken,
  useGateway,
} from "../support/gateway.js"

const gw = useGateway()
let admin: string
let publisher: string
let user: string
beforeAll(async () => {
  admin = await signToken({ sub: "root", role: "admin" })
  publisher = await signToken({ sub: "feed", role: "publisher" })
  user = await signToken({ sub: "user-7" })
})

const get = (path: string, token?: string) =>
  fetch(`${gw.httpUrl}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
const post = (path: string, body: unknown, token?: string) =>
  fetch(`${gw.httpUrl}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  })

describe("GET /health/live", () => {
  it("is 200 with status alive while the process serves HTTP", async () => {
    const res = await get("/health/live")
    expect(res.status).toBe(200)
    expect(await readJson(res, Liveness)).toMatchObject({ status: "alive" })
  })
})

describe("GET /health", () => {
  it("is 200 with status ok", async () => {
    const res = await get("/health")
    expect(res.status).toBe(200)
    expect(await readJson(res, Health)).toMatchObject({
      status: "ok",
      mode: "embedded",
      dependencies: { redis: "not_used" },
    })
  })
})

describe("GET /v1/ws/stats", () => {
  it("is public and has every field of the original document with live values", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSPI"] })
    await client.nextOfType("subscribed")
    await client.nextOfType("subscribed")
    // Decoded with the API's Stats Schema: every field there, of its type, and no other.
    const stats = await readJson(await get("/v1/ws/stats"), Stats)
    expect(stats).toMatchObject({
      active_connections: 1,
      total_subscriptions: 3,
      subscriptions_by_type: { stock: 2, market: 1, sector: 0 },
      batching_enabled: true,
      batch_interval_ms: 30,
      rate_limiting_enabled: true,
      rate_limit: 100,
    })
    expect(stats.messages_sent).toBeGreaterThanOrEqual(1)
    await client.close()
  })
})

describe("GET /v1/ws/connections", () => {
  it("is 401 without a valid token, 403 for a non-admin, and lists connections for an admin", async () => {
    expect((await get("/v1/ws/connections")).status).toBe(401)
    expect((await get("/v1/ws/connections", "garbage")).status).toBe(401)
    expect((await get("/v1/ws/connections", user)).status).toBe(403)
    const { client, connected } = await connect(gw, `token=${user}`)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await client.nextOfType("subscribed")
    const res = await get("/v1/ws/connections", admin)
    expect(res.status).toBe(200)
    const mine = (await readJson(res, Schema.Array(ConnectionInfo))).find(
      (c) => c.connection_id === connected.connection_id,
    )
    expect(mine).toMatchObject({
      user_id: "user-7",
      subscriptions: { stock: ["005930"], market: [], sector: [] },
    })
    expect(mine?.connected_at).toMatch(/Z$/)
    expect(mine?.message_count).toBeGreaterThanOrEqual(2)
    await client.close()
  })
})

describe("POST /v1/ingest", () => {
  it("needs the publisher or admin role", async () => {
    expect((await post("/v1/ingest", { events: [] })).status).toBe(401)
    expect((await post("/v1/ingest", { events: [] }, user)).status).toBe(403)
    expect((await post("/v1/ingest", { events: [priceEvent("005930", 73000)] }, admin)).status).toBe(202)
  })

  it("answers 202 with the count, and the events reach subscribers with change derived from the previous close", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["035720"] })
    await client.nextOfType("subscribed")
    const res = await post("/v1/ingest", { events: [priceEvent("035720", 43000)] }, publisher)
    expect(res.status).toBe(202)
    expect(await res.json()).toEqual({ accepted: 1 })
    const update = await client.next((m) => m.type === "price_update" && !m.snapshot)
    expect(update).toMatchObject({
      code: "035720",
      name: "Kakao",
      price: 43000,
      change: 1000,
      change_percent: 2.38,
    })
    await client.close()
  })

  it("answers 400 with a reason per invalid event", async () => {
    const res = await post(
      "/v1/ingest",
      { events: [priceEvent("005930", 73000), priceEvent("999999", 1000), { type: "nonsense" }] },
      publisher,
    )
    expect(res.status).toBe(400)
    const body = await readJson(res, Schema.encodedSchema(IngestRejected))
    expect(body.rejected.map((r) => r.index)).toEqual([1, 2])
    for (const r of body.rejected) expect(typeof r.reason).toBe("string")
  })
})

describe("GET /api/v1/users/me", () => {
  it("answers the token's identity, 401 without one", async () => {
    expect((await get("/api/v1/users/me")).status).toBe(401)
    const res = await get("/api/v1/users/me", publisher)
    expect(await res.json()).toEqual({ user_id: "feed", role: "publisher", expires_at: null })
  })
})

describe("GET /metrics, /docs and /", () => {
  it("serves Prometheus text with the gateway's series", async () => {
    const res = await get("/metrics")
    expect(res.headers.get("content-type")).toContain("text/plain")
    const text = await res.text()
    for (const name of [
      "quotecast_connections_active",
      "quotecast_messages_sent_total",
      "quotecast_queue_depth",
      "quotecast_batch_size_bucket",
      "quotecast_rate_limit_rejections_total",
      "quotecast_decode_errors_total",
    ]) {
      expect(text).toContain(name)
    }
  })

  it("describes the HTTP API in OpenAPI at /docs", async () => {
    const res = await get("/docs")
    expect(res.status).toBe(200)
    expect(await res.text()).toContain("swagger")
  })

  it("serves the dashboard page at /", async () => {
    const res = await get("/")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toContain("text/html")
  })
})

describe("ingest reaches market and sector subscribers", () => {
  it("a market subscription gets its status (snapshot first) and its index as price_update", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSDAQ"] })
    await client.nextOfType("subscribed")
    expect(await client.nextOfType("market_status")).toMatchObject({
      market: "KOSDAQ",
      status: "open",
      snapshot: true,
    })
    expect(
      (
        await ingest(gw, [
          { type: "market_status", market: "KOSDAQ", status: "halted" },
          priceEvent("KOSDAQ", 861.5),
        ])
      ).status,
    ).toBe(202)
    expect(await client.next((m) => m.type === "market_status" && !m.snapshot)).toMatchObject({
      market: "KOSDAQ",
      status: "halted",
    })
    expect(await client.next((m) => m.type === "price_update" && !m.snapshot)).toMatchObject({
      code: "KOSDAQ",
      price: 861.5,
    })
    await client.close()
  })

  it("a sector subscription gets sector_update computed from its members' prices", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "sector", targets: ["IT"] })
    await client.nextOfType("subscribed")
    await client.settle()
    expect((await ingest(gw, [priceEvent("005930", 74000)])).status).toBe(202)
    const update = await client.next(
      (m): m is MessageOf<"sector_update"> => m.type === "sector_update" && !m.snapshot,
      3000,
    )
    expect(update).toMatchObject({ sector: "IT" })
    expect(update.advancers).toBeGreaterThanOrEqual(1)
    expect(update.top_movers.some((m) => m.code === "005930")).toBe(true)
    await client.close()
  })
})
