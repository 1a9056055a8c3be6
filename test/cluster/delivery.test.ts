/**
 * Cluster mode (docs/protocol.md "Cluster", issue 4 items 1, 3, 7, 8): instances in separate
 * processes sharing one Redis under a test-only prefix. An event ingested on any instance reaches
 * subscribers on every instance exactly once; Redis channels follow local subscribers; snapshots
 * come from Redis; stats has a cluster section; nothing leaks outside REDIS_PREFIX.
 */
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Redis } from "ioredis"
import type { SubscriptionType } from "../../src/protocol/client.js"
import {
  connect,
  connectionsOf,
  type GatewayProcess,
  ingest,
  type Message,
  ofType,
  priceEvent,
  signToken,
  sleep,
  TestClient,
} from "../support/gateway.js"
import {
  healthOf,
  instanceIdOf,
  keysUnder,
  SHARED_REDIS_URL,
  statsOf,
  useClusters,
  waitFor,
} from "./support.js"

/** Two instances, and one of another deployment (another prefix) on the same Redis. */
const clusters = useClusters({ main: { instances: 2 }, other: { instances: 1 } })
const prefix = clusters.main.prefix
const node = (i: number) => clusters.main.nodes[i] as GatewayProcess
let redis: Redis
beforeAll(() => {
  redis = new Redis(SHARED_REDIS_URL)
})
afterAll(() => redis.disconnect())

/**
 * How long an absence is watched for: a copy that should not come from another instance (or
 * deployment) has no marker that would have to come after it. Bounded; only before asserting
 * that something did NOT arrive.
 */
const ABSENCE_MS = 300

const subscribeTo = async (gw: GatewayProcess, type: SubscriptionType, targets: Array<string>) => {
  const { client, connected } = await connect(gw)
  client.send({ type: "subscribe", subscription_type: type, targets })
  await client.nextOfType("subscribed")
  await client.settle()
  return { client, connected }
}

const updatesOf = (msgs: ReadonlyArray<Message>, code: string, price: number) =>
  ofType(msgs, "price_update").filter((m) => m.code === code && m.price === price && m.snapshot !== true)

const numsub = async (topic: string): Promise<number> => {
  const reply = (await redis.pubsub("NUMSUB", `${prefix}${topic}`)) as Array<string | number>
  return Number(reply[1])
}

describe("cross-instance delivery", () => {
  it("an event ingested on either instance reaches subscribers on both, exactly once", async () => {
    const [a, b] = [node(0), node(1)]
    const onA = await subscribeTo(a, "stock", ["005930"])
    const onB = await subscribeTo(b, "stock", ["005930"])
    // One at a time: two updates of one stock inside a batch interval may be conflated (by design).
    expect((await ingest(a, [priceEvent("005930", 73100)])).status).toBe(202)
    for (const c of [onA.client, onB.client])
      await c.next((m) => m.type === "price_update" && m.price === 73100)
    expect((await ingest(b, [priceEvent("005930", 73200)])).status).toBe(202)
    for (const c of [onA.client, onB.client])
      await c.next((m) => m.type === "price_update" && m.price === 73200)
    const restA = onA.client.messages
    const restB = onB.client.messages
    await sleep(ABSENCE_MS) // no second copy of either
    for (const msgs of [restA, restB]) {
      expect(updatesOf(msgs, "005930", 73100)).toHaveLength(1)
      expect(updatesOf(msgs, "005930", 73200)).toHaveLength(1)
      // Sequence numbers stay gap-free per connection whatever instance the event came from.
      const seqs = msgs.map((m) => m.sequence)
      expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i))
    }
    await Promise.all([onA.client.close(), onB.client.close()])
  })

  it("alerts and market topics work the same way: a market status ingested on B reaches a market subscriber on A", async () => {
    const [a, b] = [node(0), node(1)]
    const onA = await subscribeTo(a, "market", ["KOSDAQ"])
    expect((await ingest(b, [{ type: "market_status", market: "KOSDAQ", status: "halted" }])).status).toBe(
      202,
    )
    const status = await onA.client.next((m) => m.type === "market_status" && m.snapshot !== true)
    expect(status).toMatchObject({ market: "KOSDAQ", status: "halted" })
    expect((await ingest(b, [{ type: "market_status", market: "KOSDAQ", status: "open" }])).status).toBe(202)
    await onA.client.next((m) => m.type === "market_status" && m.status === "open")
    await onA.client.close()
  })
})

