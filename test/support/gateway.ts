/**
 * Test support: a real gateway on a loopback port, real `ws` clients (wire.ts), and signed tokens.
 */
import type { IncomingMessage } from "node:http"
import { afterAll, beforeAll } from "@effect/vitest"
import { Layer, Logger, LogLevel, ManagedRuntime, Option, Redacted, Schema } from "effect"
import { SignJWT } from "jose"
import type WebSocket from "ws"
import { AppConfig, type AppConfigShape } from "../../src/config/AppConfig.js"
import type { PriceUpdateInput } from "../../src/feed/ingest/inputs.js"
import { gateway, type gatewayWith } from "../../src/Gateway.js"
import { ConnectionInfo, Stats } from "../../src/http/Api.js"
import { ServerAddress } from "../../src/http/Server.js"
import type { ClusterLive } from "../../src/mode/ClusterLive.js"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"
import { captureOutput } from "./output.js"
import { TestClient } from "./wire.js"

export * from "./wire.js"

export const TEST_SECRET = "test-secret-for-quotecast-0123456789"

/** Connection admission far above what any test opens (tests of the limits override it). */
const ADMISSION_UNLIMITED = {
  wsMaxConnections: Option.some(100_000),
  wsMaxConnectionsPerAddress: 100_000,
  wsConnectRatePerAddress: 100_000,
  wsConnectBurstPerAddress: 100_000,
  tcpMaxConnectionsPerAddress: 100_000,
} satisfies Partial<AppConfigShape>

/** The same for a gateway process (spawnGateway, the cluster tests). */
export const ADMISSION_UNLIMITED_ENV: Record<string, string> = {
  WS_MAX_CONNECTIONS: "100000",
  WS_MAX_CONNECTIONS_PER_ADDRESS: "100000",
  WS_CONNECT_RATE_PER_ADDRESS: "100000",
  WS_CONNECT_BURST_PER_ADDRESS: "100000",
  TCP_MAX_CONNECTIONS_PER_ADDRESS: "100000",
}

export interface RunningGateway {
  readonly port: number
  readonly wsUrl: string
  readonly httpUrl: string
  readonly runtime: ManagedRuntime.ManagedRuntime<
    Layer.Layer.Success<ReturnType<typeof gatewayWith>>,
    unknown
  >
  readonly stop: () => Promise<void>
}

export interface GatewayOptions {
  /**
   * The mode layer (default: embedded); tests swap one of its services for a faulty one, or run
   * one cluster-mode instance in this process.
   */
  readonly mode?: Layer.Layer<
    Layer.Layer.Success<typeof EmbeddedLive>,
    unknown,
    Layer.Layer.Context<typeof EmbeddedLive> | Layer.Layer.Context<typeof ClusterLive>
  >
  /** Receives every log line (at all levels) instead of the console. */
  readonly logger?: Logger.Logger<unknown, void>
}

/** Starts a gateway (FEED=none unless asked) on 127.0.0.1 with a free port. */
export const startGateway = async (
  overrides: Partial<AppConfigShape> = {},
  options: GatewayOptions = {},
): Promise<RunningGateway> => {
  const logging =
    options.logger === undefined
      ? Logger.minimumLogLevel(process.env.TEST_LOGS ? LogLevel.Debug : LogLevel.None)
      : Layer.merge(
          Logger.replace(Logger.defaultLogger, options.logger),
          Logger.minimumLogLevel(LogLevel.All),
        )
  const layer = gateway(options.mode ?? EmbeddedLive).pipe(
    Layer.provide(
      AppConfig.layerWith({
        port: 0,
        host: "127.0.0.1",
        feed: "none",
        jwtSecret: Option.some(Redacted.make(TEST_SECRET)),
        // Every client of a test connects from 127.0.0.1: admission is out of the way unless a
        // test of the limits sets its own.
        ...ADMISSION_UNLIMITED,
        ...overrides,
      }),
    ),
    Layer.provide(logging),
  )
  const runtime = ManagedRuntime.make(layer)
  const { port } = await runtime.runPromise(ServerAddress)
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    runtime,
    stop: () => runtime.dispose(),
  }
}

/**
 * One gateway for the enclosing describe (or file): started before its tests, stopped after.
 * The returned handle reads the running gateway, so it can be passed around like one.
 */
export const useGateway = (
  /** A function when a value is known only once an earlier hook ran (a private Redis's URL). */
  overrides: Partial<AppConfigShape> | (() => Partial<AppConfigShape>) = {},
  options: GatewayOptions = {},
): RunningGateway => {
  let running: RunningGateway | undefined
  const current = (): RunningGateway => {
    if (running === undefined) throw new Error("the gateway is not running (used outside its describe?)")
    return running
  }
  beforeAll(async () => {
    running = await startGateway(typeof overrides === "function" ? overrides() : overrides, options)
  })
  afterAll(async () => {
    await running?.stop()
    running = undefined
  })
  return {
    get port() {
      return current().port
    },
    get wsUrl() {
      return current().wsUrl
    },
    get httpUrl() {
      return current().httpUrl
    },
    get runtime() {
      return current().runtime
    },
    stop: () => current().stop(),
  }
}

export const signToken = (
  claims: { sub: string; role?: string; rate_limit?: number },
  options: { expiresInS?: number; secret?: string } = {},
): Promise<string> => {
  const jwt = new SignJWT({ ...claims }).setProtectedHeader({ alg: "HS256" }).setIssuedAt()
  if (options.expiresInS !== undefined)
    jwt.setExpirationTime(Math.floor(Date.now() / 1000) + options.expiresInS)
  return jwt.sign(new TextEncoder().encode(options.secret ?? TEST_SECRET))
}

