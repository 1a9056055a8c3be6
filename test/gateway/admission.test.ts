/**
 * docs/limits.md, connections (issue 12 point 4): a TCP connection that has not sent a
 * complete request within HANDSHAKE_TIMEOUT_MS is closed, a silent one included; WebSocket
 * upgrades are capped in total (503) and per client address (429), and their rate per address is
 * bounded (429), each refusal an HTTP answer with a JSON reason and Retry-After, never a hang; a
 * place is given back when its connection ends. Behind a proxy the client address comes from
 * X-Forwarded-For only when the peer is a trusted proxy, and it is the address the connection is
 * logged and counted under.
 */
import type { IncomingMessage } from "node:http"
import { type Socket, connect as tcpConnect } from "node:net"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Logger, Option } from "effect"
import WebSocket from "ws"
import type { AppConfigShape } from "../../src/config/AppConfig.js"
import { Admission } from "../../src/http/admission.js"
import { admissionKeyOf, clientAddressOf } from "../../src/http/clientAddress.js"
import { tcpLimitOf } from "../../src/http/Server.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { trustedProxies } from "../../src/net/addresses.js"
import {
  type RefusedUpgrade,
  type RunningGateway,
  readRefusal,
  sleep,
  startGateway,
  TestClient,
  waitFor,
} from "../support/gateway.js"

const running: Array<RunningGateway> = []
const openSockets: Array<WebSocket> = []
afterEach(async () => {
  for (const ws of openSockets.splice(0)) ws.terminate()
  await Promise.all(running.splice(0).map((g) => g.stop()))
})

/** A gateway with these limits; anything not given is far out of the way. */
const gatewayWith = async (overrides: Partial<AppConfigShape>, logs?: Array<Record<string, unknown>>) => {
  const gw = await startGateway(
    overrides,
    logs === undefined
      ? {}
      : {
          logger: Logger.make(({ message, annotations }) => {
            const text = Array.isArray(message) ? message[0] : message
            const entry: Record<string, unknown> = { message: text }
            for (const [k, v] of annotations) entry[k] = v
            logs.push(entry)
          }),
        },
  )
  running.push(gw)
  return gw
}

type Upgrade = { readonly ok: true; readonly ws: WebSocket } | RefusedUpgrade

/** Tries one WebSocket upgrade: the open socket, or the HTTP answer that refused it. */
const upgrade = (gw: RunningGateway, headers: Record<string, string> = {}): Promise<Upgrade> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(gw.wsUrl, { headers })
    ws.once("open", () => {
      openSockets.push(ws)
      resolve({ ok: true, ws })
    })
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      readRefusal(res).then(resolve, reject)
    })
    ws.once("error", reject)
  })

const refused = async (gw: RunningGateway, headers: Record<string, string> = {}) => {
  const r = await upgrade(gw, headers)
  if (r.ok) throw new Error("the upgrade was admitted")
  return r
}

const admitted = async (gw: RunningGateway, headers: Record<string, string> = {}) => {
  const r = await upgrade(gw, headers)
  if (!r.ok) throw new Error(`the upgrade was refused: ${r.status} ${JSON.stringify(r.body)}`)
  return r.ws
}

const admissionRejections = async (gw: RunningGateway) =>
  (await gw.runtime.runPromise(GatewayStats)).admissionRejections

describe("handshake timeout", () => {
  it("closes a TCP connection that never sends a byte within HANDSHAKE_TIMEOUT_MS", async () => {
    const gw = await gatewayWith({ handshakeTimeoutMs: 300 })
    const socket = tcpConnect(gw.port, "127.0.0.1")
    socket.on("error", () => {})
    // Read whatever the server says (its 408), so that the server's close reaches "close".
    socket.resume()
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()))
    await Promise.race([
      closed,
      sleep(4_000).then(() => {
        throw new Error("a silent connection was still open after 4 s")
      }),
    ])
    const errors = (await gw.runtime.runPromise(GatewayStats)).httpClientErrors
    expect(errors.get("timeout")).toBe(1)
  })

  it("leaves a connection that completed its WebSocket upgrade alone", async () => {
    const gw = await gatewayWith({ handshakeTimeoutMs: 300 })
    const client = await TestClient.open(gw.wsUrl)
    await client.nextOfType("connected")
    // An absence: well past the 300 ms handshake timeout, the upgraded socket is still served.
    await sleep(1_000)
    client.send({ type: "ping", id: 7 })
    expect((await client.nextOfType("pong")).id).toBe(7)
    await client.close()
  })
})