describe("first frames", () => {
  // Setting up a connection waits for Redis (session store); a client that does not wait for
  // `connected` before its first message must not lose it.
  it("a subscribe sent the moment the socket opens is answered, with and without a token", async () => {
    const token = await signToken({ sub: "eager" })
    for (const query of ["", `?token=${token}`]) {
      const client = await TestClient.open(`${node(0).wsUrl}${query}`)
      try {
        client.send({ type: "subscribe", subscription_type: "stock", targets: ["035720", "066570"] })
        const answer = await client.next((m) => m.type === "subscribed" || m.type === "error", 3000)
        expect(answer).toMatchObject({ type: "subscribed", targets: ["035720", "066570"] })
      } finally {
        await client.close()
      }
    }
  })
})

describe("Redis channels follow local subscribers", () => {
  it("an instance subscribes on its first local subscriber and unsubscribes after its last", async () => {
    const [a, b] = [node(0), node(1)]
    const topic = "stock:{000660}"
    await waitFor(async () => (await numsub(topic)) === 0, 3000, "no subscriber of the topic yet")
    const x = await subscribeTo(a, "stock", ["000660"])
    const y = await subscribeTo(a, "stock", ["000660"])
    expect(await numsub(topic)).toBe(1) // one per instance, not per connection
    const z = await subscribeTo(b, "stock", ["000660"])
    expect(await numsub(topic)).toBe(2)
    x.client.send({ type: "unsubscribe", subscription_type: "stock", targets: ["000660"] })
    await x.client.nextOfType("unsubscribed")
    expect(await numsub(topic)).toBe(2)
    await y.client.close()
    await waitFor(async () => (await numsub(topic)) === 1, 3000, "A to unsubscribe")
    await z.client.close()
    await waitFor(async () => (await numsub(topic)) === 0, 3000, "B to unsubscribe")
    await x.client.close()
  })
})

describe("snapshots in Redis", () => {
  /**
   * The commands Redis runs, in order, as "COMMAND key" lines, read from a plain MONITOR
   * connection: ioredis's `monitor()` can fail with "Command queue state error" when the
   * instances' steady traffic (membership beats, session writes) races its setup.
   */
  const monitorOf = async (url: string) => {
    const { hostname, port } = new URL(url)
    const socket = net.connect(Number(port || 6379), hostname)
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
    const seen: Array<string> = []
    let pending = ""
    let monitoring: () => void = () => {}
    const ok = new Promise<void>((resolve) => {
      monitoring = resolve
    })
    socket.on("data", (chunk: Buffer) => {
      const lines = (pending + chunk.toString("utf8")).split("\r\n")
      pending = lines.pop() ?? ""
      for (const line of lines) {
        if (line === "+OK") monitoring()
        const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? "")
        if (args.length >= 2) seen.push(`${String(args[0]).toUpperCase()} ${args[1]}`)
      }
    })
    socket.write("MONITOR\r\n")
    await ok
    return { seen, close: () => socket.destroy() }
  }

  it("an event's snapshot reaches Redis before the event is published", async () => {
    // Otherwise an instance that subscribes in between reads an older state and keeps it until
    // the next event of that topic (a halted market could show open).
    const monitor = await monitorOf(SHARED_REDIS_URL)
    const seen = monitor.seen
    // Each at its reference close plus one tick (500 KRW at these prices).
    const codes: ReadonlyArray<readonly [string, number]> = [
      ["051910", 320500],
      ["006400", 300500],
      ["207940", 801000],
    ]
    const hsetOf = (code: string) => seen.indexOf(`HSET ${prefix}snap:stock:{${code}}`)
    const publishOf = (code: string) => seen.indexOf(`PUBLISH ${prefix}stock:{${code}}`)
    try {
      for (const [code, price] of codes)
        expect((await ingest(node(1), [priceEvent(code, price)])).status).toBe(202)
      await waitFor(async () => codes.every(([c]) => publishOf(c) >= 0), 3000, "the publishes")
      for (const [code] of codes) {
        expect(hsetOf(code), `HSET of ${code}`).toBeGreaterThanOrEqual(0)
        expect(hsetOf(code), `HSET before PUBLISH of ${code}`).toBeLessThan(publishOf(code))
      }
    } finally {
      monitor.close()
    }
  })

  it("a subscribe on any instance gets the latest state, whichever instance it entered on", async () => {
    expect((await ingest(node(1), [priceEvent("035420", 191000)])).status).toBe(202)
    await waitFor(
      async () => (await redis.hget(`${prefix}snap:stock:{035420}`, "price_update|035420")) !== null,
      3000,
      "the snapshot in Redis",
    )
    const { client } = await connect(node(0))
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["035420"] })
    await client.nextOfType("subscribed")
    const snap = await client.next((m) => m.type === "price_update")
    expect(snap).toMatchObject({ code: "035420", price: 191000, snapshot: true })
    await client.close()
  })
})

