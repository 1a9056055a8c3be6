/**
 * Per-user bounds (issue 12 point 3), single instance, over real HTTP and real sockets:
 * - a user holds at most MAX_ALERTS_PER_USER alerts (active or fired): one more gets 429 with a
 *   JSON reason, other users are not affected, deleting makes room;
 * - a user keeps at most MAX_SESSIONS_PER_USER saved sessions: the oldest saved goes first;
 * - anonymous sessions are saved like any other (docs/protocol.md "Sessions"), at most
 *   MAX_ANONYMOUS_SESSIONS_PER_ADDRESS per client address and MAX_ANONYMOUS_SESSIONS of all
 *   addresses together (oldest first);
 * - a crossing that fires every alert of a user reaches every live connection of the user and
 *   every saved session, each alert exactly once, and nobody else.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { Alert } from "../../src/http/Api.js"
import {
  connect,
  ingest,
  type Message,
  type MessageOf,
  ofType,
  priceEvent,
  type RunningGateway,
  readJson,
  signToken,
  statsOf,
  TestClient,
  useGateway,
  waitFor,
} from "../support/gateway.js"

const MAX_ALERTS = 5
const MAX_SESSIONS = 3
const MAX_ANONYMOUS = 2

const gw = useGateway({
  maxAlertsPerUser: MAX_ALERTS,
  maxSessionsPerUser: MAX_SESSIONS,
  maxAnonymousSessionsPerAddress: MAX_ANONYMOUS,
})
beforeAll(async () => {
  expect((await ingest(gw, [priceEvent("005930", 73000), priceEvent("000660", 145000)])).status).toBe(202)
})

const alertsOf = async (user: string) => {
  const token = await signToken({ sub: user })
  const auth = { authorization: `Bearer ${token}` }
  return {
    token,
    create: (threshold: number, code = "005930") =>
      fetch(`${gw.httpUrl}/v1/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify({ code, alert_type: "price_above", threshold }),
      }),
    list: async () =>
      readJson(await fetch(`${gw.httpUrl}/v1/alerts`, { headers: auth }), Schema.Array(Alert)),
    remove: (id: string) => fetch(`${gw.httpUrl}/v1/alerts/${id}`, { method: "DELETE", headers: auth }),
  }
}

const metricOf = async (on: RunningGateway, name: string): Promise<number> => {
  const text = await (await fetch(`${on.httpUrl}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name} `))
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1))
}
const metric = (name: string) => metricOf(gw, name)

/** Embedded mode counts saved sessions in memory: the count is always known. */
const savedSessions = async (): Promise<number> => {
  const saved = (await statsOf(gw)).saved_sessions
  if (saved === null) throw new Error("saved_sessions unknown in embedded mode")
  return saved
}

/** Opens a session (optionally subscribed), closes it, and waits until the server has settled it. */
const leaveSession = async (query: string, subscribe: boolean): Promise<string> => {
  const evictedBefore = await evictions()
  const savedBefore = await savedSessions()
  const { client, connected } = await connect(gw, query)
  if (subscribe) {
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await client.nextOfType("subscribed")
  }
  await client.close()
  // Settled: saved (one more), or dropped / another one evicted (an eviction counted).
  await waitFor(
    async () => (await savedSessions()) > savedBefore || (await evictions()) > evictedBefore,
    5000,
    "the closed session to be saved or dropped",
  )
  return connected.session_id
}

const evictions = async () => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  return text
    .split("\n")
    .filter((l) => l.startsWith("quotecast_sessions_evicted_total{"))
    .reduce((n, l) => n + Number(l.split(" ")[1]), 0)
}

/** Restores a session: `reconnected`, or the SESSION_RESTORATION_FAILED error. */
const restore = async (query: string) => {
  const client = await TestClient.open(`${gw.wsUrl}?${query}`)
  await client.nextOfType("connected")
  const answer = await client.next(
    (m): m is MessageOf<"reconnected" | "error"> => m.type === "reconnected" || m.type === "error",
  )
  return { client, answer }
}

