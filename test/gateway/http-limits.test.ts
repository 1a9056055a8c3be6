/**
 * docs/limits.md, HTTP (issue 12 point 1): every request body is bounded and refused
 * with 413 and a JSON reason without being read past the limit; malformed or deeply nested JSON
 * is a 400 with a JSON reason on every endpoint, never a 500; an ingest request holds at most
 * INGEST_MAX_EVENTS events and describes only its first rejections; the server has header,
 * request and keep-alive timeouts. Over raw sockets where the framing matters.
 */
import { type Socket, connect as tcpConnect } from "node:net"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { IngestRejected, IngestTooLarge } from "../../src/http/Api.js"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import {
  connect,
  ErrorBody,
  ingest,
  priceEvent,
  readJson,
  signToken,
  sleep,
  startGateway,
  useGateway,
  waitFor,
} from "../support/gateway.js"

const MAX_BODY = 4_096
const INGEST_MAX_BODY = 64 * 1024
const MAX_EVENTS = 10
const REPORTED = 3

const gw = useGateway({
  httpMaxBodyBytes: MAX_BODY,
  ingestMaxBodyBytes: INGEST_MAX_BODY,
  httpMaxJsonDepth: 16,
  ingestMaxEvents: MAX_EVENTS,
  ingestMaxReportedRejections: REPORTED,
  handshakeTimeoutMs: 400,
  httpRequestTimeoutMs: 800,
  httpKeepAliveTimeoutMs: 300,
})
let user: string
let publisher: string
beforeAll(async () => {
  user = await signToken({ sub: "limits-user" })
  publisher = await signToken({ sub: "limits-feed", role: "publisher" })
})

interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/**
 * One HTTP exchange over a raw socket: what was written, and the first response parsed from
 * what came back (head and Content-Length body). `closed` resolves when the server closes.
 */
class RawHttp {
  private received = Buffer.alloc(0)
  readonly closed: Promise<void>
  private constructor(readonly socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.received = Buffer.concat([this.received, d])
    })
    // The server may reset a connection it has answered and refused to read further.
    socket.on("error", () => {})
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()))
  }

  static open(port: number): Promise<RawHttp> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect(port, "127.0.0.1", () => resolve(new RawHttp(s)))
      s.once("error", reject)
    })
  }

  write(text: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(text)
  }

  private parse(): RawResponse | undefined {
    const end = this.received.indexOf("\r\n\r\n")
    if (end < 0) return undefined
    const [statusLine = "", ...lines] = this.received.subarray(0, end).toString("latin1").split("\r\n")
    const headers: Record<string, string> = {}
    for (const l of lines) {
      const i = l.indexOf(":")
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
    }
    const length = Number(headers["content-length"] ?? 0)
    const body = this.received.subarray(end + 4)
    if (body.length < length) return undefined
    return {
      status: Number(statusLine.split(" ")[1]),
      headers,
      body: body.subarray(0, length).toString("utf8"),
    }
  }

  /** The response, once it has fully arrived (fails after `timeoutMs`). */
  async response(timeoutMs = 5_000): Promise<RawResponse> {
    let r: RawResponse | undefined
    await waitFor(
      () => {
        r = this.parse()
        return r !== undefined
      },
      timeoutMs,
      "an HTTP response",
      10,
    )
    if (r === undefined) throw new Error("unreachable")
    return r
  }

  /** Whatever arrived, as text. */
  text(): string {
    return this.received.toString("latin1")
  }
}

const head = (lines: ReadonlyArray<string>) => `${lines.join("\r\n")}\r\n\r\n`

