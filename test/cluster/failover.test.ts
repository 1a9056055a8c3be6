/**
 * Simulator leadership (issue 4 item 5): exactly one instance runs the simulator; after SIGKILL of
 * the leader another instance takes over within a few seconds, continuing from the shared market
 * state; a market status ingested on a follower reaches the leader's simulator and survives the
 * leadership change.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import {
  connect,
  type GatewayProcess,
  ingest,
  type Message,
  type MessageOf,
  ofType,
} from "../support/gateway.js"
import { kill, leaderOf, statsOf, useCluster, waitFor } from "./support.js"

const cluster = useCluster({
  instances: 2,
  env: { FEED: "simulator", FEED_RATE: "100", LEADER_LEASE_MS: "3000" },
})
beforeAll(() => waitFor(() => leaderOf(cluster.nodes) !== undefined, 10_000, "a feed leader"))

const kospiIndex = (m: Message): m is MessageOf<"price_update"> =>
  m.type === "price_update" && m.code === "KOSPI" && m.snapshot !== true

describe("simulator leadership", () => {
  it("exactly one instance simulates; after SIGKILL of the leader the other takes over within seconds", async () => {
    const leader = leaderOf(cluster.nodes) as GatewayProcess
    const follower = cluster.nodes.find((n) => n !== leader) as GatewayProcess
    const { client } = await connect(follower)
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSPI"] })
    await client.nextOfType("subscribed")
    // The follower's subscribers get the leader's ticks (the index moves about once a second).
    await client.next(kospiIndex, 5000)

    const [ls, fs] = await Promise.all([statsOf(leader), statsOf(follower)])
    expect(ls.events_published).toBeGreaterThan(0)
    expect(fs.events_published).toBe(0) // the follower neither simulates, aggregates nor announces

    const before = await client.next(kospiIndex, 5000)
    const killedAt = Date.now()
    await kill(leader)
    // Bounded, not a timing claim: lease 3 s + one renew interval (1 s), with room for a busy machine.
    await waitFor(() => leaderOf([follower]) !== undefined, 8000, "the follower to take the lead", 20)
    const tookLeadMs = Date.now() - killedAt
    const after = await client.next(kospiIndex, 8000)
    const firstTickMs = Date.now() - killedAt
    console.log(`failover: lead taken after ${tookLeadMs} ms, first index tick after ${firstTickMs} ms`)
    // The new leader continues from the shared state: no jump back to the previous close.
    expect(Math.abs(after.price - before.price) / before.price).toBeLessThan(0.01)
    expect((await statsOf(follower)).events_published).toBeGreaterThan(0)
    await client.close()
  }, 40_000)

  it("a status ingested on a non-leader stops the leader's simulator, and survives a change of leader", async () => {
    // Bring a second instance back, then ingest on whichever is not the leader.
    await cluster.add(1)
    const live = cluster.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null)
    const leader = leaderOf(live) as GatewayProcess
    const other = live.find((n) => n !== leader) as GatewayProcess
    const { client } = await connect(other)
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSDAQ"] })
    await client.nextOfType("subscribed")
    await client.next((m) => m.type === "price_update" && m.code === "KOSDAQ" && m.snapshot !== true, 5000)

    expect(
      (await ingest(other, [{ type: "market_status", market: "KOSDAQ", status: "halted" }])).status,
    ).toBe(202)
    await client.next((m) => m.type === "market_status" && m.status === "halted")
    // Leader's clock follows the remote status: no more KOSDAQ ticks, so no more index moves
    // (after those already in flight).
    await client.collectFor(300)
    const quiet = await client.collectFor(2000)
    expect(ofType(quiet, "price_update").filter((m) => m.code === "KOSDAQ")).toHaveLength(0)

    // The leader leaves cleanly: the other instance takes over at once and re-announces the
    // current status, which is still the halt.
    const leftAt = Date.now()
    await leader.stop()
    await waitFor(() => leaderOf([other]) !== undefined, 5000, "the other instance to lead", 20)
    console.log(`handover after a clean stop: ${Date.now() - leftAt} ms`)
    const announced = await client.next((m) => m.type === "market_status", 5000)
    expect(announced).toMatchObject({ market: "KOSDAQ", status: "halted" })
    // The new leader's simulator publishes the index level once as it starts (from the shared
    // state); after that, nothing ticks in the halted market.
    const kosdaq = (msgs: ReadonlyArray<Message>) =>
      ofType(msgs, "price_update").filter((m) => m.code === "KOSDAQ")
    expect(kosdaq(await client.collectFor(1000)).length).toBeLessThanOrEqual(1)
    expect(kosdaq(await client.collectFor(1500))).toHaveLength(0)

    expect((await ingest(other, [{ type: "market_status", market: "KOSDAQ", status: "open" }])).status).toBe(
      202,
    )
    await client.next((m) => m.type === "price_update" && m.code === "KOSDAQ" && m.snapshot !== true, 5000)
    await client.close()
  }, 150_000)
})
