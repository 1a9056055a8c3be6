/**
 * docs/protocol.md "Connection lifecycle", against a real gateway over real sockets.
 * (Rule 7, SIGTERM, is in shutdown.test.ts: it needs its own process.)
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import {
  connect,
  connectionGone,
  ingest,
  ofType,
  priceEvent,
  signToken,
  TestClient,
  useGateway,
  waitFor,
} from "../support/gateway.js"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const gw = useGateway({ heartbeatIntervalMs: 300 })
beforeAll(async () => {
  expect((await ingest(gw, [priceEvent("005930", 73000), priceEvent("000660", 145000)])).status).toBe(202)
})

describe("1. connected comes first", () => {
  it("anonymous: connection and session ids, user_id null, sequence 1", async () => {
    const client = await TestClient.open(gw.wsUrl)
    const first = await client.nextMustBe("connected")
    expect(first).toMatchObject({ user_id: null, sequence: 1 })
    expect(client.frames[0]).toBe(first) // a frame of its own, never inside a batch
    expect(first.connection_id).toMatch(UUID)
    expect(first.session_id).toMatch(UUID)
    expect(first.timestamp).toMatch(ISO_MS)
    await client.close()
  })

  it("with a valid token: user_id is the token's sub", async () => {
    const token = await signToken({ sub: "user-1" })
    const { client, connected } = await connect(gw, `token=${token}`)
    expect(connected.user_id).toBe("user-1")
    await client.close()
  })
})

describe("2. session restore by query parameter", () => {
  it("restores subscriptions and sends reconnected followed by exactly missed_messages_count messages", async () => {
    const a = await connect(gw)
    a.client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    await a.client.nextOfType("subscribed")
    const beforeClose = await a.client.settle()
    const lastSeq = Math.max(...[a.connected, ...beforeClose].map((m) => m.sequence)) + 1 // the settle's pong
    await a.client.close()
    await connectionGone(gw, a.connected.connection_id)

    const b = await TestClient.open(`${gw.wsUrl}?session_id=${a.connected.session_id}`)
    const connected = await b.nextMustBe("connected")
    expect(b.frames[0]).toBe(connected)
    expect(connected).toMatchObject({ session_id: a.connected.session_id, sequence: lastSeq + 1 })
    const reconnected = await b.nextMustBe("reconnected")
    expect(reconnected).toMatchObject({
      session_id: a.connected.session_id,
      restored_subscriptions: { stock: ["005930", "000660"] },
      sequence: lastSeq + 2,
    })
    const rest = await b.settle()
    expect(rest).toHaveLength(reconnected.missed_messages_count)
    expect(ofType(rest, "price_update").map((m) => [m.code, m.snapshot])).toEqual([
      ["005930", true],
      ["000660", true],
    ])
    expect(rest.map((m) => m.sequence)).toEqual(rest.map((_, i) => lastSeq + 3 + i))
    await b.close()
  })

  it("an unknown session: connected carries a new session, then SESSION_RESTORATION_FAILED", async () => {
    const client = await TestClient.open(`${gw.wsUrl}?session_id=00000000-0000-4000-8000-000000000000`)
    const connected = await client.nextMustBe("connected")
    expect(connected.sequence).toBe(1)
    expect(connected.session_id).not.toBe("00000000-0000-4000-8000-000000000000")
    const error = await client.nextMustBe("error")
    expect(error).toMatchObject({ code: "SESSION_RESTORATION_FAILED", sequence: 2 })
    expect(error.details.session_id).toBe("00000000-0000-4000-8000-000000000000")
    await client.close()
  })
})

describe("3. tokens", () => {
  it("an invalid token: INVALID_TOKEN, then close 4001 (no downgrade to anonymous)", async () => {
    const bad = await signToken({ sub: "mallory" }, { secret: "not-the-secret-at-all-0123456789" })
    const client = await TestClient.open(`${gw.wsUrl}?token=${bad}`)
    const error = await client.nextOfType("error")
    expect(error.code).toBe("INVALID_TOKEN")
    expect((await client.closed).code).toBe(4001)
  })

  it("a token that expires on a live connection: INVALID_TOKEN, then 4001", async () => {
    const token = await signToken({ sub: "user-exp" }, { expiresInS: 1 })
    const { client } = await connect(gw, `token=${token}`)
    const error = await client.nextOfType("error", 4000)
    expect(error).toMatchObject({ code: "INVALID_TOKEN", details: { reason: "expired" } })
    expect((await client.closed).code).toBe(4001)
  })

  it("refresh_token before expiry keeps the connection open", async () => {
    const token = await signToken({ sub: "user-ref" }, { expiresInS: 1 })
    const { client } = await connect(gw, `token=${token}`)
    client.send({ type: "refresh_token", token: await signToken({ sub: "user-ref" }, { expiresInS: 60 }) })
    const refreshed = await client.nextOfType("token_refreshed")
    expect(refreshed.user_id).toBe("user-ref")
    expect(refreshed.expires_at).toMatch(/Z$/)
    // Past the first token's expiry (1 s from its signing): the connection is still answered.
    const firstExpiry = Date.now() + 1000
    await waitFor(
      async () => {
        await client.settle()
        return Date.now() > firstExpiry + 500
      },
      5000,
      "the first token's expiry to pass",
      100,
    )
    client.send({ type: "ping", id: "still-here" })
    expect((await client.nextOfType("pong")).id).toBe("still-here")
    expect(client.messages.some((m) => m.type === "error")).toBe(false)
    await client.close()
  })
})

describe("4-5. sessions belong to their user; restoring a live session takes it over", () => {
  it("a session of user A cannot be restored by user B or anonymously", async () => {
    const tokenA = await signToken({ sub: "alice" })
    const a = await connect(gw, `token=${tokenA}`)
    await a.client.close()
    const tokenB = await signToken({ sub: "bob" })
    const b = await connect(gw, `token=${tokenB}&session_id=${a.connected.session_id}`)
    expect(b.connected.session_id).not.toBe(a.connected.session_id)
    expect(await b.client.nextOfType("error")).toMatchObject({
      code: "SESSION_RESTORATION_FAILED",
      details: { reason: "user_mismatch" },
    })
    const anon = await connect(gw, `session_id=${a.connected.session_id}`)
    expect((await anon.client.nextOfType("error")).code).toBe("SESSION_RESTORATION_FAILED")
    await Promise.all([b.client.close(), anon.client.close()])
  })

  it("restoring a session held by a live connection closes the older one with 4000 and continues its numbering", async () => {
    const token = await signToken({ sub: "carol" })
    const older = await connect(gw, `token=${token}`)
    older.client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await older.client.nextOfType("subscribed")
    await older.client.settle()
    const newer = await connect(gw, `token=${token}&session_id=${older.connected.session_id}`)
    expect((await older.client.closed).code).toBe(4000)
    const lastOld = Math.max(...older.client.messages.map((m) => m.sequence))
    expect(newer.connected.sequence).toBe(lastOld + 1)
    const reconnected = await newer.client.nextOfType("reconnected")
    expect(reconnected.restored_subscriptions).toEqual({ stock: ["005930"] })
    await newer.client.close()
  })

  it("a session is kept after disconnect and can be restored by the reconnect message", async () => {
    const a = await connect(gw)
    a.client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSPI"] })
    await a.client.nextOfType("subscribed")
    await a.client.close()
    const b = await connect(gw)
    b.client.send({ type: "reconnect", session_id: a.connected.session_id })
    const reconnected = await b.client.nextOfType("reconnected")
    expect(reconnected).toMatchObject({
      session_id: a.connected.session_id,
      restored_subscriptions: { market: ["KOSPI"] },
    })
    await b.client.close()
  })
})

describe("6. heartbeat", () => {
  it("answers ping frames and closes connections that stop answering", async () => {
    const healthy = await connect(gw)
    const silent = await connect(gw, "", { autoPong: false })
    const closed = await silent.client.closed
    expect(closed.code).toBe(1006)
    expect(healthy.client.ws.readyState).toBe(healthy.client.ws.OPEN)
    await healthy.client.close()
  })
})
