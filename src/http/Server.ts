/**
 * One port for everything. We own the `http.Server`: HTTP requests go to the HttpApi app
 * (through `NodeHttpServer.makeHandler`), and `upgrade` events for `/v1/ws` go to a `ws`
 * server we configure ourselves, because the platform's built-in upgrade path cannot negotiate
 * permessage-deflate. Each accepted socket is served by a connection fiber in a FiberSet, so
 * closing this Layer's scope (SIGTERM) stops accepting, closes every connection with 1012
 * (sessions kept) and waits briefly for the close handshakes.
 */
import * as http from "node:http"
import type { Duplex } from "node:stream"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Layer } from "effect"
import { WebSocket, WebSocketServer } from "ws"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import { connectionRunner, makeEnv, paramsOf } from "../connection/Connection.js"
import { Lifecycle } from "../lifecycle/Lifecycle.js"
import { AuthenticationLive } from "./auth.js"
import { DashboardLive } from "./dashboard.js"
import { ApiLive } from "./handlers.js"

/**
 * permessage-deflate negotiation (README "Compression"). `ws` only negotiates and inflates what
 * clients send; the gateway compresses outgoing frames itself in the flush loop
 * (`connection/deflate.ts`), which needs `server_no_context_takeover`. Window sizes are left to
 * the client (setting ours would make `ws` decline offers that ask for less), and the flusher
 * compresses with whatever window was agreed.
 */
export const perMessageDeflate = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  // Never used for sending (every send passes compress: false); kept small in case.
  threshold: 1024,
  zlibDeflateOptions: { level: 1, memLevel: 5 },
} as const

const reject = (socket: Duplex, status: number, reason: string) => {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  socket.destroy()
}

const originAllowed = (config: AppConfigShape, origin: string | undefined): boolean => {
  if (config.allowedOrigins._tag === "None") return true
  // Non-browser clients send no Origin; the check exists to stop other web pages.
  if (origin === undefined) return true
  return config.allowedOrigins.value.includes(origin)
}

/** The address the server ended up listening on (port 0 in tests picks a free one). */
export class ServerAddress extends Effect.Tag("quotecast/ServerAddress")<
  ServerAddress,
  { readonly port: number; readonly host: string }
>() {}

const ServerLive = Layer.scoped(
  ServerAddress,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const lifecycle = yield* Lifecycle
    const app = yield* HttpApiBuilder.httpApp
    const handler = yield* NodeHttpServer.makeHandler(app)

    const sockets = new Set<WebSocket>()
    // One shared listener (not a closure per socket): `this` is the socket that closed.
    function forget(this: WebSocket) {
      sockets.delete(this)
    }
    // Runs last: give close handshakes a moment, then cut whatever is left.
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        if (sockets.size === 0) return resume(Effect.void)
        const timer = setTimeout(() => {
          for (const ws of sockets) ws.terminate()
          resume(Effect.void)
        }, config.shutdownGraceMs)
        const check = () => {
          if (sockets.size === 0) {
            clearTimeout(timer)
            resume(Effect.void)
          }
        }
        for (const ws of sockets) ws.once("close", () => setImmediate(check))
      }),
    )

    const env = yield* makeEnv
    const runConnection = yield* connectionRunner
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: config.maxPayloadBytes,
      perMessageDeflate: config.compression ? perMessageDeflate : false,
    })

    const server = http.createServer(handler)
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? "/").split("?")[0]
      if (path !== "/v1/ws") return reject(socket, 404, "Not Found")
      if (lifecycle.draining) return reject(socket, 503, "Service Unavailable")
      if (!originAllowed(config, req.headers.origin)) return reject(socket, 403, "Forbidden")
      wss.handleUpgrade(req, socket, head, (ws) => {
        sockets.add(ws)
        // `on`, not `once`: "close" is emitted once anyway, and `once` wraps the listener per socket.
        ws.on("close", forget)
        runConnection(env, ws, paramsOf(req))
      })
    })

    const address = yield* Effect.acquireRelease(
      Effect.async<{ port: number; host: string }, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(config.port, config.host, () => {
          const a = server.address()
          resume(
            Effect.succeed({
              port: typeof a === "object" && a !== null ? a.port : config.port,
              host: config.host,
            }),
          )
        })
      }),
      () =>
        Effect.sync(() => {
          lifecycle.draining = true
          server.close()
          server.closeIdleConnections()
        }),
    ).pipe(Effect.orDie)
    yield* Effect.logInfo("quotecast listening").pipe(
      Effect.annotateLogs({
        host: address.host,
        port: address.port,
        ws: "/v1/ws",
        compression: config.compression,
      }),
    )
    return address
  }),
)

export const HttpServerLive = ServerLive.pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(DashboardLive),
  Layer.provide(ApiLive),
  Layer.provide(AuthenticationLive),
  Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer, NodeHttpServer.layerContext]),
)