describe("stats and connections", () => {
  it("/health says cluster mode with redis ok; /v1/ws/stats has a cluster section with every live instance", async () => {
    const [a, b] = [node(0), node(1)]
    const ha = await healthOf(a)
    expect(ha.status).toBe(200)
    expect(ha.body).toMatchObject({ mode: "cluster", dependencies: { redis: "ok" } })
    const [idA, idB] = await Promise.all([instanceIdOf(a), instanceIdOf(b)])
    const x = await subscribeTo(a, "stock", ["005930", "000660"])
    const y = await subscribeTo(b, "sector", ["IT"])
    const stats = await statsOf(a)
    expect(stats.cluster?.instances).toBe(2)
    expect(stats.cluster?.members.map((m) => m.instance_id).sort()).toEqual([idA, idB].sort())
    const mine = stats.cluster?.members.find((m) => m.instance_id === idA)
    expect(mine).toMatchObject({ active_connections: 1, total_subscriptions: 2 })
    // B's entry is at most one heartbeat old.
    await waitFor(
      async () => {
        const s = await statsOf(a)
        return s.cluster?.active_connections === 2 && s.cluster.total_subscriptions === 3
      },
      5000,
      "B's totals in A's cluster section",
    )
    // The other deployment (another prefix) is not a member.
    expect(stats.cluster?.members.map((m) => m.instance_id)).not.toContain(
      await instanceIdOf(clusters.other.nodes[0] as GatewayProcess),
    )
    await Promise.all([x.client.close(), y.client.close()])
  })

  it("/v1/ws/connections lists the connections of the instance it is asked", async () => {
    const [a, b] = [node(0), node(1)]
    const onA = await subscribeTo(a, "stock", ["005930"])
    const onB = await subscribeTo(b, "stock", ["005930"])
    const [la, lb] = await Promise.all([connectionsOf(a), connectionsOf(b)])
    expect(la.map((c) => c.connection_id)).toEqual([onA.connected.connection_id])
    expect(lb.map((c) => c.connection_id)).toEqual([onB.connected.connection_id])
    await Promise.all([onA.client.close(), onB.client.close()])
  })
})

describe("REDIS_PREFIX", () => {
  it("keeps deployments apart: nothing crosses prefixes, and every key and channel is under the prefix", async () => {
    const other = clusters.other.nodes[0] as GatewayProcess
    const mine = await subscribeTo(node(0), "stock", ["005930"])
    const theirs: { client: TestClient } = await subscribeTo(other, "stock", ["005930"])
    expect((await ingest(node(1), [priceEvent("005930", 73500)])).status).toBe(202)
    await mine.client.next((m) => m.type === "price_update" && m.price === 73500)
    await sleep(ABSENCE_MS) // nothing crosses to the other deployment
    expect(updatesOf(theirs.client.messages, "005930", 73500)).toHaveLength(0)

    const keys = await keysUnder(SHARED_REDIS_URL, prefix)
    expect(keys.length).toBeGreaterThan(0)
    const channels = (await redis.pubsub("CHANNELS", `${prefix}*`)) as Array<string>
    expect(channels).toContain(`${prefix}stock:{005930}`)
    // Every channel an instance of this deployment listens on carries the prefix.
    const clientList = (await redis.client("LIST")) as string
    const ours = clientList.split("\n").filter((l) => l.includes(`name=${prefix}`))
    expect(ours.length).toBe(4) // two instances, one command and one subscriber connection each
    await Promise.all([mine.client.close(), theirs.client.close()])
  })
})
