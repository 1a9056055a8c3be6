/**
 * Alerts in cluster mode (issue 4 item 4): created through any instance, fired exactly once
 * cluster-wide even when the crossing price enters on three instances at the same moment, and
 * delivered to the user's live connections on every instance and to their disconnected session.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect, type GatewayProcess, ingest, type Msg, priceEvent, TestClient } from "../support/gateway.js"
import {
  alertsApi,
  cleanPrefix,
  SHARED_REDIS_URL,
  startInstances,
  stopAll,
  uniquePrefix,
  waitFor,
} from "./support.js"

const prefix = uniquePrefix()
let nodes: Array<GatewayProcess> = []

beforeAll(async () => {
  nodes = await startInstances(3, { REDIS_URL: SHARED_REDIS_URL, REDIS_PREFIX: prefix })
}, 120_000)

afterAll(async () => {
  await stopAll(nodes)
  await cleanPrefix(SHARED_REDIS_URL, prefix)
}, 30_000)

const alertsIn = (msgs: ReadonlyArray<Msg>, id: string) =>
  msgs.filter((m) => m.type === "alert" && m.alert_id === id)

describe("exactly once with three instances", () => {
  it("fires once, reaches every live connection of the user on every instance, and the away session", async () => {
    const [a, b, c] = nodes as [GatewayProcess, GatewayProcess, GatewayProcess]
    const user = "cluster-trader"
    const api = await alertsApi(a, user)
    const live = await Promise.all(nodes.map((n) => connect(n, `token=${api.token}`)))
    const away = await connect(c, `token=${api.token}`)
    await away.client.close()

    const alert = await api.create({ code: "005930", alert_type: "price_above", threshold: 74000 })
    // Created through A, listed through C.
    expect((await (await alertsApi(c, user)).list()).map((x) => x.id)).toContain(alert.id)
    // Every instance's cache learns of it through the sync channel.
    await new Promise((r) => setTimeout(r, 300))

    // The crossing price enters on all three instances at once: each evaluates the alert.
    const results = await Promise.all(
      [a, b, c].map((n, i) => ingest(n, [priceEvent("005930", 74100 + i * 100)])),
    )
    expect(results.map((r) => r.status)).toEqual([202, 202, 202])

    for (const { client } of live) await client.next((m) => m.type === "alert" && m.alert_id === alert.id)
    await Promise.all(live.map(({ client }) => client.drain(400)))
    for (const { client } of live) expect(alertsIn(client.messages, alert.id)).toHaveLength(1)

    // Later crossings do not fire it again.
    expect((await ingest(b, [priceEvent("005930", 75000)])).status).toBe(202)
    await Promise.all(live.map(({ client }) => client.drain(300)))
    for (const { client } of live) expect(alertsIn(client.messages, alert.id)).toHaveLength(1)

    const listed = (await (await alertsApi(b, user)).list()).find((x) => x.id === alert.id)
    expect(listed).toMatchObject({ status: "fired" })
    expect(listed?.fired_at).not.toBeNull()

    // The away session gets it exactly once on restore, on any instance.
    const back = await TestClient.open(
      `${b.wsUrl}?token=${api.token}&session_id=${away.connected.session_id}`,
    )
    const reconnected = await back.nextOfType("reconnected")
    const missed = await back.drain(200)
    expect(missed).toHaveLength(reconnected.missed_messages_count)
    expect(alertsIn(missed, alert.id)).toHaveLength(1)

    await Promise.all([...live.map(({ client }) => client.close()), back.close()])
  })

  it("an alert deleted through one instance no longer fires on any", async () => {
    const [a, b, c] = nodes as [GatewayProcess, GatewayProcess, GatewayProcess]
    const api = await alertsApi(a, "changed-mind")
    const { client } = await connect(c, `token=${api.token}`)
    const alert = await api.create({ code: "000660", alert_type: "price_below", threshold: 140000 })
    const remove = await fetch(`${b.httpUrl}/v1/alerts/${alert.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${api.token}` },
    })
    expect(remove.status).toBe(204)
    await waitFor(async () => (await api.list()).length === 0, 2000, "the alert to be gone")
    await new Promise((r) => setTimeout(r, 200))
    expect((await ingest(c, [priceEvent("000660", 139000)])).status).toBe(202)
    const seen = await client.drain(400)
    expect(seen.filter((m) => m.type === "alert")).toHaveLength(0)
    await client.close()
  })
})
