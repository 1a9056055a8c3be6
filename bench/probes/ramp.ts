/**
 * The probes' ramp, shaped like the benchmark's load client: `clients` connections opened ten at
 * a time, each subscribing to 20 of `codes`; resolves once every one is subscribed (or after 60 s,
 * with the count). Shared by the memory probes so that they measure the same ramp.
 */
import WebSocket from "ws"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface Ramp {
  readonly sockets: Array<WebSocket>
  readonly subscribed: number
}

export const rampSubscribers = async (
  port: number,
  clients: number,
  codes: ReadonlyArray<string>,
  /** "open": subscribe as soon as the socket opens; "connected": after the first message. */
  subscribeOn: "open" | "connected",
  options: WebSocket.ClientOptions = {},
): Promise<Ramp> => {
  let subscribed = 0
  const sockets: Array<WebSocket> = []
  for (let i = 0; i < clients; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, options)
    sockets.push(ws)
    ws.once(subscribeOn === "open" ? "open" : "message", () => {
      const targets = Array.from({ length: 20 }, (_, k) => codes[(i * 7 + k) % codes.length])
      ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets }))
      ws.on("message", (d: Buffer) => {
        if (d.toString().includes('"subscribed"')) subscribed++
      })
    })
    ws.on("error", () => {})
    if (i % 10 === 9) await sleep(10)
  }
  for (let waited = 0; subscribed < clients && waited < 600; waited++) await sleep(100)
  return { sockets, subscribed }
}
