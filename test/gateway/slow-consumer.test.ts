/**
 * docs/protocol.md "Slow readers and conflation": a reader that stops reading gets conflated state (the latest
 * price per code, no gaps in sequence), the server's memory for it stays bounded, and a socket
 * that stays over its send-buffer limit is closed with 1013 with its session kept.
 *
 * The gateway runs in its own process with a fast simulator; the client really stops reading
 * (its TCP socket is paused) right after subscribing, so the kernel's buffers fill and the
 * stall reaches the gateway after a few seconds.
 */

import { describe, expect, it } from "@effect/vitest"
import { Alert } from "../../src/http/Api.js"
import {
  connect,
  connectionsOf,
  type GatewayProcess,
  readJson,
  signToken,
  sleep,
  spawnGateway,
  waitFor,
} from "../support/gateway.js"

const LIMIT = 256 * 1024
const CODES = Array.from({ length: 300 }, (_, i) => String(900000 + i))

const busyGateway = (slowConsumerTimeoutMs: number, env: Record<string, string> = {}) =>
  spawnGateway({
    ...env,
    FEED: "simulator",
    FEED_RATE: "8000",
    UNIVERSE_SIZE: "1000",
    MAX_SUBSCRIPTIONS: "400",
    SEND_BUFFER_LIMIT_BYTES: String(LIMIT),
    SLOW_CONSUMER_TIMEOUT_MS: String(slowConsumerTimeoutMs),
  })

const connectionInfo = async (gw: GatewayProcess, id: string) =>
  (await connectionsOf(gw)).find((c) => c.connection_id === id)

const metric = async (gw: GatewayProcess, name: string) => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  const found = text.split("\n").find((l) => l.startsWith(name))
  return found === undefined ? 0 : Number(found.split(" ").at(-1))
}

const subscribeAllThenStopReading = async (gw: GatewayProcess, query = "") => {
  const { client, connected } = await connect(gw, query)
  for (let k = 0; k < CODES.length; k += 100) {
    client.send({ type: "subscribe", subscription_type: "stock", targets: CODES.slice(k, k + 100) })
  }
  ;(client.ws as unknown as { _socket: { pause: () => void; resume: () => void } })._socket.pause()
  return { client, connected }
}

/**
 * Waits until the reader is stalled: its socket is over its limit and nothing more is written to
 * it (the messages sent stay the same across two reads). Returns the messages sent by then.
 */
const stalled = async (gw: GatewayProcess, connectionId: string): Promise<number> => {
  let sent = -1
  await waitFor(
    async () => {
      const before = sent
      sent = await metric(gw, "quotecast_messages_sent_total")
      const info = await connectionInfo(gw, connectionId)
      return sent === before && (info?.buffered_bytes ?? 0) > LIMIT
    },
    90_000,
    "the stall to reach the gateway",
    300,
  )
  return sent
}

describe("a reader that stops reading", () => {
  it("is held in bounded memory, conflated, and then gets gap-free sequences when it reads again", async () => {
    const gw = await busyGateway(120_000)
    try {
      const { client, connected } = await subscribeAllThenStopReading(gw)
      const sent = await stalled(gw, connected.connection_id)
      const conflatedAtStall = await metric(gw, "quotecast_conflated_total")
      for (let i = 0; i < 10; i++) {
        const info = await connectionInfo(gw, connected.connection_id)
        // The socket stops growing (at most one frame past the limit) and the outbox holds at most
        // one message per (type, code): price and order book for each of the 300 codes.
        expect(info?.buffered_bytes).toBeLessThan(LIMIT + 512 * 1024)
        expect(info?.queued_messages).toBeLessThanOrEqual(2 * CODES.length + 10)
        await sleep(100) // samples 100 ms apart: the bound holds over time, not at one instant
      }
      expect(await metric(gw, "quotecast_conflated_total")).toBeGreaterThan(conflatedAtStall)
      expect(await metric(gw, "quotecast_messages_sent_total")).toBe(sent)
      ;(client.ws as unknown as { _socket: { resume: () => void } })._socket.resume()
      client.send({ type: "unsubscribe", subscription_type: "stock", targets: CODES.slice(0, 100) })
      client.send({ type: "unsubscribe", subscription_type: "stock", targets: CODES.slice(100, 200) })
      client.send({ type: "unsubscribe", subscription_type: "stock", targets: CODES.slice(200) })
      const last = CODES.at(-1) ?? ""
      await client.next((m) => m.type === "unsubscribed" && m.targets.includes(last), 20_000)
      await client.settle()
      const seqs = client.messages.map((m) => m.sequence)
      expect(seqs).toEqual(seqs.map((_, i) => i + 1))
      await client.close()
    } finally {
      await gw.stop()
    }
  }, 150_000)

  it("is closed with 1013 when its socket stays over the limit, and its session is kept", async () => {
    const gw = await busyGateway(1500)
    try {
      const { client, connected } = await subscribeAllThenStopReading(gw)
      await waitFor(
        async () => (await metric(gw, 'quotecast_connections_closed_total{code="1013"}')) > 0,
        90_000,
        "the slow reader to be closed",
        300,
      )
      client.ws.terminate()
      const again = await connect(gw, `session_id=${connected.session_id}`)
      const reconnected = await again.client.nextOfType("reconnected")
      expect(reconnected.restored_subscriptions.stock).toHaveLength(CODES.length)
      await again.client.close()
    } finally {
      await gw.stop()
    }
  }, 150_000)

  it("keeps the alerts it could not send with its session, and delivers them on restore", async () => {
    // The heartbeat would otherwise end this reader first (it answers no ping either).
    const gw = await busyGateway(4000, { HEARTBEAT_INTERVAL_MS: "120000" })
    try {
      const token = await signToken({ sub: "slow-reader" })
      const { client, connected } = await subscribeAllThenStopReading(gw, `token=${token}`)
      await stalled(gw, connected.connection_id)
      // Fires at the next simulated price of 005930, while nothing more is written to this reader.
      const created = await fetch(`${gw.httpUrl}/v1/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ code: "005930", alert_type: "price_above", threshold: 1 }),
      })
      expect(created.status).toBe(201)
      const alertId = (await readJson(created, Alert)).id
      await waitFor(
        async () => (await metric(gw, 'quotecast_connections_closed_total{code="1013"}')) > 0,
        90_000,
        "the slow reader to be closed",
        300,
      )
      client.ws.terminate()
      const again = await connect(gw, `token=${token}&session_id=${connected.session_id}`)
      await again.client.nextOfType("reconnected")
      const alert = await again.client.nextOfType("alert", 20_000)
      expect(alert.alert_id).toBe(alertId)
      await again.client.close()
    } finally {
      await gw.stop()
    }
  }, 150_000)
})
