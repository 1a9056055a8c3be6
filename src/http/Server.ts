/**
 * One port for everything. We own the `http.Server`: HTTP requests go to the HttpApi app
 * (through `NodeHttpServer.makeHandler`), and `upgrade` events for `/v1/ws` go to a `ws`
 * server we configure ourselves, because the platform's built-in upgrade path cannot negotiate
 * permessage-deflate. Each accepted socket is served by a connection fiber in a FiberSet, so
 * closing this Layer's scope (SIGTERM) stops accepting, closes every connection with 1012
 * (sessions kept) and waits briefly for the close handshakes.
 *
 * Limits (docs/limits.md): every request body is bounded, and read only from a caller
 * with a valid token, within a per-address share of the body budget (`bodyLimits.ts`); a socket
 * that has not sent complete request headers within HANDSHAKE_TIMEOUT_MS is closed by Node's own
 * connection check (`headersTimeout`: one periodic sweep over the sockets still in their first
 * request, a socket that never sends a byte included); upgrades are admitted against caps on
 * connections in total and per client address and a per-address rate (`admission.ts`), the
 * client address coming from X-Forwarded-For only through a trusted proxy (`clientAddress.ts`),
 * then wait for a setup slot before their handshake (`connection/Admission.ts`, `upgradeWait.ts`).
 */
import * as http from "node:http"
import { Socket } from "node:net"
import type { Duplex } from "node:stream"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Data, Effect, Layer, Option, Runtime } from "effect"
import { WebSocket, WebSocketServer } from "ws"
import { JwtVerifier } from "../auth/JwtVerifier.js"
import { AppConfig, type AppConfigShape } from "../config/AppConfig.js"
import { connectionRunner } from "../connection/Connection.js"
import { makeEnv, paramsOf } from "../connection/Env.js"
import { Lifecycle } from "../lifecycle/Lifecycle.js"
import { httpLane } from "../lifecycle/sharedScheduler.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { normalizeAddress, trustedProxies } from "../net/addresses.js"
import { Admission, type AdmissionRejection, defaultMaxConnections } from "./admission.js"
import { ApiDocsLive } from "./apiDocs.js"
import { AuthenticationLive } from "./auth.js"
import { type BodyGate, type BodyLimits, limitBodies } from "./bodyLimits.js"
import { admissionKeyOf, clientAddressOf } from "./clientAddress.js"
import { DashboardLive } from "./dashboard.js"
import { ApiLive } from "./handlers.js"
import { type UpgradeHandlers, WaitingUpgrade, waitRefusal } from "./upgradeWait.js"

/**
 * permessage-deflate negotiation (docs/compression.md). `ws` only negotiates and inflates what
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

/** A refused upgrade: a status, a short JSON reason and when to retry, then the socket is closed. */
const refuseUpgrade = (
  socket: Duplex,
  r: Pick<AdmissionRejection, "status" | "retryAfterS" | "message"> & { readonly reason: string },
  tag: "ConnectionLimit" | "ServerBusy" = "ConnectionLimit",
) => {
  const body = JSON.stringify({ _tag: tag, reason: r.reason, message: r.message })
  const status = r.status === 503 ? "503 Service Unavailable" : "429 Too Many Requests"
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nRetry-After: ${r.retryAfterS}\r\n` +
      `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  )
}

/** Node's answers to a socket that failed before a complete request (its defaults, counted). */
const CLIENT_ERRORS: Record<string, { readonly reason: string; readonly status: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { reason: "timeout", status: "408 Request Timeout" },
  HPE_HEADER_OVERFLOW: { reason: "headers_too_large", status: "431 Request Header Fields Too Large" },
}
const errorCodeOf = (e: Error): string | undefined =>
  "code" in e && typeof e.code === "string" ? e.code : undefined

/** TCP connections of any kind: the WebSocket cap plus room for HTTP requests. */
export const tcpLimitOf = (maxWebSockets: number) =>
  maxWebSockets + Math.max(64, Math.ceil(maxWebSockets / 10))

/** How often Node looks for sockets past the handshake or request timeout. */
const checkingIntervalOf = (handshakeTimeoutMs: number) =>
  Math.min(1_000, Math.max(50, Math.floor(handshakeTimeoutMs / 4)))

const originAllowed = (config: AppConfigShape, origin: string | undefined): boolean => {
  if (config.allowedOrigins._tag === "None") return true
  // Non-browser clients send no Origin; the check exists to stop other web pages.
  if (origin === undefined) return true
  return config.allowedOrigins.value.includes(origin)
}

