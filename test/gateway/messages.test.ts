/**
 * docs/protocol.md "Client to server" (every row, every error code) and "Server -> client"
 * (envelopes, sequence, snapshots), against a real gateway over real sockets.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import {
  connect,
  ingest,
  type Message,
  ofType,
  priceEvent,
  signToken,
  startGateway,
  TestClient,
  useGateway,
} from "../support/gateway.js"

const gw = useGateway({ maxSubscriptions: 5, rateLimit: 20, maxPayloadBytes: 4096 })
beforeAll(async () => {
  expect((await ingest(gw, [priceEvent("005930", 73000), priceEvent("000660", 145000)])).status).toBe(202)
})

const sequencesOf = (c: TestClient) => c.messages.map((m) => m.sequence)

describe("subscribe", () => {
  it("answers subscribed with the accepted targets, then a snapshot of each", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    const subscribed = await client.nextOfType("subscribed")
    expect(subscribed).toMatchObject({ subscription_type: "stock", targets: ["005930", "000660"] })
    const snaps = await client.settle()
    const prices = ofType(snaps, "price_update")
    expect(prices.map((m) => [m.code, m.price, m.snapshot])).toEqual([
      ["005930", 73000, true],
      ["000660", 145000, true],
    ])
    expect(prices[0]).toMatchObject({ name: "Samsung Electronics", change: 0, change_percent: 0 })
    await client.close()
  })

  it("then streams live updates of those targets only", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await client.nextOfType("subscribed")
    await client.settle()
    await ingest(gw, [priceEvent("000660", 145500), priceEvent("005930", 73100)])
    const update = await client.nextOfType("price_update")
    expect(update).toMatchObject({ code: "005930", price: 73100, change: 100 })
    expect(update.snapshot).toBeUndefined()
    // The ingest was fanned out before its answer: anything of it for this client comes before the pong.
    await client.settle()
    expect(ofType(client.messages, "price_update").some((m) => m.code === "000660")).toBe(false)
    await client.close()
  })

  it("rejects unknown targets with SUBSCRIPTION_FAILED and details.rejected, accepting the rest", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "999999", "ABC"] })
    const subscribed = await client.nextOfType("subscribed")
    expect(subscribed.targets).toEqual(["005930"])
    const error = await client.nextOfType("error")
    expect(error.code).toBe("SUBSCRIPTION_FAILED")
    expect(error.details.rejected).toEqual([
      { target: "999999", reason: "unknown_target" },
      { target: "ABC", reason: "unknown_target" },
    ])
    expect(error.sequence).toBeGreaterThan(subscribed.sequence)
    await client.close()
  })

  it("validates markets and sectors against the universe", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSPI", "NASDAQ"] })
    expect((await client.nextOfType("subscribed")).targets).toEqual(["KOSPI"])
    expect((await client.nextOfType("error")).details.rejected).toEqual([
      { target: "NASDAQ", reason: "unknown_target" },
    ])
    client.send({ type: "subscribe", subscription_type: "sector", targets: ["IT", "FINANCE", "CRYPTO"] })
    expect((await client.nextOfType("subscribed")).targets).toEqual(["IT", "FINANCE"])
    expect((await client.nextOfType("error")).details.rejected).toEqual([
      { target: "CRYPTO", reason: "unknown_target" },
    ])
    await client.close()
  })

  it("enforces MAX_SUBSCRIPTIONS over all types together", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSPI", "KOSDAQ"] })
    await client.nextOfType("subscribed")
    client.send({
      type: "subscribe",
      subscription_type: "stock",
      targets: ["005930", "000660", "035420", "035720", "066570"],
    })
    expect((await client.nextOfType("subscribed")).targets).toEqual(["005930", "000660", "035420"])
    const error = await client.nextOfType("error")
    expect(error.code).toBe("SUBSCRIPTION_FAILED")
    expect(error.details.rejected).toEqual([
      { target: "035720", reason: "max_subscriptions" },
      { target: "066570", reason: "max_subscriptions" },
    ])
    expect(error.details.max_subscriptions).toBe(5)
    await client.close()
  })
})

describe("unsubscribe", () => {
  it("answers unsubscribed with the targets removed, and the updates stop", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    await client.nextOfType("subscribed")
    client.send({ type: "unsubscribe", subscription_type: "stock", targets: ["005930", "035420"] })
    expect(await client.nextOfType("unsubscribed")).toMatchObject({
      subscription_type: "stock",
      targets: ["005930"],
    })
    await client.settle()
    await ingest(gw, [priceEvent("005930", 73200), priceEvent("000660", 145100)])
    const update = await client.nextOfType("price_update")
    expect(update.code).toBe("000660")
    await client.settle()
    expect(ofType(client.messages, "price_update").filter((m) => m.code === "005930" && !m.snapshot)).toEqual(
      [],
    )
    await client.close()
  })
})

describe("ping", () => {
  it("answers pong echoing id, or without id when none was given", async () => {
    const { client } = await connect(gw)
    client.send({ type: "ping", id: 42 })
    expect(await client.nextOfType("pong")).toMatchObject({ id: 42 })
    client.send({ type: "ping" })
    const pong = await client.nextOfType("pong")
    expect("id" in pong).toBe(false)
    await client.close()
  })
})

describe("refresh_token", () => {
  it("answers token_refreshed for the same sub, TOKEN_REFRESH_ERROR otherwise, keeping the identity", async () => {
    const { client } = await connect(gw, `token=${await signToken({ sub: "dave" })}`)
    client.send({ type: "refresh_token", token: await signToken({ sub: "dave" }, { expiresInS: 600 }) })
    expect(await client.nextOfType("token_refreshed")).toMatchObject({ user_id: "dave" })
    client.send({ type: "refresh_token", token: await signToken({ sub: "eve" }) })
    expect(await client.nextOfType("error")).toMatchObject({
      code: "TOKEN_REFRESH_ERROR",
      details: { reason: "different_user" },
    })
    client.send({ type: "refresh_token", token: "not-a-jwt" })
    expect((await client.nextOfType("error")).code).toBe("TOKEN_REFRESH_ERROR")
    client.send({ type: "ping", id: 1 })
    await client.nextOfType("pong")
    await client.close()
  })
})

describe("bad input never closes the connection", () => {
  const cases: Array<[string, string | Buffer, Record<string, unknown>]> = [
    ["malformed JSON", "{oops", { reason: "malformed_json" }],
    ["a binary frame", Buffer.from([1, 2, 3]), { reason: "binary_frame" }],
    ["a non-object", "[1,2,3]", { reason: "not_an_object", received: "array" }],
    ["an unknown type", '{"type":"hello"}', { reason: "unknown_type", type: "hello" }],
    [
      "a field of the wrong shape",
      '{"type":"subscribe","subscription_type":"stock","targets":"005930"}',
      { reason: "invalid_fields" },
    ],
  ]
  for (const [what, frame, details] of cases) {
    it(`${what}: INVALID_MESSAGE with details, then the connection still works`, async () => {
      const { client } = await connect(gw)
      client.sendRaw(frame)
      const error = await client.nextOfType("error")
      expect(error.code).toBe("INVALID_MESSAGE")
      expect(error.details).toMatchObject(details)
      expect(typeof error.message).toBe("string")
      client.send({ type: "ping", id: "after" })
      expect((await client.nextOfType("pong")).id).toBe("after")
      await client.close()
    })
  }

  it("a frame over MAX_PAYLOAD_BYTES closes with 1009", async () => {
    const { client } = await connect(gw)
    client.send({ type: "ping", id: "x".repeat(5000) })
    expect((await client.closed).code).toBe(1009)
  })
})

/**
 * Waits until the gateway has read everything sent before: marker pings, 250 ms apart, until one
 * is answered (a marker may itself be refused while the budget refills). Frames are read in order.
 */
