/**
 * Reconnect storms (issue 12, point 6): clients with saved sessions that all come back at once
 * (after a deploy or a network blip) are all restored, while the setups are admitted a few at
 * a time (SETUP_CONCURRENCY) so that the connections already served keep being served. An
 * upgrade waits for its setup slot before its handshake: one whose client leaves meanwhile costs
 * no handshake and no setup, and one that cannot wait (queue full, or waited too long) is
 * answered 503 with Retry-After before its handshake, which clients retry.
 *
 * The storms run against a gateway in its own process with the simulator on, so that its event
 * loop is not the test's; the waits against an in-process gateway whose session store holds one
 * restore until the test lets it go, so that the single setup slot stays taken for as long as the
 * test needs. What is asserted is the control (visible in /metrics), never a speed.
 */
import type { IncomingMessage } from "node:http"
import { connect as tcpConnect } from "node:net"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import WebSocket from "ws"
import { builtinCodes } from "../../load/lib/config.js"
import type { AppConfigShape } from "../../src/config/AppConfig.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"
import { SessionStore } from "../../src/session/SessionStore.js"
import {
  connect,
  decodeFrameValue,
  type GatewayProcess,
  type MessageOf,
  type RefusedUpgrade,
  type RunningGateway,
  readRefusal,
  spawnGateway,
  startGateway,
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

type Upgrade =
  | { readonly ok: true; readonly ws: WebSocket; readonly reconnected: Promise<MessageOf<"reconnected">> }
  | RefusedUpgrade

/**
 * One WebSocket upgrade: the open socket with its `reconnected` to come (read from the first
 * frame on, batches unpacked), or the HTTP answer that refused it.
 */
const upgrade = (url: string): Promise<Upgrade> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const reconnected = new Promise<MessageOf<"reconnected">>((found, lost) => {
      ws.on("message", (data) => {
        // Decoded with the server's Schemas: a frame off the contract fails the wait.
        let frame: ReturnType<typeof decodeFrameValue>
        try {
          frame = decodeFrameValue(JSON.parse(data.toString()))
        } catch (e) {
          return lost(e)
        }
        const msgs = frame.type === "batch" ? frame.messages : [frame]
        for (const m of msgs) if (m.type === "reconnected") return found(m)
      })
      ws.once("close", (code) => lost(new Error(`closed ${code} before reconnected`)))
    })
    // Refused upgrades never wait on it.
    reconnected.catch(() => {})
    ws.once("open", () => resolve({ ok: true, ws, reconnected }))
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      readRefusal(res).then(resolve, reject)
    })
    ws.once("error", reject)
  })

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

  it("answers 503 with Retry-After, before the handshake, the upgrades that find the queue full, and they succeed when retried", async () => {
    const gw = await spawnGateway({ ...PER_ADDRESS, SETUP_CONCURRENCY: "1", ADMISSION_QUEUE: "0" })
    const clients: Array<TestClient> = []
    const sockets: Array<WebSocket> = []
    try {
      // As many as in a burst where one setup at a time cannot keep up (arrivals overlap for sure).
      const sessions = await savedSessions(gw, 150)
      await waitFor(async () => (await metric(gw, "quotecast_connections_active")) === 0, 10_000, "closes")
      const outcomes = await Promise.all(
        sessions.map(async (sid) => {
          const r = await upgrade(`${gw.wsUrl}?session_id=${sid}`)
          if (!r.ok) return r
          sockets.push(r.ws)
          expect((await r.reconnected).session_id).toBe(sid)
          return r
        }),
      )
      const refused = outcomes.flatMap((o) => (o.ok ? [] : [o]))
      expect(refused.length).toBeGreaterThan(0)
      for (const o of refused) {
        expect(o.status).toBe(503)
        expect(o.body).toMatchObject({ _tag: "ServerBusy", reason: "setup_queue_full" })
        expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1)
      }
      expect(await metric(gw, 'quotecast_setup_admission_rejected_total{reason="queue_full"}')).toBe(
        refused.length,
      )
      // A refused client that retries gets its session back.
      const retried = outcomes.flatMap((o, i) => (o.ok ? [] : [sessions[i] as string]))
      for (const sid of retried.slice(0, 3)) {
        const { client, connected } = await connect(gw, `session_id=${sid}`)
        clients.push(client)
        expect(connected.session_id).toBe(sid)
        expect((await client.nextOfType("reconnected")).session_id).toBe(sid)
      }
    } finally {
      for (const c of clients) c.ws.terminate()
      for (const ws of sockets) ws.terminate()
      await gw.stop()
    }
  }, 90_000)
})

/** Holds the restore of one session in the session store until `release` (the one setup slot stays taken). */
const holding = () => {
  const hold: { sessionId: string | undefined; release: () => void; released: Promise<void> } = {
    sessionId: undefined,
    release: () => {},
    released: Promise.resolve(),
  }
  hold.released = new Promise<void>((resolve) => {
    hold.release = resolve
  })
  const layer = Layer.effect(
    SessionStore,
    Effect.map(SessionStore, (store) => ({
      ...store,
      get: (id: string) =>
        id === hold.sessionId
          ? Effect.zipRight(
              Effect.promise(() => hold.released),
              store.get(id),
            )
          : store.get(id),
    })),
  ).pipe(Layer.provide(EmbeddedLive))
  return { hold, mode: Layer.merge(EmbeddedLive, layer) }
}

