/**
 * What the memory probes share, so that they measure the same thing: the port their server
 * reports, and the ramp, shaped like the benchmark's load client: `clients` connections opened
 * ten at a time, each subscribing to 20 of `codes`; it resolves once every one is subscribed (or
 * after 60 s, with the count).
 */
import type { ChildProcess } from "node:child_process"
import WebSocket from "ws"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The port in the server's first `port=` line on stdout; each chunk is also handed to `tee`. */
export const listeningPort = (
  child: ChildProcess,
  tee: (chunk: Buffer) => void = () => {},
): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    let out = ""
    child.stdout?.on("data", (d: Buffer) => {
      tee(d)
      out += d.toString()
      const m = /port=(\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    child.once("exit", () => reject(new Error("server exited before listening")))
  })

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
