/**
 * Instances joining and leaving (issue 4 items 5-7): clients on an instance stay connected and
 * keep receiving while others start, stop cleanly or die; a joining instance starts from the
 * cluster's state without re-announcing it to subscribers; the stats' cluster section follows.
 */
import { describe, expect, it } from "@effect/vitest"
import { connect, type GatewayProcess, ingest, type Message, priceEvent } from "../support/gateway.js"
import { kill, statsOf, useCluster, waitFor } from "./support.js"

const cluster = useCluster({ instances: 1 })

const instances = async (gw: GatewayProcess) => (await statsOf(gw)).cluster?.instances

describe("joining and leaving", () => {
  it("clients stay connected and keep receiving while instances join, leave and die", async () => {
    const a = cluster.nodes[0] as GatewayProcess
    const { client } = await connect(a)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    client.send({ type: "subscribe", subscription_type: "market", targets: ["KOSPI"] })
    await client.next((m) => m.type === "subscribed" && m.subscription_type === "market")
    expect((await ingest(a, [priceEvent("005930", 73700)])).status).toBe(202)
    await client.next((m) => m.type === "price_update" && m.price === 73700)
    const mark = client.messages.length

    // Two instances join.
    const [b, c] = (await cluster.add(2)) as [GatewayProcess, GatewayProcess]
    await waitFor(async () => (await instances(a)) === 3, 6000, "three members")

    // The newcomers know the current state: a subscriber on C gets A's price as its snapshot.
    const onC = await connect(c)
    onC.client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await onC.client.nextOfType("subscribed")
    expect(await onC.client.next((m) => m.type === "price_update")).toMatchObject({
      price: 73700,
      snapshot: true,
    })
    await onC.client.close()

    // Events entering on the newcomers reach A's client.
    expect((await ingest(b, [priceEvent("005930", 73800)])).status).toBe(202)
    await client.next((m) => m.type === "price_update" && m.price === 73800)
    expect((await ingest(c, [priceEvent("005930", 73900)])).status).toBe(202)
    await client.next((m) => m.type === "price_update" && m.price === 73900)

    // Joining did not re-announce anything: no market status or sector update went out.
    const sinceJoin: ReadonlyArray<Message> = client.messages.slice(mark)
    expect(sinceJoin.filter((m) => m.type === "market_status")).toHaveLength(0)

    // C leaves cleanly: gone from the member list at once. B dies: gone after its heartbeats stop.
    await c.stop()
    await waitFor(async () => (await instances(a)) === 2, 2000, "C to leave the member list")
    const killedAt = Date.now()
    await kill(b)
    await waitFor(async () => (await instances(a)) === 1, 10_000, "B to drop out", 200)
    console.log(`dead instance left the cluster section after ${Date.now() - killedAt} ms`)

    // Through all of it A's client stayed connected and still receives.
    expect(client.ws.readyState).toBe(client.ws.OPEN)
    expect((await ingest(a, [priceEvent("005930", 74000)])).status).toBe(202)
    await client.next((m) => m.type === "price_update" && m.price === 74000)
    const seqs = client.messages.map((m) => m.sequence)
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i))
    await client.close()
  }, 150_000)
})
