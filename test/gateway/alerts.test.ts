/**
 * Price alerts (PROTOCOL.md `alert`, issue 3 item 7): a user's own alerts over HTTP; an alert
 * fires once when its condition becomes true, to every live connection of its user, and is
 * kept for the user's disconnected sessions and delivered on restore.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  connect,
  ingest,
  type Msg,
  priceEvent,
  type RunningGateway,
  signToken,
  sleep,
  startGateway,
} from "../support/gateway.js"

let gw: RunningGateway
beforeAll(async () => {
  gw = await startGateway()
  await ingest(gw, [priceEvent("005930", 73000), priceEvent("000660", 145000)])
})
afterAll(() => gw.stop())

const api = (token: string) => ({
  create: (body: unknown) =>
    fetch(`${gw.httpUrl}/v1/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    }),
  list: async () =>
    (await (
      await fetch(`${gw.httpUrl}/v1/alerts`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Array<Msg>,
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
    const alert = (await res.json()) as Msg
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
    const created = (await (
      await dana.create({ code: "000660", alert_type: "price_above", threshold: 150000 })
    ).json()) as Msg
    const first = await connect(gw, `token=${token}`)
    const second = await connect(gw, `token=${token}`)
    await ingest(gw, [priceEvent("000660", 149500)])
    await sleep(100)
    expect(first.client.messages.some((m) => m.type === "alert")).toBe(false)
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
    await sleep(150)
    expect(first.client.messages.filter((m) => m.type === "alert")).toHaveLength(1)
    expect((await dana.list())[0]).toMatchObject({ id: created.id, status: "fired" })
    await Promise.all([first.client.close(), second.client.close()])
  })

  it("is kept for the user's disconnected session and delivered after reconnected, counted in missed_messages_count", async () => {
    const token = await signToken({ sub: "erin" })
    const erin = api(token)
    const a = await connect(gw, `token=${token}`)
    a.client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    await a.client.nextOfType("subscribed")
    await a.client.close()
    await sleep(50)
    await erin.create({ code: "005930", alert_type: "price_below", threshold: 72000 })
    await ingest(gw, [priceEvent("005930", 71500)])
    await sleep(50)
    const b = await connect(gw, `token=${token}&session_id=${a.connected.session_id}`)
    const reconnected = await b.client.nextOfType("reconnected")
    const missed = await b.client.drain()
    expect(missed).toHaveLength(reconnected.missed_messages_count)
    const alert = missed.find((m) => m.type === "alert")
    expect(alert).toMatchObject({
      code: "005930",
      alert_type: "price_below",
      message: "Samsung Electronics fell below 72,000 KRW",
    })
    await b.client.close()
  })
})
