/**
 * Real sockets on loopback for the flusher's specs: a `ws` server with clients connected one at a
 * time (so the server's sockets come in the clients' order), and connections over those sockets
 * with nothing around them but a flusher, whose passes the spec drives by hand.
 */
import type { AddressInfo } from "node:net"
import WebSocket, { WebSocketServer } from "ws"
import { makeMemoryBroker } from "../../src/broker/Broker.js"
import { Conn, type FlushScheduler } from "../../src/connection/Conn.js"
import type { FlushOptions } from "../../src/connection/Flusher.js"
import { Outbox } from "../../src/connection/Outbox.js"

export interface Loopback {
  /** The server's side of each connection, in the order the clients connected. */
  readonly servers: ReadonlyArray<WebSocket>
  readonly clients: ReadonlyArray<WebSocket>
  readonly close: () => void
}

/** Opens `n` connections; `prepare` sees each client once it is open (to listen, or to stop reading). */
export const openLoopback = async (
  n: number,
  prepare: (client: WebSocket, i: number) => void = () => {},
): Promise<Loopback> => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()))
  const port = (wss.address() as AddressInfo).port
  const servers: Array<WebSocket> = []
  wss.on("connection", (ws) => servers.push(ws))
  const clients: Array<WebSocket> = []
  for (let i = 0; i < n; i++) {
    const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    await new Promise<void>((resolve) => client.once("open", () => resolve()))
    prepare(client, i)
    clients.push(client)
  }
  while (servers.length < n) await new Promise((r) => setTimeout(r, 5))
  return {
    servers,
    clients,
    close: () => {
      for (const c of clients) c.terminate()
      wss.close()
    },
  }
}

/** Flusher options with every limit out of reach, but those a spec sets. */
export const flushOptions = (set: Partial<FlushOptions> = {}): FlushOptions => ({
  batching: true,
  sendBufferLimitBytes: 1e9,
  slowConsumerTimeoutMs: 1e9,
  outboundBudgetBytes: 1e9,
  outboundAnswerSharePercent: 50,
  outboundFreeWriteBytes: 16_384,
  flushSliceMs: 0,
  flushLargeFramesMs: 1e9,
  ...set,
})

/** A connection over each server socket, flushed by `scheduler`'s flusher. */
export const connsOver = (servers: ReadonlyArray<WebSocket>, scheduler: FlushScheduler): Array<Conn> =>
  servers.map(
    (ws, i) =>
      new Conn(`c${i}`, ws, new Outbox(), scheduler, makeMemoryBroker(), 0, {
        id: `s${i}`,
        userId: null,
        lastSequence: 0,
      }),
  )