const running: Array<RunningGateway> = []
const leftOpen: Array<{ destroy: () => void }> = []
afterEach(async () => {
  for (const s of leftOpen.splice(0)) s.destroy()
  await Promise.all(running.splice(0).map((g) => g.stop()))
})

/** An in-process gateway with one setup slot, and a saved session whose restore holds it until released. */
const gatewayHoldingOneRestore = async (overrides: Partial<AppConfigShape> = {}) => {
  const { hold, mode } = holding()
  const gw = await startGateway({ setupConcurrency: 1, ...overrides }, { mode })
  running.push(gw)
  const saved = async () => {
    const { client, connected } = await connect(gw)
    await client.close()
    return connected.session_id as string
  }
  const held = await saved()
  const other = await saved()
  await waitFor(
    async () => (await gw.runtime.runPromise(GatewayStats)).activeConnections === 0,
    5_000,
    "closes",
  )
  hold.sessionId = held
  // The held restore takes the slot (its setup waits in the store).
  const holder = TestClient.open(`${gw.wsUrl}?session_id=${held}`)
  await waitFor(
    async () => (await gw.runtime.runPromise(GatewayStats)).setupsInFlight === 1,
    5_000,
    "slot taken",
  )
  return { gw, hold, holder, other, stats: () => gw.runtime.runPromise(GatewayStats) }
}

/** A raw upgrade request for `/v1/ws`, sent whole, on a socket the test ends itself. */
const rawUpgrade = (gw: RunningGateway, query = "") => {
  const socket = tcpConnect(gw.port, "127.0.0.1")
  socket.on("error", () => {})
  socket.resume()
  leftOpen.push(socket)
  socket.write(
    `GET /v1/ws${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  )
  return socket
}

describe("an upgrade waiting for its setup slot", () => {
  it("gets its handshake only when its turn comes; one whose client leaves meanwhile costs no handshake and no setup", async () => {
    const { gw, hold, holder, other, stats } = await gatewayHoldingOneRestore()
    const openedBefore = (await stats()).connectionsOpened
    const waiting = upgrade(`${gw.wsUrl}?session_id=${other}`)
    const leaving = [rawUpgrade(gw), rawUpgrade(gw, `?session_id=${other}`), rawUpgrade(gw)]
    await waitFor(async () => (await stats()).setupsWaiting === 4, 5_000, "four upgrades waiting")
    for (const s of leaving) s.end()
    await waitFor(async () => (await stats()).admissionAbandoned === 3, 5_000, "three waits abandoned")

    hold.release()
    expect((await (await holder).nextOfType("reconnected")).session_id).toBe(hold.sessionId)
    const w = await waiting
    if (!w.ok) throw new Error(`refused: ${w.status}`)
    leftOpen.push({ destroy: () => w.ws.terminate() })
    expect((await w.reconnected).session_id).toBe(other)
    // Two setups ran (the held restore and the one still waited for); none for the three that left.
    expect((await stats()).connectionsOpened - openedBefore).toBe(2)
  })

  it("is not closed by HANDSHAKE_TIMEOUT_MS while it waits", async () => {
    const { gw, hold, holder, other, stats } = await gatewayHoldingOneRestore({ handshakeTimeoutMs: 300 })
    const waiting = upgrade(`${gw.wsUrl}?session_id=${other}`)
    await waitFor(async () => (await stats()).setupsWaiting === 1, 5_000, "the upgrade waiting")
    // A silent connection opened after it is closed by the handshake timeout: the wait has lasted longer.
    const silent = tcpConnect(gw.port, "127.0.0.1")
    silent.on("error", () => {})
    silent.resume()
    await new Promise<void>((resolve) => silent.once("close", () => resolve()))
    expect((await stats()).httpClientErrors.get("timeout")).toBe(1)

    hold.release()
    await (await holder).nextOfType("reconnected")
    const w = await waiting
    if (!w.ok) throw new Error(`refused: ${w.status}`)
    leftOpen.push({ destroy: () => w.ws.terminate() })
    expect((await w.reconnected).session_id).toBe(other)
  })

  it("is answered 503 with Retry-After and a JSON reason, before its handshake, once it waited ADMISSION_WAIT_MS", async () => {
    const { gw, hold, holder, other, stats } = await gatewayHoldingOneRestore({ admissionWaitMs: 200 })
    const r = await upgrade(`${gw.wsUrl}?session_id=${other}`)
    if (r.ok) throw new Error("the upgrade was admitted")
    expect(r.status).toBe(503)
    expect(r.body).toMatchObject({ _tag: "ServerBusy", reason: "setup_wait" })
    expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
    expect((await stats()).admissionRejectedTimeout).toBe(1)
    hold.release()
    await (await holder).nextOfType("reconnected")
    // Nothing of its session was touched: it is restored when retried.
    const again = await upgrade(`${gw.wsUrl}?session_id=${other}`)
    if (!again.ok) throw new Error(`refused again: ${again.status}`)
    leftOpen.push({ destroy: () => again.ws.terminate() })
    expect((await again.reconnected).session_id).toBe(other)
  })
})