/** The server could not listen on HOST and PORT (a name that does not resolve, a port in use): startup stops. */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly host: string
  readonly port: number
  readonly reason: string
}> {}

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
    const stats = yield* GatewayStats
    const limits: BodyLimits = {
      maxBodyBytes: config.httpMaxBodyBytes,
      ingestMaxBodyBytes: config.ingestMaxBodyBytes,
      maxJsonDepth: config.httpMaxJsonDepth,
      maxObjectMembers: config.httpMaxJsonObjectMembers,
      budgetBytes: config.httpBodyBudgetBytes,
      budgetPerAddressBytes: config.httpBodyBudgetPerAddressBytes,
      maxArrayItems: config.ingestMaxEvents,
    }
    const proxies = trustedProxies(config.trustedProxies)
    // A body is read only for a caller whose token (and role) is valid, counted per client address.
    const gate: BodyGate = {
      jwt: yield* JwtVerifier,
      addressKeyOf: (req) =>
        admissionKeyOf(
          clientAddressOf(proxies, req.socket.remoteAddress, req.headers["x-forwarded-for"]) ?? "unknown",
        ),
    }
    const app = limitBodies(yield* HttpApiBuilder.httpApp, limits, stats, gate)
    // Requests take turns with the WebSocket commands instead of queueing behind them.
    const handler = yield* httpLane(NodeHttpServer.makeHandler(app))
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())

    const admission = new Admission({
      maxTotal: Option.getOrElse(config.wsMaxConnections, defaultMaxConnections),
      maxPerAddress: config.wsMaxConnectionsPerAddress,
      ratePerSecond: config.wsConnectRatePerAddress,
      burst: config.wsConnectBurstPerAddress,
    })
    // TCP connections of any kind per peer address (a trusted proxy's are not counted: they carry
    // many clients), so that one host cannot take the HTTP room either. Only the cap is used.
    const perPeer = new Admission({
      maxTotal: tcpLimitOf(admission.limits.maxTotal),
      maxPerAddress: config.tcpMaxConnectionsPerAddress,
      ratePerSecond: Number.MAX_SAFE_INTEGER,
      burst: Number.MAX_SAFE_INTEGER,
    })
    // One shared "close" listener per TCP socket, for both tables (each release is a no-op for a
    // socket it did not count). Two listeners made the socket's "close" list an array that Node
    // grows to 19 slots with Node's and the wait's own listeners (upgradeWait.ts) beside them, and
    // that kept 176 bytes per WebSocket connection; with one, the list ends as a 2-slot array.
    function releaseSocket(this: Duplex) {
      perPeer.release(this)
      admission.release(this)
    }
    // The address tables' one clock: idle addresses whose bucket has refilled are dropped.
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        setInterval(() => {
          const now = Date.now()
          admission.sweep(now)
          perPeer.sweep(now)
        }, 1_000).unref(),
      ),
      (timer) => Effect.sync(() => clearInterval(timer)),
    )

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

    // An upgrade's turn comes from the setup admission (`connection/Admission.ts`), after a wait
    // (at least until the next turn) in which its socket is watched (`upgradeWait.ts`).
    const upgrades: UpgradeHandlers = {
      upgrade: (w, head) =>
        wss.handleUpgrade(w.req, w.socket, head, (ws) => {
          sockets.add(ws)
          // `on`, not `once`: "close" is emitted once anyway, and `once` wraps the listener per socket.
          ws.on("close", forget)
          runConnection(env, ws, paramsOf(w.req, w.client, w.addressKey))
        }),
      refuse: (w, reason, retryAfterS) =>
        refuseUpgrade(w.socket, waitRefusal(reason, retryAfterS, config), "ServerBusy"),
      gone: (w) => {
        if (w.ticket !== undefined) env.admission.cancel(w.ticket)
      },
      maxEarlyBytes: config.maxPayloadBytes,
    }

    const server = http.createServer(
      {
        headersTimeout: config.handshakeTimeoutMs,
        // Node requires requestTimeout >= headersTimeout.
        requestTimeout: Math.max(config.httpRequestTimeoutMs, config.handshakeTimeoutMs),
        connectionsCheckingInterval: checkingIntervalOf(config.handshakeTimeoutMs),
      },
      handler,
    )
    server.keepAliveTimeout = config.httpKeepAliveTimeoutMs
    // Every socket is a descriptor, HTTP ones too: beyond the WebSocket cap and a tenth more for
    // HTTP, Node closes new TCP connections at once (counted), so no client can take them all.
    server.maxConnections = tcpLimitOf(admission.limits.maxTotal)
    server.on("drop", () => stats.admissionRejected("tcp_total"))
    server.on("connection", (socket: Socket) => {
      // Node accepts one connection per turn: the next turns accept before they set up.
      env.admission.noteAccept()
      const peer = socket.remoteAddress
      if (peer === undefined || proxies.trusts(peer)) return
      if (perPeer.admit(socket, admissionKeyOf(normalizeAddress(peer)), Date.now()) !== undefined) {
        stats.admissionRejected("tcp_per_address")
        socket.destroy()
        return
      }
      socket.on("close", releaseSocket)
    })
    // `Expect: 100-continue`: `limitBodies` invites the body once it has passed every check made
    // before reading (size, token, budget), so a refused body is never invited.
    server.on("checkContinue", handler)
    // Node's default handling, counted: a timed-out or malformed request gets its status line
    // if nothing was written on the connection yet, and the socket is closed.
    server.on("clientError", (err: Error, socket: Duplex) => {
      const code = errorCodeOf(err)
      const known = code === undefined ? undefined : CLIENT_ERRORS[code]
      const reset = code === "ECONNRESET"
      stats.httpClientError(known?.reason ?? (reset ? "reset" : "malformed"))
      const untouched = socket instanceof Socket && socket.bytesWritten === 0
      if (!reset && socket.writable && untouched) {
        socket.end(`HTTP/1.1 ${known?.status ?? "400 Bad Request"}\r\nConnection: close\r\n\r\n`, () =>
          socket.destroy(),
        )
      } else socket.destroy()
    })
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? "/").split("?")[0]
      if (path !== "/v1/ws") return reject(socket, 404, "Not Found")
      if (lifecycle.draining) return reject(socket, 503, "Service Unavailable")
      if (!originAllowed(config, req.headers.origin)) return reject(socket, 403, "Forbidden")
      // Already closed: its "close" may have gone by, so it must not be counted.
      if (socket.destroyed) return
      const client = clientAddressOf(proxies, req.socket.remoteAddress, req.headers["x-forwarded-for"])
      const addressKey = admissionKeyOf(client ?? "unknown")
      const refused = admission.admit(socket, addressKey, Date.now())
      if (refused !== undefined) {
        stats.admissionRejected(refused.reason)
        runFork(
          Effect.logDebug("upgrade refused").pipe(
            Effect.annotateLogs({ reason: refused.reason, remote: client ?? "unknown" }),
          ),
        )
        return refuseUpgrade(socket, refused)
      }
      // The place is held until the TCP socket closes, however the connection ends (the listener
      // is already on unless the peer is a trusted proxy).
      if (socket.listenerCount("close", releaseSocket) === 0) socket.on("close", releaseSocket)
      const waiting = new WaitingUpgrade(req, socket, head, client, addressKey, upgrades)
      const ticket = env.admission.enqueue(waiting)
      if (ticket !== undefined) {
        waiting.ticket = ticket
        waiting.watch()
      }
    })

    const address = yield* Effect.acquireRelease(
      Effect.async<{ port: number; host: string }, ListenFailed>((resume) => {
        server.once("error", (e) =>
          resume(Effect.fail(new ListenFailed({ host: config.host, port: config.port, reason: e.message }))),
        )
        // A reconnect storm arrives as thousands of SYNs at once: past the accept queue they are
        // dropped and retried by the client's TCP after 1, 3, 7 ... s (Node's default is 511).
        server.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
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
          env.admission.refuseWaiting()
        }),
    )
    if (config.tcpMaxConnectionsPerAddress <= config.wsMaxConnectionsPerAddress) {
      yield* Effect.logWarning(
        "TCP_MAX_CONNECTIONS_PER_ADDRESS is not above WS_MAX_CONNECTIONS_PER_ADDRESS: an address's last upgrades are dropped without their 429",
      )
    }
    yield* Effect.logInfo("quotecast listening").pipe(
      Effect.annotateLogs({
        host: address.host,
        port: address.port,
        ws: "/v1/ws",
        compression: config.compression,
        max_connections: admission.limits.maxTotal,
        max_connections_per_address: admission.limits.maxPerAddress,
        max_tcp_connections: server.maxConnections,
        trusted_proxies: config.trustedProxies === "" ? "none" : config.trustedProxies,
      }),
    )
    return address
  }),
)

export const HttpServerLive = ServerLive.pipe(
  Layer.provide(ApiDocsLive),
  Layer.provide(DashboardLive),
  Layer.provide(ApiLive),
  Layer.provide(AuthenticationLive),
  Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer, NodeHttpServer.layerContext]),
)