describe("connection caps", () => {
  it("refuses an address over WS_MAX_CONNECTIONS_PER_ADDRESS with 429, a reason and Retry-After, and frees the place on close", async () => {
    const gw = await gatewayWith({ wsMaxConnectionsPerAddress: 3 })
    const open = [await admitted(gw), await admitted(gw), await admitted(gw)]
    const r = await refused(gw)
    expect(r.status).toBe(429)
    expect(r.body).toMatchObject({ _tag: "ConnectionLimit", reason: "per_address" })
    expect(String(r.body.message)).toContain("3")
    expect(Number(r.retryAfter)).toBeGreaterThan(0)
    expect((await admissionRejections(gw)).get("per_address")).toBe(1)

    open[0]?.close()
    await waitFor(async () => (await upgrade(gw)).ok, 5_000, "a place freed by a closed connection")
  })

  it("gives the place back when a connection is dropped without a close handshake", async () => {
    const gw = await gatewayWith({ wsMaxConnectionsPerAddress: 1 })
    const first = await admitted(gw)
    expect((await refused(gw)).status).toBe(429)
    first.terminate()
    await waitFor(async () => (await upgrade(gw)).ok, 5_000, "the dropped connection's place")
  })

  it("refuses everyone over WS_MAX_CONNECTIONS with 503", async () => {
    const gw = await gatewayWith({ wsMaxConnections: Option.some(2) })
    await admitted(gw)
    await admitted(gw)
    const r = await refused(gw)
    expect(r.status).toBe(503)
    expect(r.body).toMatchObject({ _tag: "ConnectionLimit", reason: "total" })
    expect(Number(r.retryAfter)).toBeGreaterThan(0)
    expect((await admissionRejections(gw)).get("total")).toBe(1)
  })

  it("closes new TCP connections at once past the WebSocket cap plus a tenth (at least 64) for HTTP", async () => {
    const gw = await gatewayWith({ wsMaxConnections: Option.some(2) })
    const limit = tcpLimitOf(2)
    const sockets: Array<Socket> = []
    try {
      for (let i = 0; i < limit; i++) {
        const s = tcpConnect(gw.port, "127.0.0.1")
        s.on("error", () => {})
        sockets.push(s)
        await new Promise<void>((resolve) => s.once("connect", () => resolve()))
      }
      const extra = tcpConnect(gw.port, "127.0.0.1")
      extra.on("error", () => {})
      extra.resume()
      sockets.push(extra)
      await Promise.race([
        new Promise<void>((resolve) => extra.once("close", () => resolve())),
        sleep(3_000).then(() => {
          throw new Error(`connection ${limit + 1} was still open after 3 s`)
        }),
      ])
      expect((await admissionRejections(gw)).get("tcp_total")).toBe(1)
    } finally {
      for (const s of sockets) s.destroy()
    }
  })

  it("closes at once a TCP connection past TCP_MAX_CONNECTIONS_PER_ADDRESS, unless the peer is a trusted proxy", async () => {
    const openRaw = async (gw: RunningGateway, n: number) => {
      const sockets: Array<Socket> = []
      for (let i = 0; i < n; i++) {
        const s = tcpConnect(gw.port, "127.0.0.1")
        s.on("error", () => {})
        s.resume()
        sockets.push(s)
        await new Promise<void>((resolve) => s.once("connect", () => resolve()))
      }
      return sockets
    }
    const closedWithin = (s: Socket, ms: number) =>
      Promise.race([
        new Promise<boolean>((resolve) => s.once("close", () => resolve(true))),
        sleep(ms).then(() => false),
      ])

    const direct = await gatewayWith({ tcpMaxConnectionsPerAddress: 3 })
    const held = await openRaw(direct, 4)
    try {
      expect(await closedWithin(held[3] as Socket, 2_000)).toBe(true)
      expect(held.slice(0, 3).every((s) => !s.destroyed)).toBe(true)
      expect((await admissionRejections(direct)).get("tcp_per_address")).toBe(1)
    } finally {
      for (const s of held) s.destroy()
    }

    const proxied = await gatewayWith({ tcpMaxConnectionsPerAddress: 3, trustedProxies: "127.0.0.1" })
    const through = await openRaw(proxied, 4)
    try {
      expect(await closedWithin(through[3] as Socket, 1_000)).toBe(false)
    } finally {
      for (const s of through) s.destroy()
    }
  })

  it("bounds the rate of new connections per address (burst, then WS_CONNECT_RATE_PER_ADDRESS per second)", async () => {
    const gw = await gatewayWith({ wsConnectBurstPerAddress: 3, wsConnectRatePerAddress: 1 })
    for (let i = 0; i < 3; i++) (await admitted(gw)).close()
    const r = await refused(gw)
    expect(r.status).toBe(429)
    expect(r.body).toMatchObject({ _tag: "ConnectionLimit", reason: "rate" })
    expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
    expect((await admissionRejections(gw)).get("rate")).toBe(1)
    // A token comes back within a second.
    await waitFor(async () => (await upgrade(gw)).ok, 3_000, "a refilled token", 250)
  })
})