/**
 * An HTTP error body: the API's tagged errors and the body limits' own answers all carry a tag
 * and a message; the fields beyond are each error's own.
 */
export const ErrorBody = Schema.Struct(
  { _tag: Schema.String, message: Schema.String },
  Schema.Record({ key: Schema.String, value: Schema.Unknown }),
)

/** An upgrade the gateway refused over HTTP (before any handshake): its status, Retry-After and body. */
export interface RefusedUpgrade {
  readonly ok: false
  readonly status: number
  readonly retryAfter: string | undefined
  readonly body: typeof ErrorBody.Type
}

/** Reads a refused upgrade's answer (`ws`'s "unexpected-response"), its body decoded as an error. */
export const readRefusal = (res: IncomingMessage): Promise<RefusedUpgrade> =>
  new Promise((resolve, reject) => {
    let text = ""
    res.on("data", (d: Buffer) => {
      text += d.toString()
    })
    res.on("error", reject)
    res.on("end", () => {
      const h = res.headers["retry-after"]
      try {
        resolve({
          ok: false,
          status: res.statusCode ?? 0,
          retryAfter: typeof h === "string" ? h : undefined,
          body: Schema.decodeUnknownSync(ErrorBody)(JSON.parse(text)),
        })
      } catch (e) {
        reject(e)
      }
    })
  })

/** GET /v1/ws/stats, decoded. */
export const statsOf = async (gw: { readonly httpUrl: string }) =>
  readJson(await fetch(`${gw.httpUrl}/v1/ws/stats`), Stats)

/** The live connections, as the admin API lists them. */
export const connectionsOf = async (gw: { readonly httpUrl: string }) => {
  const token = await signToken({ sub: "test-admin", role: "admin" })
  const res = await fetch(`${gw.httpUrl}/v1/ws/connections`, {
    headers: { authorization: `Bearer ${token}` },
  })
  return readJson(res, Schema.Array(ConnectionInfo))
}

/**
 * Waits until the gateway has finished with a closed connection: its registry entry goes last,
 * after its session was released (saved for a restore).
 */
export const connectionGone = (gw: { readonly httpUrl: string }, connectionId: string) =>
  waitFor(
    async () => (await connectionsOf(gw)).every((c) => c.connection_id !== connectionId),
    5000,
    `connection ${connectionId} to be gone`,
  )

/** POST /v1/ingest as a publisher. */
export const ingest = async (
  gw: { readonly httpUrl: string },
  events: ReadonlyArray<unknown>,
): Promise<Response> => {
  const token = await signToken({ sub: "feed-publisher", role: "publisher" })
  return fetch(`${gw.httpUrl}/v1/ingest`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ events }),
  })
}

export const priceEvent = (code: string, price: number, volume = 1000): typeof PriceUpdateInput.Encoded => ({
  type: "price_update",
  code,
  price,
  volume,
})

/** A JSON body decoded with the HTTP API's own Schema (http/Api.ts): a body off the contract throws. */
export const readJson = async <A, I>(res: Response, schema: Schema.Schema<A, I>): Promise<A> =>
  Schema.decodeUnknownPromise(schema, { errors: "all", onExcessProperty: "error" })(await res.json())

/** Opens a client and returns it with its `connected` message. */
export const connect = async (
  gw: { readonly wsUrl: string },
  query = "",
  options: WebSocket.ClientOptions = {},
) => {
  const client = await TestClient.open(`${gw.wsUrl}${query === "" ? "" : `?${query}`}`, options)
  const connected = await client.nextOfType("connected")
  return { client, connected }
}

/** The value of a series without labels in `/metrics`; fails when the gateway does not export it. */
export const metricValue = async (gw: { readonly httpUrl: string }, name: string): Promise<number> => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name} `))
  if (line === undefined) throw new Error(`no metric ${name}`)
  return Number(line.slice(name.length + 1))
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `cond` every `everyMs` until it holds; fails after `timeoutMs`, naming `what`. */
export const waitFor = async (
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<void> => {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/**
 * The gateway in its own process, as `npm start` runs it. For tests whose load would otherwise
 * compete with the test's own clients for one event loop (and for signals and exit codes).
 */
export interface GatewayProcess {
  readonly port: number
  readonly wsUrl: string
  readonly httpUrl: string
  readonly child: import("node:child_process").ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
  readonly stop: () => Promise<number | null>
}

export const spawnGateway = async (
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<GatewayProcess> => {
  const { spawn } = await import("node:child_process")
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      FEED: "none",
      LOG_LEVEL: "info",
      JWT_SECRET: TEST_SECRET,
      ...ADMISSION_UNLIMITED_ENV,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  const seen = captureOutput(child)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const end = Date.now() + timeoutMs
  let port: number | undefined
  while (port === undefined) {
    const m = /quotecast listening.*port=(\d+)/.exec(seen.all)
    if (m) port = Number(m[1])
    else if (child.exitCode !== null) throw new Error(`gateway exited: ${seen.all}`)
    else if (Date.now() > end) {
      child.kill("SIGKILL")
      throw new Error(`gateway did not start: ${seen.all}`)
    } else await sleep(50)
  }
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    child,
    output: () => seen.all,
    exited,
    stop: () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      return exited
    },
  }
}
