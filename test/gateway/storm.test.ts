/**
 * Reconnect storms (issue 12, point 6): clients with saved sessions that all come back at once
 * (after a deploy or a network blip) are all restored, while the setups are admitted a few at
 * a time (SETUP_CONCURRENCY) so that the connections already served keep being served; a setup
 * that cannot wait (queue full, or waited too long) is closed with 1013, which clients retry.
 *
 * The gateway runs in its own process with the simulator on, so that its event loop is not the
 * test's. What is asserted is the control (visible in /metrics), never a speed.
 */
import { describe, expect, it } from "@effect/vitest"
import { builtinCodes } from "../../load/lib/config.js"
import {
  connect,
  type GatewayProcess,
  type Message,
  spawnGateway,
  TestClient,
  waitFor,
} from "../support/gateway.js"

/** A metric's value, summed over its labels; fails when the gateway does not export it. */
const metric = async (gw: GatewayProcess, name: string): Promise<number> => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  const found = text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  if (found.length === 0) throw new Error(`no metric ${name}`)
  return found.reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0)
}

/** One test host opens every connection: the per-address caps are not what is tested here. */
const PER_ADDRESS = {
  MAX_ANONYMOUS_SESSIONS_PER_ADDRESS: "100000",
  WS_MAX_CONNECTIONS: "100000",
  WS_MAX_CONNECTIONS_PER_ADDRESS: "100000",
  WS_CONNECT_RATE_PER_ADDRESS: "100000",
  WS_CONNECT_BURST_PER_ADDRESS: "100000",
}

const codesOf = (i: number): Array<string> =>
  Array.from({ length: 5 }, (_, k) => builtinCodes[(i * 5 + k) % 100] as string)

/**
 * Opens `n` clients one after another (so that even a gateway admitting one setup with no queue
 * takes them all), each subscribed to its 5 codes; returns their session ids.
 */
const savedSessions = async (gw: GatewayProcess, n: number): Promise<Array<string>> => {
  const clients: Array<Awaited<ReturnType<typeof connect>>> = []
  for (let i = 0; i < n; i++) clients.push(await connect(gw))
  await Promise.all(
    clients.map(async ({ client }, i) => {
      client.send({ type: "subscribe", subscription_type: "stock", targets: codesOf(i) })
      await client.nextOfType("subscribed")
    }),
  )
  await Promise.all(clients.map(({ client }) => client.close()))
  return clients.map(({ connected }) => connected.session_id as string)
}

const restoreAll = (gw: GatewayProcess, sessions: ReadonlyArray<string>) =>
  sessions.map((sid) => TestClient.open(`${gw.wsUrl}?session_id=${sid}`))

describe("a reconnect storm", () => {
  it("restores every session, admitting a few setups at a time, while a connected client keeps being served", async () => {
    const gw = await spawnGateway({
      ...PER_ADDRESS,
      FEED: "simulator",
      FEED_RATE: "200",
      SETUP_CONCURRENCY: "2",
    })
    const clients: Array<TestClient> = []
    try {
      const { client: observer } = await connect(gw)
      observer.send({ type: "subscribe", subscription_type: "stock", targets: builtinCodes.slice(0, 20) })
      await observer.nextOfType("subscribed")
      const sessions = await savedSessions(gw, 150)
      await waitFor(async () => (await metric(gw, "quotecast_connections_active")) === 1, 10_000, "closes")

      // Every client comes back at once with its session id.
      const opening = restoreAll(gw, sessions)
      const reconnects = opening.map(async (p, i) => {
        const c = await p
        clients.push(c)
        const r = await c.nextOfType("reconnected", 30_000)
        return { i, r }
      })
      // Once the storm is under way, the observer asks for a pong: it is answered while
      // restores are still waiting for their turn.
      await Promise.race(reconnects)
      let restoredBeforePong = 0
      const counting = reconnects.map((p) => p.then(() => restoredBeforePong++))
      observer.send({ type: "ping", id: "during-storm" })
      await observer.next((m) => m.type === "pong" && m.id === "during-storm", 30_000)
      const restoredAtPong = restoredBeforePong
      const done = await Promise.all(reconnects)
      await Promise.all(counting)

      for (const { i, r } of done) {
        expect(r.session_id).toBe(sessions[i])
        expect([...(r.restored_subscriptions.stock as Array<string>)].sort()).toEqual([...codesOf(i)].sort())
      }
      expect(restoredAtPong).toBeLessThan(sessions.length)
      // The control: setups waited for a slot, never more than 2 ran at once, none was refused.
      expect(await metric(gw, "quotecast_setup_admission_queued_total")).toBeGreaterThan(0)
      expect(await metric(gw, "quotecast_setups_in_flight_peak")).toBe(2)
      expect(await metric(gw, "quotecast_setup_admission_rejected_total")).toBe(0)
      // The observer was never dropped and still receives.
      const before = observer.messages.length
      await waitFor(() => observer.messages.length > before, 10_000, "observer updates")
    } finally {
      for (const c of clients) c.ws.terminate()
      await gw.stop()
    }
  }, 90_000)

  it("closes with 1013 the setups that find the queue full, and they succeed when retried", async () => {
    const gw = await spawnGateway({ ...PER_ADDRESS, SETUP_CONCURRENCY: "1", ADMISSION_QUEUE: "0" })
    const clients: Array<TestClient> = []
    try {
      // As many as in a burst where one setup at a time cannot keep up (arrivals overlap for sure).
      const sessions = await savedSessions(gw, 150)
      await waitFor(async () => (await metric(gw, "quotecast_connections_active")) === 0, 10_000, "closes")
      const outcomes = await Promise.all(
        restoreAll(gw, sessions).map(async (p) => {
          const c = await p
          clients.push(c)
          const first = await Promise.race([
            c.next((m: Message) => m.type === "reconnected", 30_000),
            c.closed.then((closed) => ({ type: "closed", ...closed })),
          ])
          return first
        }),
      )
      const refused = outcomes.filter((o) => o.type === "closed")
      expect(refused.length).toBeGreaterThan(0)
      for (const o of refused) expect(o).toMatchObject({ code: 1013, reason: "try again later" })
      expect(await metric(gw, 'quotecast_setup_admission_rejected_total{reason="queue_full"}')).toBe(
        refused.length,
      )
      // A refused client that retries gets its session back.
      const retried = outcomes.flatMap((o, i) => (o.type === "closed" ? [sessions[i] as string] : []))
      for (const sid of retried.slice(0, 3)) {
        const { client, connected } = await connect(gw, `session_id=${sid}`)
        clients.push(client)
        expect(connected.session_id).toBe(sid)
        expect((await client.nextOfType("reconnected")).session_id).toBe(sid)
      }
    } finally {
      for (const c of clients) c.ws.terminate()
      await gw.stop()
    }
  }, 90_000)
})
