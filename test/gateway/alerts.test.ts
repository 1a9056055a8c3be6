/**
 * Price alerts (docs/protocol.md `alert`, issue 3 item 7): a user's own alerts over HTTP; an alert
 * fires once when its condition becomes true, to every live connection of its user, and is
 * kept for the user's disconnected sessions and delivered on restore.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { HashMap, Logger, Option, Schema } from "effect"
import { Alert, type AlertRequest } from "../../src/http/Api.js"
import {
  connect,
  connectionGone,
  ingest,
  ofType,
  priceEvent,
  readJson,
  signToken,
  useGateway,
  waitFor,
} from "../support/gateway.js"

/** Every log line's message and user, to see when an alert was fired and kept. */
const logged: Array<{ readonly message: unknown; readonly userId: unknown }> = []
const gw = useGateway(
  {},
  {
    logger: Logger.make(({ message, annotations }) => {
      logged.push({
        message: Array.isArray(message) ? message[0] : message,
        userId: Option.getOrUndefined(HashMap.get(annotations, "user_id")),
      })
    }),
  },
)
beforeAll(async () => {
  await ingest(gw, [priceEvent("005930", 73000), priceEvent("000660", 145000)])
})

/** Requests that the API must refuse are typed loosely on purpose: they test validation. */
type AlertBody = typeof AlertRequest.Encoded | { readonly [key: string]: unknown }

const api = (token: string) => ({
  create: (body: AlertBody) =>
    fetch(`${gw.httpUrl}/v1/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    }),
  list: async () =>
    readJson(
      await fetch(`${gw.httpUrl}/v1/alerts`, { headers: { authorization: `Bearer ${token}` } }),
      Schema.Array(Alert),
    ),
  remove: (id: string) =>
    fetch(`${gw.httpUrl}/v1/alerts/${id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    }),
})

describe("alert CRUD", () => {
  it("creates, lists and deletes the caller's own alerts; others can neither see nor delete them", async () => {
    const alice = api(await signToken({ sub: "alice" }))
    const bob = api(await signToken({ sub: "bob" }))
    const res = await alice.create({ code: "005930", alert_type: "price_above", threshold: 80000 })
    expect(res.status).toBe(201)
    const alert = await readJson(res, Alert)
    expect(alert).toMatchObject({
      user_id: "alice",
      code: "005930",
      alert_type: "price_above",
      status: "active",
    })
    expect((await alice.list()).map((a) => a.id)).toContain(alert.id)
    expect((await bob.list()).map((a) => a.id)).not.toContain(alert.id)
    expect((await bob.remove(alert.id)).status).toBe(404)
    expect((await alice.remove(alert.id)).status).toBe(204)
    expect(await alice.list()).toEqual([])
  })

  it("validates the code, the type and the threshold, and needs a token", async () => {
    const carol = api(await signToken({ sub: "carol" }))
    expect((await carol.create({ code: "999999", alert_type: "price_above", threshold: 1 })).status).toBe(400)
    expect((await carol.create({ code: "005930", alert_type: "price_sideways", threshold: 1 })).status).toBe(
      400,
    )
    expect((await carol.create({ code: "005930", alert_type: "price_below", threshold: -5 })).status).toBe(
      400,
    )
    expect((await fetch(`${gw.httpUrl}/v1/alerts`)).status).toBe(401)
  })
})

describe("alert delivery", () => {
  it("fires once when the condition becomes true, worded like the original document, to every live connection", async () => {
    const token = await signToken({ sub: "dana" })
    const dana = api(token)
    const created = await readJson(
      await dana.create({ code: "000660", alert_type: "price_above", threshold: 150000 }),
      Alert,
    )
    const first = await connect(gw, `token=${token}`)
    const second = await connect(gw, `token=${token}`)
    // Not crossed yet. (Had it fired, the alert below would carry 149,500: an alert fires once.)
    await ingest(gw, [priceEvent("000660", 149500)])
    await ingest(gw, [priceEvent("000660", 151000)])
    for (const c of [first.client, second.client]) {
      expect(await c.nextOfType("alert")).toMatchObject({
        alert_id: created.id,
        code: "000660",
        alert_type: "price_above",
        threshold: 150000,
        current_price: 151000,
        message: "SK hynix exceeded 150,000 KRW",
      })
    }
    await ingest(gw, [priceEvent("000660", 152000)])
    // A marker: a second alert that the next price fires. Alerts fire in the order their prices
    // went through, so once it arrives a second firing of the first one would have come before.
    const marker = await readJson(
      await dana.create({ code: "000660", alert_type: "price_above", threshold: 153000 }),
      Alert,
    )
    await ingest(gw, [priceEvent("000660", 154000)])
    await first.client.next((m) => m.type === "alert" && m.alert_id === marker.id)
    expect(ofType(first.client.messages, "alert").map((m) => m.alert_id)).toEqual([created.id, marker.id])
    expect((await dana.list()).find((a) => a.id === created.id)).toMatchObject({ status: "fired" })
    await Promise.all([first.client.close(), second.client.close()])
  })

  it("is kept for the user's disconnected session and delivered after reconnected, counted in missed_messages_count", async () => {
    const token = await signToken({ sub: "erin" })
    const erin = api(token)
    const a = await connect(gw, `token=${token}`)
    a.client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await a.client.nextOfType("subscribed")
    await a.client.close()
    await connectionGone(gw, a.connected.connection_id)
    expect((await erin.create({ code: "005930", alert_type: "price_below", threshold: 72000 })).status).toBe(
      201,
    )
    expect((await ingest(gw, [priceEvent("005930", 71500)])).status).toBe(202)
    // The engine logs a firing after it kept the alert for the user's saved sessions.
    await waitFor(
      () => logged.some((l) => l.message === "alerts fired" && l.userId === "erin"),
      5000,
      "erin's alert to be fired and kept",
    )
    const b = await connect(gw, `token=${token}&session_id=${a.connected.session_id}`)
    const reconnected = await b.client.nextMustBe("reconnected")
    const missed = await b.client.settle()
    expect(missed).toHaveLength(reconnected.missed_messages_count)
    const alert = ofType(missed, "alert")[0]
    expect(alert).toMatchObject({
      code: "005930",
      alert_type: "price_below",
      message: "Samsung Electronics fell below 72,000 KRW",
    })
    await b.client.close()
  })
})
