/**
 * The AsyncAPI document (src/protocol/asyncapi.ts): valid AsyncAPI 3.0 by the AsyncAPI project's
 * own parser, every message of the Schemas in it under its `type`, every token rejection reason of
 * the code in it and in docs/protocol.md, the same in docs/asyncapi.yaml and at
 * `GET /asyncapi.json` of a running gateway; and `/docs` compressed.
 */
import { readFile } from "node:fs/promises"
import * as http from "node:http"
import { gunzipSync } from "node:zlib"
import { type AsyncAPIDocumentInterface, DiagnosticSeverity, Parser } from "@asyncapi/parser"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { parse } from "yaml"
import { asyncApiDocument } from "../../src/protocol/asyncapi.js"
import { CLIENT_MESSAGE_TYPES } from "../../src/protocol/client.js"
import { CloseCode, TOKEN_REJECTIONS } from "../../src/protocol/errors.js"
import { Batch, ServerSingle } from "../../src/protocol/server.js"
import { type RunningGateway, startGateway } from "../support/gateway.js"

/** The document as JSON carries it (what the file and the endpoint hold). */
const generated: unknown = JSON.parse(JSON.stringify(asyncApiDocument()))
const serverTypes = [
  ...ServerSingle.members.map((m) => m.fields.type.literals[0]),
  Batch.fields.type.literals[0],
]

let parsed: AsyncAPIDocumentInterface
let gw: RunningGateway
beforeAll(async () => {
  const { document, diagnostics } = await new Parser().parse(JSON.stringify(generated))
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error)
  expect(errors.map((e) => `${e.path.join(".")}: ${e.message}`)).toEqual([])
  if (document === undefined) throw new Error("the parser returned no document")
  parsed = document
  gw = await startGateway()
})
afterAll(() => gw?.stop())

interface Raw {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly bytes: Buffer
}

/** Raw bytes through node:http (fetch would inflate gzip transparently and hide the encoding). */
const get = (path: string, acceptEncoding: string) =>
  new Promise<Raw>((resolve, reject) => {
    http
      .get(`${gw.httpUrl}${path}`, { headers: { "accept-encoding": acceptEncoding } }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes: Buffer.concat(chunks) }),
        )
      })
      .on("error", reject)
  })

describe("the AsyncAPI document", () => {
  it("is AsyncAPI 3.0 that the AsyncAPI parser reads without an error", () => {
    expect(parsed.version()).toBe("3.0.0")
    expect(
      parsed
        .channels()
        .all()
        .map((c) => c.address()),
    ).toEqual(["/v1/ws"])
    const server = parsed.servers().all()[0]
    expect(server?.protocol()).toBe("ws")
    expect(server?.host()).toBe("{host}")
  })

  it("sends every client message type and receives every server message type and the batch", () => {
    const names = (operation: string) =>
      parsed
        .operations()
        .get(operation)
        ?.messages()
        .all()
        .map((m) => m.name())
    expect(parsed.operations().get("send")?.action()).toBe("send")
    expect(names("send")).toEqual([...CLIENT_MESSAGE_TYPES])
    expect(parsed.operations().get("receive")?.action()).toBe("receive")
    expect(names("receive")).toEqual(serverTypes)
    expect(serverTypes).toContain("batch")
  })

  it("gives each message the payload whose `type` is its name", () => {
    for (const message of parsed.messages().all()) {
      const type = message.payload()?.properties()?.type
      expect(type?.enum(), message.name() ?? "").toEqual([message.name()])
    }
    expect(parsed.messages().all()).toHaveLength(CLIENT_MESSAGE_TYPES.length + serverTypes.length)
  })

  it("lets a batch hold any single server message, by reference", () => {
    const items = parsed.messages().get("batch")?.payload()?.properties()?.messages?.items()
    const alternatives = Array.isArray(items) ? [] : (items?.anyOf() ?? [])
    const types = alternatives.map((s) => s.properties()?.type?.enum()?.[0])
    expect(types).toEqual(serverTypes.filter((t) => t !== "batch"))
  })

  it("documents the query parameters as ws bindings, and every close code", () => {
    const ws = parsed.channels().get("ws")?.bindings().get("ws")
    expect(ws?.value()).toMatchObject({
      method: "GET",
      query: { properties: { token: { type: "string" }, session_id: { type: "string" } } },
    })
    const closeCodes = parsed.extensions().get("x-close-codes")?.value<ReadonlyArray<{ code: number }>>()
    expect(closeCodes?.map((c) => c.code)).toEqual(Object.values(CloseCode))
    for (const code of Object.values(CloseCode)) expect(parsed.info().description()).toContain(`| ${code} |`)
  })

  it("describes every token rejection reason of the code, with the key sources it applies to", () => {
    const reasons = parsed
      .extensions()
      .get("x-token-reasons")
      ?.value<ReadonlyArray<{ reason: string; when: string; sources: ReadonlyArray<string> }>>()
    expect(reasons?.map((r) => r.reason)).toEqual([...TOKEN_REJECTIONS])
    for (const r of reasons ?? []) {
      expect(r.when, r.reason).not.toBe("")
      for (const s of r.sources) expect(["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL"]).toContain(s)
    }
    for (const reason of TOKEN_REJECTIONS) expect(parsed.info().description()).toContain(`| \`${reason}\` |`)
  })

  it("is what docs/asyncapi.yaml holds", async () => {
    const file = parse(await readFile(new URL("../../docs/asyncapi.yaml", import.meta.url), "utf8"))
    expect(file, "docs/asyncapi.yaml is out of date: run `npm run asyncapi` and commit it").toEqual(generated)
  })
})