const settleUnderLimit = async (client: TestClient) => {
  const isMarker = (m: Message) => m.type === "pong" && typeof m.id === "string" && m.id.startsWith("marker-")
  for (let i = 0; i < 20; i++) {
    client.send({ type: "ping", id: `marker-${i}` })
    if (
      await client.next(isMarker, 250).then(
        () => true,
        () => false,
      )
    )
      return
  }
  throw new Error("no marker ping answered in 5 s")
}
const numberedPongs = (client: TestClient) =>
  ofType(client.messages, "pong").filter((m) => typeof m.id === "number")

describe("rate limit", () => {
  it("does not process the excess and reports RATE_LIMIT_EXCEEDED at most once a second", async () => {
    const { client } = await connect(gw)
    for (let i = 0; i < 30; i++) client.send({ type: "ping", id: i })
    await client.nextOfType("error")
    await settleUnderLimit(client)
    const pongs = numberedPongs(client)
    const errors = ofType(client.messages, "error")
    expect(pongs.length).toBeGreaterThanOrEqual(20)
    expect(pongs.length).toBeLessThan(30)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({
      code: "RATE_LIMIT_EXCEEDED",
      message: "Rate limit exceeded (20 messages/second)",
      details: { rate_limit: 20 },
    })
    await client.close()
  })

  it("a rate_limit claim in the token sets the connection's limit", async () => {
    const { client } = await connect(gw, `token=${await signToken({ sub: "pro", rate_limit: 50 })}`)
    for (let i = 0; i < 45; i++) client.send({ type: "ping", id: i })
    await client.next((m) => m.type === "pong" && m.id === 44)
    expect(numberedPongs(client).map((m) => m.id)).toEqual(Array.from({ length: 45 }, (_, i) => i))
    expect(client.messages.some((m) => m.type === "error")).toBe(false)
    await client.close()
  })

  it("sustained abuse closes with 1008", async () => {
    const { client } = await connect(gw)
    for (let i = 0; i < 400; i++) client.send({ type: "ping" })
    expect((await client.closed).code).toBe(1008)
  })
})