describe("alerts per user (MAX_ALERTS_PER_USER)", () => {
  it("one alert over the limit gets 429 with a JSON reason; other users are not affected; deleting makes room", async () => {
    const ann = await alertsOf("limit-ann")
    const created: Array<Alert> = []
    for (let i = 0; i < MAX_ALERTS; i++) {
      const res = await ann.create(80000 + i * 100)
      expect(res.status).toBe(201)
      created.push(await readJson(res, Alert))
    }
    const rejectedBefore = await metric("quotecast_alert_limit_rejections_total")
    const over = await ann.create(90000)
    expect(over.status).toBe(429)
    expect(over.headers.get("content-type")).toContain("application/json")
    expect(await over.json()).toMatchObject({
      _tag: "TooManyAlerts",
      limit: MAX_ALERTS,
      message: expect.stringContaining(`at most ${MAX_ALERTS} alerts per user`),
    })
    expect(await metric("quotecast_alert_limit_rejections_total")).toBe(rejectedBefore + 1)
    expect(await ann.list()).toHaveLength(MAX_ALERTS)

    // The limit is per user.
    const ben = await alertsOf("limit-ben")
    expect((await ben.create(80000)).status).toBe(201)

    // Deleting one makes room for exactly one.
    expect((await ann.remove(created[0]?.id ?? "")).status).toBe(204)
    expect((await ann.create(91000)).status).toBe(201)
    expect((await ann.create(92000)).status).toBe(429)
  })

  it("fired alerts count until deleted (they stay listed)", async () => {
    const cho = await alertsOf("limit-cho")
    const ids: Array<string> = []
    for (let i = 0; i < MAX_ALERTS; i++) {
      const res = await cho.create(146000 + i * 100, "000660")
      expect(res.status).toBe(201)
      ids.push((await readJson(res, Alert)).id)
    }
    expect((await ingest(gw, [priceEvent("000660", 150000)])).status).toBe(202)
    await waitFor(
      async () => (await cho.list()).every((a) => a.status === "fired"),
      5000,
      "every alert of the user to be fired",
    )
    expect((await cho.create(160000, "000660")).status).toBe(429)
    expect((await cho.remove(ids[0] ?? "")).status).toBe(204)
    expect((await cho.create(160000, "000660")).status).toBe(201)
    expect((await ingest(gw, [priceEvent("000660", 145000)])).status).toBe(202)
  })
})

describe("saved sessions per user (MAX_SESSIONS_PER_USER)", () => {
  it("keeps the newest saved sessions of a user; the oldest saved ones are released first", async () => {
    const token = await signToken({ sub: "roaming-dan" })
    const before = await metric('quotecast_sessions_evicted_total{reason="user_limit"}')
    const ids: Array<string> = []
    for (let i = 0; i < MAX_SESSIONS + 2; i++) ids.push(await leaveSession(`token=${token}`, true))
    expect(await metric('quotecast_sessions_evicted_total{reason="user_limit"}')).toBe(before + 2)

    // Every attempt stays open to the end: closing one would save (and count) another session.
    const open: Array<TestClient> = []
    for (const [i, id] of ids.entries()) {
      const { client, answer } = await restore(`token=${token}&session_id=${id}`)
      open.push(client)
      if (i < 2) expect(answer).toMatchObject({ type: "error", code: "SESSION_RESTORATION_FAILED" })
      else expect(answer).toMatchObject({ type: "reconnected", session_id: id })
    }
    await Promise.all(open.map((c) => c.close()))
  })
})

describe("anonymous saved sessions", () => {
  it("at most MAX_ANONYMOUS_SESSIONS_PER_ADDRESS per client address, oldest released first; with subscriptions they restore", async () => {
    const before = await metric('quotecast_sessions_evicted_total{reason="address_limit"}')
    const ids: Array<string> = []
    for (let i = 0; i < MAX_ANONYMOUS + 1; i++) ids.push(await leaveSession("", true))
    expect(await metric('quotecast_sessions_evicted_total{reason="address_limit"}')).toBe(before + 1)
    const open: Array<TestClient> = []
    for (const [i, id] of ids.entries()) {
      const { client, answer } = await restore(`session_id=${id}`)
      open.push(client)
      if (i === 0) expect(answer).toMatchObject({ type: "error", code: "SESSION_RESTORATION_FAILED" })
      else
        expect(answer).toMatchObject({
          type: "reconnected",
          session_id: id,
          restored_subscriptions: { stock: ["005930"] },
        })
    }
    await Promise.all(open.map((c) => c.close()))
  })
})