describe("client address", () => {
  const opened = (logs: ReadonlyArray<Record<string, unknown>>) =>
    logs.filter((l) => l.message === "connection opened").map((l) => l.remote)

  it("comes from X-Forwarded-For when the peer is a trusted proxy: counted and logged per client", async () => {
    const logs: Array<Record<string, unknown>> = []
    const gw = await gatewayWith({ trustedProxies: "127.0.0.0/8, ::1", wsMaxConnectionsPerAddress: 1 }, logs)
    // The client wrote a spoofed entry first; the proxy appended the address it saw.
    await admitted(gw, { "x-forwarded-for": "10.9.9.9, 203.0.113.7" })
    await admitted(gw, { "x-forwarded-for": "203.0.113.8" })
    const r = await refused(gw, { "x-forwarded-for": "198.51.100.1, 203.0.113.7" })
    expect(r.body).toMatchObject({ reason: "per_address" })
    await waitFor(() => opened(logs).length === 2, 5_000, "two connection-opened lines")
    expect(opened(logs).sort()).toEqual(["203.0.113.7", "203.0.113.8"])
  })

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const logs: Array<Record<string, unknown>> = []
    const gw = await gatewayWith({ trustedProxies: "10.0.0.0/8", wsMaxConnectionsPerAddress: 1 }, logs)
    await admitted(gw, { "x-forwarded-for": "203.0.113.7" })
    const r = await refused(gw, { "x-forwarded-for": "203.0.113.8" })
    expect(r.body).toMatchObject({ reason: "per_address" })
    await waitFor(() => opened(logs).length === 1, 5_000, "a connection-opened line")
    expect(opened(logs)).toEqual(["127.0.0.1"])
  })

  it("is the rightmost address that is not a trusted proxy (IPv4 and IPv6, addresses and CIDRs)", () => {
    const proxies = trustedProxies("10.0.0.0/8, 192.168.1.1, fd00::/8, 2001:db8::1")
    expect(clientAddressOf(proxies, "10.1.2.3", "203.0.113.7")).toBe("203.0.113.7")
    expect(clientAddressOf(proxies, "::ffff:10.1.2.3", "1.1.1.1, 203.0.113.7, 192.168.1.1")).toBe(
      "203.0.113.7",
    )
    expect(clientAddressOf(proxies, "fd12::5", "2001:db8::9, 2001:db8::1")).toBe("2001:db8::9")
    // Not a trusted peer: the header proves nothing.
    expect(clientAddressOf(proxies, "203.0.113.50", "1.2.3.4")).toBe("203.0.113.50")
    // Every hop trusted: the leftmost is the best known.
    expect(clientAddressOf(proxies, "10.0.0.1", "10.0.0.2, 10.0.0.3")).toBe("10.0.0.2")
    // Garbage stops the walk at the trusted hop that wrote it.
    expect(clientAddressOf(proxies, "10.0.0.1", "1.2.3.4, nonsense")).toBe("10.0.0.1")
    expect(clientAddressOf(trustedProxies(""), "10.0.0.1", "1.2.3.4")).toBe("10.0.0.1")
  })

  it("reads an entry with a port or in brackets as its address, so clients behind a proxy that writes ports stay apart", () => {
    const proxies = trustedProxies("10.0.0.0/8, fd00::/8")
    expect(clientAddressOf(proxies, "10.1.2.3", "203.0.113.7:53211")).toBe("203.0.113.7")
    expect(clientAddressOf(proxies, "10.1.2.3", "[2001:db8::1]:443")).toBe("2001:db8::1")
    expect(clientAddressOf(proxies, "10.1.2.3", "[2001:db8::1]")).toBe("2001:db8::1")
    expect(clientAddressOf(proxies, "10.1.2.3", "[::ffff:198.51.100.4]:80")).toBe("198.51.100.4")
    // A bare IPv6 address is read whole: a trailing group is part of the address, not a port.
    expect(clientAddressOf(proxies, "10.1.2.3", "2001:db8::1:443")).toBe("2001:db8::1:443")
    // Trusted hops with ports are recognised and skipped like the bare ones.
    expect(clientAddressOf(proxies, "10.1.2.3", "198.51.100.9:1000, 10.0.0.7:8080, [fd00::2]:443")).toBe(
      "198.51.100.9",
    )
    // Two clients behind the same proxy are two keys.
    expect(admissionKeyOf(clientAddressOf(proxies, "10.1.2.3", "203.0.113.7:1") ?? "")).not.toBe(
      admissionKeyOf(clientAddressOf(proxies, "10.1.2.3", "203.0.113.8:1") ?? ""),
    )
  })

  it("never lets a client choose its address with an entry that names none: it is attributed to the trusted hop that wrote it", () => {
    const proxies = trustedProxies("10.0.0.0/8")
    // `unknown` where the client should be: whatever the client wrote to its left is not believed.
    expect(clientAddressOf(proxies, "10.0.0.1", "6.6.6.6, unknown")).toBe("10.0.0.1")
    expect(clientAddressOf(proxies, "10.0.0.1", "6.6.6.6, unknown, 10.0.0.2")).toBe("10.0.0.2")
    for (const junk of [
      "_hidden",
      "203.0.113.7:99999",
      "203.0.113.7:",
      "[2001:db8::1",
      "[2001:db8::1]x",
      "[1.2.3.4]",
      "1.2.3.4:5:6",
    ]) {
      expect(clientAddressOf(proxies, "10.0.0.1", `6.6.6.6, ${junk}`)).toBe("10.0.0.1")
    }
    // Empty entries are no hop: skipped.
    expect(clientAddressOf(proxies, "10.0.0.1", "203.0.113.7, ,")).toBe("203.0.113.7")
  })

  it("counts IPv6 clients per /64", () => {
    expect(admissionKeyOf("2001:db8:1:2:aaaa::1")).toBe(admissionKeyOf("2001:db8:1:2:bbbb::2"))
    expect(admissionKeyOf("2001:db8:1:2::1")).not.toBe(admissionKeyOf("2001:db8:1:3::1"))
    expect(admissionKeyOf("203.0.113.7")).toBe("203.0.113.7")
  })
})

describe("the address table", () => {
  it("forgets an address once it has no connection and its bucket is full again", () => {
    const a = new Admission({ maxTotal: 10, maxPerAddress: 5, ratePerSecond: 10, burst: 2 })
    const s1 = {}
    expect(a.admit(s1, "1.1.1.1", 0)).toBeUndefined()
    a.release(s1)
    a.release(s1)
    expect(a.total).toBe(0)
    a.sweep(50)
    expect(a.trackedAddresses).toBe(1)
    a.sweep(1_000)
    expect(a.trackedAddresses).toBe(0)
  })
})
