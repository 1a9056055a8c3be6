/**
 * The test client guards the contract: a frame the server Schemas do not decode (a missing or
 * extra field, a wrong type, not JSON, binary) fails the read that follows it and the close,
 * even when the test was waiting for something else.
 */
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { WebSocketServer } from "ws"
import { TestClient } from "./wire.js"

const TS = "2024-01-02T03:04:05.678Z"
const connected = {
  type: "connected",
  connection_id: "c",
  session_id: "s",
  user_id: null,
  timestamp: TS,
  sequence: 1,
}
const pong = { type: "pong", id: 7, timestamp: TS, sequence: 2 }

/** A server that sends `connected`, then the frame named by the URL's path, then a valid pong. */
const frames: Record<string, string | Buffer> = {
  valid: JSON.stringify(pong),
  extra: JSON.stringify({ ...pong, extra: 1 }),
  missing: JSON.stringify({ type: "pong", timestamp: TS }),
  wrongType: JSON.stringify({ ...pong, sequence: "2" }),
  badTimestamp: JSON.stringify({ ...pong, timestamp: "yesterday" }),
  notJson: "{oops",
  binary: Buffer.from([1, 2, 3]),
  badInBatch: JSON.stringify({
    type: "batch",
    batch_size: 2,
    messages: [pong, { type: "price_update", code: "005930", sequence: 3 }],
    timestamp: TS,
    sequence: 3,
  }),
}

let wss: WebSocketServer
let url: string
beforeAll(async () => {
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  wss.on("connection", (socket, req) => {
    const frame = frames[(req.url ?? "/").slice(1)] ?? ""
    socket.send(JSON.stringify(connected))
    socket.send(frame, { binary: Buffer.isBuffer(frame) })
    socket.send(JSON.stringify({ ...pong, id: "after", sequence: 9 }))
  })
  await new Promise((resolve) => wss.once("listening", resolve))
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
})
afterAll(() => new Promise((resolve) => wss.close(resolve)))

describe("the test client", () => {
  it("reads frames that decode as typed messages", async () => {
    const client = await TestClient.open(`${url}/valid`)
    expect(await client.nextOfType("pong")).toEqual(pong)
    expect((await client.next((m) => m.type === "pong" && m.id === "after")).sequence).toBe(9)
    await client.close()
  })

  for (const name of Object.keys(frames).filter((n) => n !== "valid")) {
    it(`fails the next read and the close on a frame off the contract: ${name}`, async () => {
      const client = await TestClient.open(`${url}/${name}`)
      // Waiting for the frame after the bad one: the bad one fails the wait.
      await expect(client.next((m) => m.type === "pong" && m.id === "after")).rejects.toThrow(
        "frame off the contract",
      )
      await client.next((m) => m.type === "pong" && m.id === "after")
      expect(client.messages.map((m) => m.type)).not.toContain("price_update")
      // Reported once: what remains is thrown by close (or, if no close, after the test).
      await client.close()
    })
  }

  it("throws at close a bad frame that no read saw", async () => {
    const client = await TestClient.open(`${url}/extra`)
    await vi.waitFor(() =>
      expect(client.messages.some((m) => m.type === "pong" && m.id === "after")).toBe(true),
    )
    await expect(client.close()).rejects.toThrow("extra")
  })
})
