/**
 * Alerts are not lost when Redis stalls past the command timeout while they are marked fired
 * (issue 12 point 7): Redis runs the compare-and-set scripts after the client gave up on them,
 * so they are fired in Redis under that attempt's token. The gateway tries exactly those alerts
 * again with the same token until it learns the outcome, and delivers each alert once; a later
 * crossing does not fire them a second time. One alert whose marking fails does not take the
 * alerts marked with it down too.
 *
 * One gateway in cluster mode in this process (its stats readable), against a private
 * redis-server whose clients' writes the test pauses (CLIENT PAUSE ... WRITE holds scripts and
 * publishes, then runs them) for longer than the client's 2 s command timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import type { Alert } from "../../src/http/Api.js"
import { GatewayStats, type GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { ClusterLive } from "../../src/mode/ClusterLive.js"
import {
  connect,
  ingest,
  ofType,
  priceEvent,
  sleep,
  type TestClient,
  useGateway,
} from "../support/gateway.js"
import { alertsApi, type PrivateRedis, startPrivateRedis, uniquePrefix, waitFor } from "./support.js"

/** More than one firing chunk (25 alerts). */
const ALERTS = 30
/**
 * Longer than the command timeout (2 s) of the gateway's Redis connection, by more than a loaded
 * machine takes to answer the crossing's ingest and send the marking scripts: with 3.5 s, a CI
 * run beside other cluster tests sent them late enough that they were answered within the
 * timeout, and nothing was retried.
 */
const PAUSE_MS = 6000

let server: PrivateRedis
beforeAll(async () => {
  server = await startPrivateRedis()
})
afterAll(() => server?.kill())
const prefix = uniquePrefix()
/** One instance in cluster mode, in this process: its counters are read directly. */
const gw = useGateway(() => ({ redisUrl: Option.some(server.url), redisPrefix: prefix }), {
  mode: ClusterLive,
})
let stats: GatewayStatsImpl
beforeAll(async () => {
  stats = await gw.runtime.runPromise(GatewayStats)
})

const alertIds = (client: TestClient) => ofType(client.messages, "alert").map((m) => m.alert_id)

describe("Redis stalls past the command timeout while alerts are marked fired", () => {
  it("every crossed alert still reaches the user's connection, exactly once", async () => {
    const api = await alertsApi(gw, "stalled-trader")
    const { client } = await connect(gw, `token=${api.token}`)
    // One alert fired before the stall: Redis knows the marking script by then, as it does on any
    // instance that has fired an alert (a script unknown to Redis would fail after the pause, not run).
    const first = await api.create({ code: "005930", alert_type: "price_above", threshold: 60_000 })
    expect((await ingest(gw, [priceEvent("005930", 65_000)])).status).toBe(202)
    await client.next((m) => m.type === "alert" && m.alert_id === first.id, 10_000)

    const created = new Set<string>([first.id])
    for (let i = 0; i < ALERTS; i++) {
      const alert = await api.create({ code: "005930", alert_type: "price_above", threshold: 70_000 + i })
      created.add(alert.id)
    }

    const control = server.client()
    try {
      // Redis holds every write (the marking scripts, the publishes) for PAUSE_MS, then runs them.
      await control.call("CLIENT", "PAUSE", String(PAUSE_MS), "WRITE")
      // Crosses every alert while Redis is paused.
      expect((await ingest(gw, [priceEvent("005930", 71_000)])).status).toBe(202)
      // After the pause, a later crossing: it must neither fire them again nor be their only chance.
      // A write of our own is held until the pause ends: its answer says Redis writes again.
      await control.set(`${prefix}after-pause`, "1")
      expect((await ingest(gw, [priceEvent("005930", 72_000)])).status).toBe(202)

      await waitFor(
        () => new Set(alertIds(client)).size === created.size,
        15_000,
        `all ${ALERTS} alerts at the user's connection`,
      )
      // An absence: a while longer, no alert comes twice.
      await sleep(2000)
      const ids = alertIds(client)
      expect(ids).toHaveLength(created.size)
      expect(new Set(ids)).toEqual(created)
      // They were settled by retries under the first attempt's token.
      expect(stats.alertFireRetries).toBeGreaterThan(0)
      expect(stats.alertsFired).toBe(created.size)
      // And they are listed as fired.
      const listed = await api.list()
      expect(listed.map((a) => a.status)).toEqual(Array(created.size).fill("fired"))
    } finally {
      control.disconnect()
      await client.close()
    }
  }, 60_000)
})

describe("one alert's marking fails, the others of its chunk do not", () => {
  it("the alerts marked with it are delivered; it is retried, not given up", async () => {
    const api = await alertsApi(gw, "one-bad-trader")
    const { client } = await connect(gw, `token=${api.token}`)
    const alerts = []
    for (let i = 0; i < 3; i++)
      alerts.push(await api.create({ code: "005930", alert_type: "price_above", threshold: 73_000 + i }))
    const [bad, ...good] = alerts as [Alert, ...Array<Alert>]
    // Its key no longer holds a hash: its script fails (WRONGTYPE) every time it runs.
    const control = server.client()
    const retriesBefore = stats.alertFireRetries
    try {
      await control.set(`${prefix}alert:{${bad.id}}`, "not a hash")
      expect((await ingest(gw, [priceEvent("005930", 74_000)])).status).toBe(202)
      await waitFor(() => alertIds(client).length === good.length, 10_000, "the other alerts of the chunk")
      expect(new Set(alertIds(client))).toEqual(new Set(good.map((a) => a.id)))
      await waitFor(() => stats.alertFireRetries > retriesBefore, 5000, "the failed one to be retried")
    } finally {
      control.disconnect()
      await client.close()
    }
  }, 30_000)
})