const postJson = (path: string, body: string, token?: string) =>
  fetch(`${gw.httpUrl}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body,
  })

const rejections = async () => (await gw.runtime.runPromise(GatewayStats)).httpRejections

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`

describe("body size", () => {
  it("answers 413 with a JSON reason to a declared oversize body before any of it is sent, and closes", async () => {
    const before = (await rejections()).get("body_too_large") ?? 0
    const c = await RawHttp.open(gw.port)
    c.write(
      head([
        "POST /v1/alerts HTTP/1.1",
        "Host: 127.0.0.1",
        `Authorization: Bearer ${user}`,
        "Content-Type: application/json",
        "Content-Length: 10000000000",
      ]),
    )
    // Not one byte of the 10 GB body is written: the answer must not wait for it.
    const res = await c.response()
    expect(res.status).toBe(413)
    expect(res.headers["content-type"]).toMatch(/application\/json/)
    expect(JSON.parse(res.body)).toMatchObject({ _tag: "PayloadTooLarge" })
    expect(JSON.parse(res.body).message).toContain(String(MAX_BODY))
    expect(res.headers.connection).toBe("close")
    await c.closed
    expect((await rejections()).get("body_too_large")).toBe(before + 1)
  })

  it("does not invite an oversize body with 100 Continue", async () => {
    const c = await RawHttp.open(gw.port)
    c.write(
      head([
        "POST /v1/alerts HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Expect: 100-continue",
        `Content-Length: ${MAX_BODY + 1}`,
      ]),
    )
    const res = await c.response()
    expect(res.status).toBe(413)
    expect(c.text()).not.toContain("100 Continue")
  })

  it("stops reading a chunked body at the limit and answers 413 while the client is still sending", async () => {
    const c = await RawHttp.open(gw.port)
    c.write(
      head([
        "POST /v1/alerts HTTP/1.1",
        "Host: 127.0.0.1",
        `Authorization: Bearer ${user}`,
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
      ]),
    )
    const chunk = "x".repeat(1024)
    // A little past the limit, and the body is never terminated (no zero-length chunk).
    for (let i = 0; i <= MAX_BODY / 1024; i++) c.write(`${(1024).toString(16)}\r\n${chunk}\r\n`)
    const res = await c.response()
    expect(res.status).toBe(413)
    expect(JSON.parse(res.body)).toMatchObject({ _tag: "PayloadTooLarge" })
    await c.closed
  })

  it("applies the ingest limit to /v1/ingest and the general one everywhere else", async () => {
    const events = Array.from({ length: MAX_EVENTS }, () => ({
      ...priceEvent("005930", 74_000),
      name: "x".repeat(400),
    }))
    const body = JSON.stringify({ events })
    expect(body.length).toBeGreaterThan(MAX_BODY)
    expect(body.length).toBeLessThan(INGEST_MAX_BODY)
    expect((await postJson("/v1/ingest", body, publisher)).status).toBe(202)
    expect((await postJson("/v1/alerts", `{"code":"${"x".repeat(MAX_BODY)}"}`, user)).status).toBe(413)
  })

  it("leaves requests within the limit alone", async () => {
    const res = await postJson(
      "/v1/alerts",
      JSON.stringify({ code: "005930", alert_type: "price_above", threshold: 80_000 }),
      user,
    )
    expect(res.status).toBe(201)
  })
  it("answers a GET that carries a small body as if it had none", async () => {
    const c = await RawHttp.open(gw.port)
    c.write(head(["GET /health HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 7"]))
    c.write('{"a":1}')
    expect((await c.response()).status).toBe(200)
  })
})

/** Waits until the gateway holds exactly `bytes` of request bodies (its budget gauge). */
const bodiesHeld = (on: { readonly httpUrl: string }, bytes: number) =>
  waitFor(
    async () => {
      const text = await (await fetch(`${on.httpUrl}/metrics`)).text()
      return text.split("\n").includes(`quotecast_http_body_budget_used_bytes ${bytes}`)
    },
    5_000,
    `${bytes} body bytes held`,
  )

describe("bodies in flight", () => {
  it("answers 503 with Retry-After past HTTP_BODY_BUDGET_BYTES held at once, and accepts again once they are answered", async () => {
    const small = await startGateway({ httpMaxBodyBytes: MAX_BODY, httpBodyBudgetBytes: 6_000 })
    try {
      const alert = JSON.stringify({ code: "005930", alert_type: "price_above", threshold: 80_000 })
      // 3,000 bytes of a 4,000-byte body arrive and are held while the rest is awaited.
      const slow = await RawHttp.open(small.port)
      const padding = " ".repeat(4_000 - alert.length)
      slow.write(
        head([
          "POST /v1/alerts HTTP/1.1",
          "Host: 127.0.0.1",
          `Authorization: Bearer ${user}`,
          "Content-Type: application/json",
          "Content-Length: 4000",
        ]),
      )
      slow.write(`${alert}${padding}`.slice(0, 3_000))
      await bodiesHeld(small, 3_000)
      const url = `${small.httpUrl}/v1/alerts`
      const post = () =>
        fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${user}` },
          body: `${alert}${padding}`,
        })
      const refused = await post()
      expect(refused.status).toBe(503)
      expect(refused.headers.get("retry-after")).toBe("1")
      expect(await readJson(refused, ErrorBody)).toMatchObject({ _tag: "ServerBusy" })
      // The held request completes and is answered: its bytes are given back.
      slow.write(`${alert}${padding}`.slice(3_000))
      expect((await slow.response()).status).toBe(201)
      expect((await post()).status).toBe(201)
    } finally {
      await small.stop()
    }
  })
})

describe("who may send a body", () => {
  /** A request that declares `declared` bytes and sends only `sent` of them, then waits. */
  const stalledPost = async (
    port: number,
    path: string,
    declared: number,
    sent: number,
    extra: ReadonlyArray<string> = [],
  ) => {
    const c = await RawHttp.open(port)
    c.write(
      head([
        `POST ${path} HTTP/1.1`,
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        `Content-Length: ${declared}`,
        ...extra,
      ]),
    )
    if (sent > 0) c.write(" ".repeat(sent))
    return c
  }

  it("answers a body-carrying request without a valid token (or ingest role) 401/403 at once, with the API's own JSON, unread, and closes", async () => {
    const before = new Map(await rejections())
    // The API's own answer to a request without a token (an endpoint with no body).
    const own = await fetch(`${gw.httpUrl}/api/v1/users/me`)
    expect(own.status).toBe(401)
    const ownBody = await readJson(own, ErrorBody)
    const cases = [
      { path: "/v1/ingest", auth: [], status: 401, body: ownBody },
      { path: "/v1/alerts", auth: [], status: 401, body: ownBody },
      {
        path: "/v1/ingest",
        auth: ["Authorization: Bearer not-a-token"],
        status: 401,
        body: { _tag: "Unauthorized", message: expect.stringMatching(/^Invalid token/) },
      },
      // A user token is not enough for ingest, whatever the spelling of the path the router accepts.
      ...["/v1/ingest", "/V1/Ingest/", "//v1/ingest?x=1"].map((path) => ({
        path,
        auth: [`Authorization: Bearer ${user}`],
        status: 403,
        body: { _tag: "Forbidden", message: "Requires role publisher or admin" },
      })),
    ]
    for (const k of cases) {
      // Most of the declared body is still to come: the answer must not wait for it.
      const c = await stalledPost(gw.port, k.path, MAX_BODY, 1_000, k.auth)
      const res = await c.response()
      expect({ path: k.path, status: res.status }).toEqual({ path: k.path, status: k.status })
      expect(JSON.parse(res.body)).toEqual(k.body)
      expect(res.headers.connection).toBe("close")
      await c.closed
    }
    const after = await rejections()
    expect((after.get("unauthorized") ?? 0) - (before.get("unauthorized") ?? 0)).toBe(3)
    expect((after.get("forbidden") ?? 0) - (before.get("forbidden") ?? 0)).toBe(3)
  })

  it("does not invite the body of a request without a token with 100 Continue", async () => {
    const c = await stalledPost(gw.port, "/v1/alerts", 100, 0, ["Expect: 100-continue"])
    expect((await c.response()).status).toBe(401)
    expect(c.text()).not.toContain("100 Continue")
    // With a token the same request is invited, and served.
    const alert = JSON.stringify({ code: "005930", alert_type: "price_above", threshold: 80_000 })
    const ok = await RawHttp.open(gw.port)
    ok.write(
      head([
        "POST /v1/alerts HTTP/1.1",
        "Host: 127.0.0.1",
        `Authorization: Bearer ${user}`,
        "Content-Type: application/json",
        "Expect: 100-continue",
        `Content-Length: ${alert.length}`,
      ]),
    )
    await waitFor(() => ok.text().includes("100 Continue"), 5_000, "100 Continue")
    ok.write(alert)
    await waitFor(() => ok.text().includes("201 Created"), 5_000, "201 Created")
    ok.socket.destroy()
  })

  it("lets no anonymous client hold the body budget: stalled uploads without a token leave room for the publisher", async () => {
    const small = await startGateway({
      ingestMaxBodyBytes: INGEST_MAX_BODY,
      httpBodyBudgetBytes: 4 * INGEST_MAX_BODY,
    })
    try {
      // Each declares a whole ingest body, sends all of it but the last byte, and stalls: together
      // they would hold all but 4 bytes of the budget.
      const stalled = await Promise.all(
        Array.from({ length: 4 }, () =>
          stalledPost(small.port, "/v1/ingest", INGEST_MAX_BODY, INGEST_MAX_BODY - 1),
        ),
      )
      // Each is refused at once (no token), holding nothing of the budget.
      for (const c of stalled)
        await waitFor(() => c.text().includes(" 401 "), 5_000, "401 for a stalled upload")
      await bodiesHeld(small, 0)
      const res = await fetch(`${small.httpUrl}/v1/ingest`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${publisher}` },
        body: JSON.stringify({ events: [priceEvent("005930", 74_000)] }),
      })
      expect(res.status).toBe(202)
      for (const c of stalled) {
        expect((await c.response()).status).toBe(401)
        c.socket.destroy()
      }
    } finally {
      await small.stop()
    }
  })

  it("gives one client address at most HTTP_BODY_BUDGET_PER_ADDRESS_BYTES of the budget (503 with Retry-After), leaving the rest to others", async () => {
    // Clients are told apart by X-Forwarded-For through a trusted proxy (the tests all come from 127.0.0.1).
    const small = await startGateway({
      httpMaxBodyBytes: MAX_BODY,
      httpBodyBudgetBytes: 12_000,
      httpBodyBudgetPerAddressBytes: 5_000,
      trustedProxies: "127.0.0.1",
    })
    try {
      const alert = JSON.stringify({ code: "005930", alert_type: "price_above", threshold: 80_000 })
      const body = `${alert}${" ".repeat(4_000 - alert.length)}`
      // Client A holds 3,000 bytes of a 4,000-byte body.
      const slow = await stalledPost(small.port, "/v1/alerts", 4_000, 0, [
        `Authorization: Bearer ${user}`,
        "X-Forwarded-For: 203.0.113.1",
      ])
      slow.write(body.slice(0, 3_000))
      await bodiesHeld(small, 3_000)
      const post = (client: string) =>
        fetch(`${small.httpUrl}/v1/alerts`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${user}`,
            "x-forwarded-for": client,
          },
          body,
        })
      // A's next 4,000 bytes would pass its share; the budget as a whole has room.
      const refused = await post("203.0.113.1")
      expect(refused.status).toBe(503)
      expect(refused.headers.get("retry-after")).toBe("1")
      expect(await readJson(refused, ErrorBody)).toMatchObject({
        _tag: "ServerBusy",
        message: expect.stringMatching(/from your address/),
      })
      expect(
        (await small.runtime.runPromise(GatewayStats)).httpRejections.get("body_budget_per_address"),
      ).toBe(1)
      // Another client is served meanwhile.
      expect((await post("203.0.113.2")).status).toBe(201)
      // A's held request completes and gives its bytes back: A is served again.
      slow.write(body.slice(3_000))
      expect((await slow.response()).status).toBe(201)
      expect((await post("203.0.113.1")).status).toBe(201)
    } finally {
      await small.stop()
    }
  })
})

describe("JSON shape", () => {
  it("answers deeply nested JSON with 400 and a JSON reason on every endpoint, never 500", async () => {
    const before = (await rejections()).get("json_too_deep") ?? 0
    const deep = `{"code":${nested(1500)},"alert_type":"price_above","threshold":1}`
    for (const [path, token] of [
      ["/v1/alerts", user],
      ["/v1/ingest", publisher],
    ] as const) {
      const res = await postJson(path, deep, token)
      expect(res.status).toBe(400)
      const body = await readJson(res, ErrorBody)
      expect(body._tag).toBe("InvalidJson")
      expect(body.message).toMatch(/nested deeper than 16/)
    }
    expect((await rejections()).get("json_too_deep")).toBe(before + 2)
  })

  it("answers an object of more than HTTP_MAX_JSON_OBJECT_MEMBERS members with 400 before parsing it", async () => {
    const extra = Array.from({ length: 100 }, (_, i) => `"k${i}":0`).join(",")
    const res = await postJson(
      "/v1/alerts",
      `{"code":"005930","alert_type":"price_above","threshold":80000,${extra}}`,
      user,
    )
    expect(res.status).toBe(400)
    expect(await readJson(res, ErrorBody)).toMatchObject({
      _tag: "InvalidJson",
      message: expect.stringMatching(/more than 100 members/),
    })
    expect((await rejections()).get("json_too_many_members")).toBe(1)
  })

  it("checks a body as JSON whatever the case or parameters of its Content-Type, and when it has none", async () => {
    const deep = `{"code":${nested(2_000)},"alert_type":"price_above","threshold":1}`
    for (const contentType of [
      "Application/JSON",
      "APPLICATION/JSON; charset=UTF-8",
      " application/json ",
      "application/vnd.api+json",
      "text/json",
      // The platform parses as JSON any type that merely contains "application/json".
      "text/plain; x=application/json",
      undefined,
    ]) {
      const c = await RawHttp.open(gw.port)
      c.write(
        head([
          "POST /v1/alerts HTTP/1.1",
          "Host: 127.0.0.1",
          `Authorization: Bearer ${user}`,
          ...(contentType === undefined ? [] : [`Content-Type: ${contentType}`]),
          `Content-Length: ${Buffer.byteLength(deep)}`,
        ]),
      )
      c.write(deep)
      const res = await c.response()
      expect({ contentType, status: res.status }).toEqual({ contentType, status: 400 })
      expect(JSON.parse(res.body)).toMatchObject({
        _tag: "InvalidJson",
        message: expect.stringMatching(/nested deeper than 16/),
      })
      c.socket.destroy()
    }
  })

  it("answers malformed JSON with 400 and a JSON reason", async () => {
    for (const text of ['{"events":[', "not json", '{"code": "005930",}']) {
      const res = await postJson("/v1/ingest", text, publisher)
      expect(res.status).toBe(400)
      expect((await readJson(res, ErrorBody))._tag).toBe("InvalidJson")
    }
  })
})

describe("POST /v1/ingest", () => {
  it("refuses more than INGEST_MAX_EVENTS events with 413 saying the limit, publishing none", async () => {
    const res = await ingest(
      gw,
      Array.from({ length: MAX_EVENTS + 1 }, () => priceEvent("005930", 74_000)),
    )
    expect(res.status).toBe(413)
    const body = await readJson(res, Schema.encodedSchema(IngestTooLarge))
    expect(body).toMatchObject({ _tag: "IngestTooLarge", max_events: MAX_EVENTS })
    expect(body.message).toContain(`at most ${MAX_EVENTS}`)
  })

  it("describes only the first rejections and counts them all", async () => {
    const bad = Array.from({ length: MAX_EVENTS }, () => ({ type: "price_update" }))
    const res = await ingest(gw, bad)
    expect(res.status).toBe(400)
    const body = await readJson(res, Schema.encodedSchema(IngestRejected))
    expect(body.rejected).toHaveLength(REPORTED)
    expect(body.rejected.map((r) => r.index)).toEqual([0, 1, 2])
    expect(body.rejected_count).toBe(MAX_EVENTS)
    expect(body.message).toMatch(new RegExp(`^${MAX_EVENTS} of ${MAX_EVENTS} events rejected`))
  })
})

describe("timeouts", () => {
  it("closes a connection whose request headers do not complete within HANDSHAKE_TIMEOUT_MS (408)", async () => {
    const c = await RawHttp.open(gw.port)
    c.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await Promise.race([
      c.closed,
      sleep(4_000).then(() => {
        throw new Error("a connection with unfinished headers was still open after 4 s")
      }),
    ])
    expect(c.text()).toMatch(/^HTTP\/1\.1 408/)
  })

  it("closes a request whose body does not arrive within HTTP_REQUEST_TIMEOUT_MS", async () => {
    const c = await RawHttp.open(gw.port)
    c.write(
      head([
        "POST /v1/alerts HTTP/1.1",
        "Host: 127.0.0.1",
        `Authorization: Bearer ${user}`,
        "Content-Type: application/json",
        "Content-Length: 100",
      ]),
    )
    c.write('{"code":')
    await Promise.race([
      c.closed,
      sleep(5_000).then(() => {
        throw new Error("a request with an unfinished body was still open after 5 s")
      }),
    ])
  })

  it("closes an idle keep-alive connection after HTTP_KEEP_ALIVE_TIMEOUT_MS", async () => {
    const c = await RawHttp.open(gw.port)
    c.write(head(["GET /health HTTP/1.1", "Host: 127.0.0.1"]))
    expect((await c.response()).status).toBe(200)
    await Promise.race([
      c.closed,
      sleep(3_000).then(() => {
        throw new Error("an idle keep-alive connection was still open after 3 s")
      }),
    ])
  })

  it("does not apply to an upgraded WebSocket", async () => {
    const { client } = await connect(gw)
    // An absence: past every HTTP timeout above (the longest is 800 ms), the socket is still served.
    await sleep(1_500)
    client.send({ type: "ping", id: 1 })
    expect((await client.nextOfType("pong")).id).toBe(1)
    await client.close()
  })
})