describe("sequence and order", () => {
  it("numbers every message of the session 1, 2, 3, ... across singles and batches", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    for (let i = 0; i < 10; i++) {
      await ingest(gw, [
        priceEvent("005930", 73000 + 100 * (i % 3)),
        priceEvent("000660", 145000 + 500 * (i % 2)),
      ])
      client.send({ type: "ping", id: i })
    }
    await client.settle()
    const seqs = sequencesOf(client)
    expect(seqs).toEqual(seqs.map((_, i) => i + 1))
    const batches = client.frames.filter((f) => f.type === "batch")
    expect(batches.length).toBeGreaterThan(0)
    for (const frame of batches) {
      expect(frame.batch_size).toBe(frame.messages.length)
      expect(frame.batch_size).toBeGreaterThanOrEqual(2)
      expect(frame.sequence).toBe(frame.messages.at(-1)?.sequence)
    }
    await client.close()
  })

  it("every message carries type, an ISO timestamp with milliseconds and a sequence", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    client.send({ type: "ping" })
    await client.settle()
    // The Schemas the client decodes with check these too; this says so in the test's own words.
    for (const m of client.messages) {
      expect(typeof m.type).toBe("string")
      expect(m.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
      expect(Number.isInteger(m.sequence)).toBe(true)
    }
    await client.close()
  })
})

describe("origin check", () => {
  it("a browser upgrade from an origin outside ALLOWED_ORIGINS gets HTTP 403", async () => {
    const strict = await startGateway({ allowedOrigins: Option.some(["https://app.example"]) })
    await expect(TestClient.open(strict.wsUrl, { origin: "https://evil.example" })).rejects.toThrow(
      "HTTP 403",
    )
    const ok = await TestClient.open(strict.wsUrl, { origin: "https://app.example" })
    expect((await ok.next()).type).toBe("connected")
    await ok.close()
    await strict.stop()
  })
})

describe("compression", () => {
  it("negotiates permessage-deflate when the client offers it and the stream decodes", async () => {
    const client = await TestClient.open(gw.wsUrl, { perMessageDeflate: true })
    expect(client.ws.extensions).toContain("permessage-deflate")
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] })
    expect((await client.nextOfType("subscribed")).targets).toHaveLength(2)
    await client.close()
  })
})
