/**
 * Alerts in cluster mode (issue 4 item 4): created through any instance, fired exactly once
 * cluster-wide even when the crossing price enters on three instances at the same moment, and
 * delivered to the user's live connections on every instance and to their disconnected session.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  connect,
  type GatewayProcess,
  ingest,
  type Message,
  ofType,
  priceEvent,
  sleep,
  TestClient,
} from "../support/gateway.js"
import { alertCachesInSync, alertsApi, useCluster, waitFor } from "./support.js"

const cluster = useCluster({ instances: 3 })

const alertsIn = (msgs: ReadonlyArray<Message>, id: string) =>
  ofType(msgs, "alert").filter((m) => m.alert_id === id)

/**
 * What the tests wait for without a marker to wait on: an instance's alert cache (filled
 * through the sync channel) is not observable from outside, nor is a second firing that does not
 * happen. Bounded, and only ever before asserting that something did NOT happen or to let a
 * race be a real one.
 */
const SYNC_MS = 300

describe("exactly once with three instances", () => {
  it("fires once, reaches every live connection of the user on every instance, and the away session", async () => {
    const nodes = cluster.nodes
    const [a, b, c] = nodes as [GatewayProcess, GatewayProcess, GatewayProcess]
    const user = "cluster-trader"
    const api = await alertsApi(a, user)
    const live = await Promise.all(nodes.map((n) => connect(n, `token=${api.token}`)))
    const away = await connect(c, `token=${api.token}`)
    await away.client.close()

    const alert = await api.create({ code: "005930", alert_type: "price_above", threshold: 74000 })
    // Created through A, listed through C.
    expect((await (await alertsApi(c, user)).list()).map((x) => x.id)).toContain(alert.id)
    // Every instance's cache learns of it through the sync channel: the race below is then real.
    await alertCachesInSync(a, nodes)

    // The crossing price enters on all three instances at once: each evaluates the alert.
    const results = await Promise.all(
      [a, b, c].map((n, i) => ingest(n, [priceEvent("005930", 74100 + i * 100)])),
    )
    expect(results.map((r) => r.status)).toEqual([202, 202, 202])

    for (const { client } of live) await client.next((m) => m.type === "alert" && m.alert_id === alert.id)
    await sleep(SYNC_MS) // an absence: no second copy from another instance
    for (const { client } of live) expect(alertsIn(client.messages, alert.id)).toHaveLength(1)

    // Later crossings do not fire it again.
    expect((await ingest(b, [priceEvent("005930", 75000)])).status).toBe(202)
    await sleep(SYNC_MS) // an absence: no firing again
    for (const { client } of live) expect(alertsIn(client.messages, alert.id)).toHaveLength(1)

    const listed = (await (await alertsApi(b, user)).list()).find((x) => x.id === alert.id)
    expect(listed).toMatchObject({ status: "fired" })
    expect(listed?.fired_at).not.toBeNull()

    // The away session gets it exactly once on restore, on any instance.
    const back = await TestClient.open(
      `${b.wsUrl}?token=${api.token}&session_id=${away.connected.session_id}`,
    )
    const reconnected = await back.nextOfType("reconnected")
    const missed = await back.settle()
    expect(missed).toHaveLength(reconnected.missed_messages_count)
    expect(alertsIn(missed, alert.id)).toHaveLength(1)

    await Promise.all([...live.map(({ client }) => client.close()), back.close()])
  })

  it("an alert deleted through one instance no longer fires on any", async () => {
    const [a, b, c] = cluster.nodes as [GatewayProcess, GatewayProcess, GatewayProcess]
    const api = await alertsApi(a, "changed-mind")
    const { client } = await connect(c, `token=${api.token}`)
    const alert = await api.create({ code: "000660", alert_type: "price_below", threshold: 140000 })
    const remove = await fetch(`${b.httpUrl}/v1/alerts/${alert.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${api.token}` },
    })
    expect(remove.status).toBe(204)
    await waitFor(async () => (await api.list()).length === 0, 2000, "the alert to be gone")
    await alertCachesInSync(b, cluster.nodes) // every cache has dropped it
    expect((await ingest(c, [priceEvent("000660", 139000)])).status).toBe(202)
    await sleep(SYNC_MS) // an absence: no alert
    expect(ofType(client.messages, "alert")).toEqual([])
    await client.close()
  })
})