describe("docs/protocol.md", () => {
  it("has a row for every token rejection reason the code can give, and none it cannot", async () => {
    const doc = await readFile(new URL("../../docs/protocol.md", import.meta.url), "utf8")
    // From the "Token reasons" paragraph to the next bold paragraph title.
    const start = doc.indexOf("**Token reasons**")
    expect(start, "docs/protocol.md has no **Token reasons** table").toBeGreaterThan(-1)
    const end = doc.indexOf("\n**", start + 1)
    const section = doc.slice(start, end === -1 ? undefined : end)
    // The reasons each row names in its first cell, below the table's header.
    const body = section
      .split("\n")
      .filter((line) => line.startsWith("|"))
      .slice(2)
    const rows = body.flatMap((line) =>
      [...(line.split("|")[1] ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1]),
    )
    const missing = TOKEN_REJECTIONS.filter((r) => !rows.includes(r))
    const unknown = rows.filter((r) => r !== "different_user" && !TOKEN_REJECTIONS.some((t) => t === r))
    expect({ missing, unknown }).toEqual({ missing: [], unknown: [] })
  })
})

describe("GET /asyncapi.json", () => {
  it("answers the document as JSON, gzipped for a client that accepts it", async () => {
    const plain = await get("/asyncapi.json", "identity")
    expect(plain.status).toBe(200)
    expect(plain.headers["content-type"]).toBe("application/json")
    expect(plain.headers["content-encoding"]).toBeUndefined()
    expect(JSON.parse(plain.bytes.toString("utf8"))).toEqual(generated)

    const gzipped = await get("/asyncapi.json", "gzip, deflate, br")
    expect(gzipped.headers["content-encoding"]).toBe("gzip")
    expect(gzipped.headers.vary).toBe("accept-encoding")
    expect(gzipped.bytes.length).toBeLessThan(plain.bytes.length / 4)
    expect(gunzipSync(gzipped.bytes).equals(plain.bytes)).toBe(true)
  })
})

describe("GET /docs", () => {
  it("serves the OpenAPI page gzipped for a client that accepts it, the same page as uncompressed", async () => {
    const plain = await get("/docs", "identity")
    expect(plain.status).toBe(200)
    expect(plain.headers["content-type"]).toMatch(/^text\/html/)
    expect(plain.headers["content-encoding"]).toBeUndefined()
    expect(plain.bytes.toString("utf8")).toContain("quotecast HTTP API")

    const gzipped = await get("/docs", "gzip")
    expect(gzipped.status).toBe(200)
    expect(gzipped.headers["content-encoding"]).toBe("gzip")
    expect(gzipped.headers.vary).toBe("accept-encoding")
    expect(gzipped.bytes.length).toBeLessThan(plain.bytes.length / 2)
    expect(gunzipSync(gzipped.bytes).equals(plain.bytes)).toBe(true)
  })
})
