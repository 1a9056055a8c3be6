/**
 * Test support: a real gateway on a loopback port, real `ws` clients, and signed tokens.
 */
import { Layer, Logger, LogLevel, ManagedRuntime, Option, Redacted } from "effect"
import { SignJWT } from "jose"
import WebSocket from "ws"
import { AppConfig, type AppConfigShape } from "../../src/config/AppConfig.js"
import { gateway, type gatewayWith } from "../../src/Gateway.js"
import { ServerAddress } from "../../src/http/Server.js"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"

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
  /** The mode layer (default: embedded); tests swap one of its services for a faulty one. */
  readonly mode?: Layer.Layer<
    Layer.Layer.Success<typeof EmbeddedLive>,
    never,
    Layer.Layer.Context<typeof EmbeddedLive>
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

export const signToken = (
  claims: { sub: string; role?: string; rate_limit?: number },
  options: { expiresInS?: number; secret?: string } = {},
): Promise<string> => {
  const jwt = new SignJWT({ ...claims }).setProtectedHeader({ alg: "HS256" }).setIssuedAt()
  if (options.expiresInS !== undefined)
    jwt.setExpirationTime(Math.floor(Date.now() / 1000) + options.expiresInS)
  return jwt.sign(new TextEncoder().encode(options.secret ?? TEST_SECRET))
}

// biome-ignore lint/suspicious/noExplicitAny: server messages are checked field by field in tests
export type Msg = Record<string, any>

/**
 * A real WebSocket client that records every message (batches unpacked, each kept with the
 * frame it came in) and lets a test wait for the next message matching a predicate.
 */
export class TestClient {
  readonly frames: Array<Msg> = []
  readonly messages: Array<Msg> = []
  private cursor = 0
  private waiters: Array<() => void> = []
  readonly closed: Promise<{ code: number; reason: string }>

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      if (isBinary) throw new Error("server sent a binary frame")
      const frame = JSON.parse(data.toString()) as Msg
      this.frames.push(frame)
      if (frame.type === "batch") for (const m of frame.messages as Array<Msg>) this.messages.push(m)
      else this.messages.push(frame)
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const w of this.waiters.splice(0)) w()
      })
    })
  }

  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options)
      const client = new TestClient(ws)
      ws.once("open", () => resolve(client))
      ws.once("error", reject)
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value))
  }

  /** Next message (after the ones already taken) that matches; fails after `timeoutMs`. */
  async next(match: (m: Msg) => boolean = () => true, timeoutMs = 5000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.cursor < this.messages.length) {
        const m = this.messages[this.cursor++] as Msg
        if (match(m)) return m
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("connection closed while waiting")
      const left = deadline - Date.now()
      if (left <= 0)
        throw new Error(`timed out waiting for a message; got ${JSON.stringify(this.messages.slice(-5))}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  nextOfType(type: string, timeoutMs?: number): Promise<Msg> {
    return this.next((m) => m.type === type, timeoutMs)
  }

  /** Waits until no message arrives for `quietMs`, then returns everything not yet taken. */
  async drain(quietMs = 150): Promise<Array<Msg>> {
    let seen = -1
    while (seen !== this.messages.length) {
      seen = this.messages.length
      await new Promise((r) => setTimeout(r, quietMs))
    }
    const rest = this.messages.slice(this.cursor)
    this.cursor = this.messages.length
    return rest
  }

  close(code = 1000): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code)
    return this.closed
  }
}

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

export const priceEvent = (code: string, price: number, volume = 1000) => ({
  type: "price_update",
  code,
  price,
  volume,
})

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
  let text = ""
  child.stdout?.on("data", (d) => {
    text += d
  })
  child.stderr?.on("data", (d) => {
    text += d
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const end = Date.now() + timeoutMs
  let port: number | undefined
  while (port === undefined) {
    const m = /quotecast listening.*port=(\d+)/.exec(text)
    if (m) port = Number(m[1])
    else if (child.exitCode !== null) throw new Error(`gateway exited: ${text}`)
    else if (Date.now() > end) {
      child.kill("SIGKILL")
      throw new Error(`gateway did not start: ${text}`)
    } else await sleep(50)
  }
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    child,
    output: () => text,
    exited,
    stop: () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      return exited
    },
  }
}
