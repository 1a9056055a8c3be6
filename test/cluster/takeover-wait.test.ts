/**
 * Taking over a session whose holder does not answer (SESSION_TAKEOVER_WAIT_MS): restoring a
 * session still held on another instance asks that instance to let go; when the instance is
 * alive but not answering (frozen here with SIGSTOP, as a long GC pause or an overloaded host
 * looks), the restore claims the session after the wait instead of hanging, counts it in
 * `quotecast_session_takeover_timeouts_total`, and the late holder's release cannot take the
 * session back.
 */
import { describe, expect, it } from "@effect/vitest"
import { parsePrometheusText } from "../metrics/prometheusText.js"
import {
  connect,
  type GatewayProcess,
  ingest,
  priceEvent,
  signToken,
  TestClient,
} from "../support/gateway.js"
import { useCluster, waitFor } from "./support.js"

const cluster = useCluster({ instances: 2, env: { SESSION_TAKEOVER_WAIT_MS: "500" } })

const counter = async (node: GatewayProcess, name: string): Promise<number> => {
  const families = parsePrometheusText(await (await fetch(`${node.httpUrl}/metrics`)).text())
  const [sample] = families.get(name)?.samples ?? []
  if (sample === undefined) throw new Error(`${name} is not exposed`)
  return sample.value
}
const takeoverTimeouts = (node: GatewayProcess) => counter(node, "quotecast_session_takeover_timeouts_total")

/** Subscribes a fresh user's connection on `node` to `code` and returns it with its session id. */
const holder = async (node: GatewayProcess, user: string, code: string) => {
  const token = await signToken({ sub: user })
  const first = await connect(node, `token=${token}`)
  first.client.send({ type: "subscribe", subscription_type: "stock", targets: [code] })
  await first.client.nextOfType("subscribed")
  await first.client.settle()
  return { token, client: first.client, sessionId: first.connected.session_id }
}

describe("restoring a session whose holder does not answer", () => {
  it("a holder that answers hands the session over without the wait", async () => {
    const [a, b] = cluster.nodes as [GatewayProcess, GatewayProcess]
    const before = await takeoverTimeouts(b)
    const held = await holder(a, "prompt-holder", "005930")
    const second = await TestClient.open(`${b.wsUrl}?token=${held.token}&session_id=${held.sessionId}`)
    expect((await held.client.closed).code).toBe(4000)
    expect(await second.nextOfType("reconnected")).toMatchObject({
      restored_subscriptions: { stock: ["005930"] },
    })
    expect(await takeoverTimeouts(b)).toBe(before)
    await second.close()
  })

  it("a frozen holder loses the session after the wait, and its late release does not take it back", async () => {
    const [a, b] = cluster.nodes as [GatewayProcess, GatewayProcess]
    const before = await takeoverTimeouts(b)
    const persisted = await counter(a, "quotecast_sessions_persisted_total")
    const held = await holder(a, "frozen-holder", "000660")
    // What a session holds reaches Redis on the persistence clock (SESSION_PERSIST_INTERVAL_MS):
    // freeze A only once its subscription is there, as the README's guarantee says.
    await waitFor(
      async () => (await counter(a, "quotecast_sessions_persisted_total")) > persisted,
      10_000,
      "A persists the session's subscription",
    )
    const pid = a.child.pid
    if (pid === undefined) throw new Error("instance A has no pid")
    process.kill(pid, "SIGSTOP")
    let second: TestClient | undefined
    try {
      second = await TestClient.open(`${b.wsUrl}?token=${held.token}&session_id=${held.sessionId}`)
      const reconnected = await second.nextOfType("reconnected", 10_000)
      expect(reconnected).toMatchObject({
        session_id: held.sessionId,
        restored_subscriptions: { stock: ["000660"] },
      })
      expect(await takeoverTimeouts(b)).toBe(before + 1)
      expect((await ingest(b, [priceEvent("000660", 150_100)])).status).toBe(202)
      await second.next((m) => m.type === "price_update" && m.price === 150_100)
    } finally {
      process.kill(pid, "SIGCONT")
    }
    // A wakes up, reads the takeover request that waited for it and closes its connection.
    expect((await held.client.closed).code).toBe(4000)
    // The session stayed with B: its feed keeps coming after A let go late.
    expect((await ingest(b, [priceEvent("000660", 150_200)])).status).toBe(202)
    await second.next((m) => m.type === "price_update" && m.price === 150_200)
    await second.close()
  })
})
