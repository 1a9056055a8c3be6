/**
 * OUTBOUND_BUDGET_BYTES (issue 12, point 5): outbound memory is bounded in total, not only per
 * connection. When readers that stopped reading hold more than the budget, the worst offenders
 * are conflated and then closed with 1013 (worst first, sessions kept), while a reader that keeps
 * up receives every alert and fresh prices throughout; once they are gone the budget in use is
 * back to about nothing.
 *
 * The gateway runs in its own process with a fast simulator. The per-connection limits are set
 * out of reach (64 MiB, two minutes, no heartbeat in the test's time), so only the total budget
 * can close anyone. The non-readers really stop reading (their TCP sockets are paused); the
 * kernel's buffers fill first, so the stall reaches the gateway after a few seconds.
 */
import { describe, expect, it } from "@effect/vitest"
import { Alert } from "../../src/http/Api.js"
import {
  connect,
  connectionsOf,
  type GatewayProcess,
  isType,
  readJson,
  signToken,
  spawnGateway,
  type TestClient,
  waitFor,
} from "../support/gateway.js"

const BUDGET = 2 * 1024 * 1024
const CODES = Array.from({ length: 1000 }, (_, i) => String(900000 + i))

const metric = async (gw: GatewayProcess, name: string): Promise<number> => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  const found = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return found === undefined ? 0 : Number(found.split(" ").at(-1))
}

const liveConnectionIds = async (gw: GatewayProcess): Promise<Set<string>> =>
  new Set((await connectionsOf(gw)).map((c) => c.connection_id))

const subscribe = (client: TestClient, codes: ReadonlyArray<string>) => {
  for (let k = 0; k < codes.length; k += 100)
    client.send({ type: "subscribe", subscription_type: "stock", targets: codes.slice(k, k + 100) })
}

/** A client that subscribes to `codes` and then never reads again. */
const nonReader = async (gw: GatewayProcess, codes: ReadonlyArray<string>) => {
  const { client, connected } = await connect(gw)
  subscribe(client, codes)
  ;(client.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  return { client, id: connected.connection_id }
}

const createAlert = async (gw: GatewayProcess, token: string, code: string): Promise<string> => {
  const res = await fetch(`${gw.httpUrl}/v1/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    // Any price is above 1: it fires on the code's next price update.
    body: JSON.stringify({ code, alert_type: "price_above", threshold: 1 }),
  })
  expect(res.status).toBe(201)
  return (await readJson(res, Alert)).id
}

describe("the outbound budget", () => {
  it("closes the worst non-readers with 1013 first while a reader keeps receiving alerts and prices", async () => {
    const gw = await spawnGateway({
      FEED: "simulator",
      FEED_RATE: "8000",
      UNIVERSE_SIZE: String(CODES.length),
      MAX_SUBSCRIPTIONS: String(CODES.length),
      OUTBOUND_BUDGET_BYTES: String(BUDGET),
      SEND_BUFFER_LIMIT_BYTES: String(64 * 1024 * 1024),
      SLOW_CONSUMER_TIMEOUT_MS: "120000",
      HEARTBEAT_INTERVAL_MS: "120000",
      WS_MAX_CONNECTIONS: "1000",
    })
    const stalled: Array<{ client: TestClient; id: string }> = []
    try {
      const token = await signToken({ sub: "keeps-up" })
      const { client: reader } = await connect(gw, `token=${token}`)
      const watched = CODES.slice(0, 20)
      subscribe(reader, watched)
      await reader.next((m) => m.type === "price_update" && watched.includes(m.code), 10_000)
      const alertIds = [await createAlert(gw, token, watched[0] as string)]

      // The worst offender subscribes to everything; two others to a fifth of it each.
      const worst = await nonReader(gw, CODES)
      stalled.push(worst)
      stalled.push(await nonReader(gw, CODES.slice(0, 200)))
      stalled.push(await nonReader(gw, CODES.slice(200, 400)))

      // Whoever leaves first must be the worst; then the others go too, all with 1013.
      let firstGone: string | undefined
      await waitFor(
        async () => {
          const live = await liveConnectionIds(gw)
          const gone = stalled.filter((s) => !live.has(s.id)).map((s) => s.id)
          if (firstGone === undefined && gone.length > 0) {
            firstGone = gone.length === 1 ? gone[0] : "several at once"
            alertIds.push(await createAlert(gw, token, watched[1] as string))
          }
          return gone.length === stalled.length
        },
        90_000,
        "the non-readers to be closed by the budget",
        200,
      )
      expect(firstGone).toBe(worst.id)
      expect(await metric(gw, "quotecast_outbound_budget_closes_total")).toBe(3)
      expect(await metric(gw, "quotecast_outbound_budget_conflations_total")).toBeGreaterThanOrEqual(3)
      expect(await metric(gw, 'quotecast_connections_closed_total{code="1013"}')).toBe(3)

      for (const s of stalled) s.client.ws.terminate()
      // The budget in use drops back to what a reader that keeps up holds: about nothing.
      await waitFor(
        async () => (await metric(gw, "quotecast_outbound_budget_used_bytes")) < 64 * 1024,
        10_000,
        "the budget in use to return to about zero",
      )

      // The reader got every alert, and prices still arrive fresh after the storm.
      alertIds.push(await createAlert(gw, token, watched[2] as string))
      const after = Date.now()
      await reader.next(
        (m) => m.type === "price_update" && Date.parse(m.timestamp as string) >= after - 100,
        10_000,
      )
      await waitFor(
        () => alertIds.every((id) => reader.messages.some((m) => m.type === "alert" && m.alert_id === id)),
        10_000,
        "every alert to reach the reader",
      )
      expect(reader.ws.readyState).toBe(reader.ws.OPEN)
      const seqs = reader.messages.map((m) => m.sequence)
      expect(seqs).toEqual(seqs.map((_, i) => i + 1))

      // Closed by the budget, sessions are kept: the worst can come back with its subscriptions.
      const again = await connect(gw, `session_id=${sessionOf(worst.client) ?? ""}`)
      const reconnected = await again.client.nextOfType("reconnected", 10_000)
      // (As many as the gateway had taken when it closed the connection: it stopped reading too.)
      expect(reconnected.restored_subscriptions.stock?.length).toBeGreaterThan(0)
      again.client.ws.terminate()
      reader.ws.terminate()
    } finally {
      for (const s of stalled) s.client.ws.terminate()
      await gw.stop()
    }
  }, 150_000)
})

/** The session id the client was given in `connected` (its first message, read before it paused). */
const sessionOf = (client: TestClient): string | undefined =>
  client.messages.find(isType("connected"))?.session_id
