/**
 * Baseline 2: Socket.IO, what a Node user would pick instead. One room per stock code; a client
 * emits `subscribe` with its codes and joins their rooms; every feed event is broadcast with
 * `io.to(code).emit(type, event)`, which Socket.IO encodes once per broadcast and writes to each
 * member as its own WebSocket frame (it has no batching). WebSocket transport only (no HTTP
 * long-polling upgrade dance), no compression, as a tuned deployment would run it.
 */
import * as http from "node:http"
import { Server } from "socket.io"
import type { MarketEvent } from "../../src/protocol/server.js"
import { announce, serveControl } from "./control.js"
import { codeOf, feedSettingsFromEnv, makeBenchEngine, standaloneMarket, startFeedLoop } from "./feed.js"

const server = http.createServer()
const io = new Server(server, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  // Pings every 25 s would arrive mid-run for the load client to answer; it does answer them.
  pingInterval: 25_000,
  pingTimeout: 20_000,
})

io.on("connection", (socket) => {
  socket.on("subscribe", (codes: unknown) => {
    if (!Array.isArray(codes)) return
    const targets = codes.filter((c): c is string => typeof c === "string")
    void socket.join(targets)
    socket.emit("subscribed", { type: "subscribed", subscription_type: "stock", targets })
  })
})

const publish = (events: ReadonlyArray<MarketEvent>): void => {
  for (const e of events) {
    const code = codeOf(e)
    if (code !== undefined) io.to(code).emit(e.type, e)
  }
}

const { universe, state } = standaloneMarket()
const engine = makeBenchEngine(universe, state, feedSettingsFromEnv())
serveControl(
  () => startFeedLoop(engine, publish),
  () => engine,
)
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  announce("socketio-baseline", typeof address === "object" && address !== null ? address.port : 0)
})