describe("a crossing that fires every alert of a user", () => {
  it("reaches every live connection and every saved session of the user exactly once, and nobody else", async () => {
    const eve = await alertsOf("storm-eve")
    const ids = new Set<string>()
    for (let i = 0; i < MAX_ALERTS; i++) {
      const res = await eve.create(74000 + i * 100)
      expect(res.status).toBe(201)
      ids.add((await readJson(res, Alert)).id)
    }
    const saved: Array<string> = []
    for (let i = 0; i < MAX_SESSIONS; i++) saved.push(await leaveSession(`token=${eve.token}`, true))
    const live = await Promise.all([connect(gw, `token=${eve.token}`), connect(gw, `token=${eve.token}`)])
    const bystanderToken = await signToken({ sub: "bystander" })
    const bystander = await connect(gw, `token=${bystanderToken}`)
    const bystanderSaved = await leaveSession(`token=${bystanderToken}`, true)
    const firedBefore = await metric("quotecast_alerts_fired_total")
    expect(firedBefore).toBeGreaterThanOrEqual(0)

    expect((await ingest(gw, [priceEvent("005930", 76000), priceEvent("005930", 76500)])).status).toBe(202)

    const alertIds = (msgs: ReadonlyArray<Message>) => ofType(msgs, "alert").map((m) => m.alert_id)
    // One firing delivers all of them: to the user's topic, then into the saved sessions.
    for (const { client } of live) {
      await waitFor(() => alertIds(client.messages).length >= MAX_ALERTS, 5000, "every alert live")
      await client.settle()
      expect(alertIds(client.messages).sort()).toEqual([...ids].sort())
    }
    expect(await metric("quotecast_alerts_fired_total")).toBe(firedBefore + MAX_ALERTS)
    for (const id of saved) {
      const { client, answer } = await restore(`token=${eve.token}&session_id=${id}`)
      expect(answer.type).toBe("reconnected")
      const missed = await client.settle()
      expect(missed).toHaveLength(answer.type === "reconnected" ? answer.missed_messages_count : -1)
      expect(alertIds(missed).sort()).toEqual([...ids].sort())
      await client.close()
    }
    expect(alertIds(await bystander.client.settle())).toEqual([])
    const other = await restore(`token=${bystanderToken}&session_id=${bystanderSaved}`)
    expect(alertIds(await other.client.settle())).toEqual([])
    await Promise.all([
      ...live.map(({ client }) => client.close()),
      bystander.client.close(),
      other.client.close(),
    ])
  })
})

describe("anonymous saved sessions of all addresses (MAX_ANONYMOUS_SESSIONS)", () => {
  const TOTAL = 3
  // Clients behind a trusted proxy, each from its own address: the per-address bound alone would keep them all.
  const many = useGateway({
    maxAnonymousSessionsPerAddress: 10,
    maxAnonymousSessions: TOTAL,
    trustedProxies: "127.0.0.1",
  })

  const from = (address: string) => ({ headers: { "x-forwarded-for": address } })

  it("an anonymous session without subscriptions is saved and restored, as any session", async () => {
    const { client, connected } = await connect(many, "", from("203.0.113.7"))
    await client.close()
    const id = connected.session_id
    await waitFor(
      async () => (await statsOf(many)).saved_sessions === 1,
      5000,
      "the closed session to be saved",
    )
    const again = await TestClient.open(`${many.wsUrl}?session_id=${id}`, from("203.0.113.7"))
    await again.nextOfType("connected")
    expect(await again.next((m) => m.type === "reconnected" || m.type === "error")).toMatchObject({
      type: "reconnected",
      session_id: id,
    })
    await again.close()
  })

  it("are at most MAX_ANONYMOUS_SESSIONS, the oldest saved dropped first", async () => {
    const stats = () => statsOf(many)
    const leave = async (address: string) => {
      const { client, connected } = await connect(many, "", from(address))
      await client.close()
      return connected.session_id
    }
    const evicted = () => metricOf(many, 'quotecast_sessions_evicted_total{reason="anonymous_limit"}')
    // Older sessions, all from one address (within its own bound of 10) ...
    const older: Array<string> = []
    for (let i = 0; i < TOTAL; i++) older.push(await leave("192.0.2.200"))
    await waitFor(async () => (await stats()).saved_sessions === TOTAL, 5000, "the older sessions saved")
    const before = await evicted()
    // ... then as many from as many other addresses: together they overflow the bound of all addresses.
    const newer: Array<string> = []
    for (let i = 0; i < TOTAL; i++) newer.push(await leave(`198.51.100.${i + 1}`))
    await waitFor(
      async () =>
        (await metricOf(many, 'quotecast_sessions_evicted_total{reason="anonymous_limit"}')) >=
        before + TOTAL,
      5000,
      "the older sessions evicted",
    )
    expect((await stats()).saved_sessions).toBe(TOTAL)
    const open: Array<TestClient> = []
    const restoreFrom = async (id: string, address: string) => {
      const client = await TestClient.open(`${many.wsUrl}?session_id=${id}`, from(address))
      open.push(client)
      await client.nextOfType("connected")
      return client.next((m) => m.type === "reconnected" || m.type === "error")
    }
    for (const id of older)
      expect(await restoreFrom(id, "192.0.2.200")).toMatchObject({ code: "SESSION_RESTORATION_FAILED" })
    for (const [i, id] of newer.entries())
      expect(await restoreFrom(id, `198.51.100.${i + 1}`)).toMatchObject({
        type: "reconnected",
        session_id: id,
      })
    await Promise.all(open.map((c) => c.close()))
  })
})
