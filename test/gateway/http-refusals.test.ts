/**
 * The body limits answer before any endpoint runs (docs/limits.md), and the API
 * document says so: every endpoint lists 400 InvalidJson, 413 PayloadTooLarge and 503 ServerBusy
 * (`/docs`), and what the gateway answers decodes with those same Schemas.
 */
import * as OpenApi from "@effect/platform/OpenApi"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { InvalidJson, PayloadTooLarge, QuotecastApi } from "../../src/http/Api.js"
import { type RunningGateway, signToken, startGateway } from "../support/gateway.js"

const MAX_BODY = 2_048

let gw: RunningGateway
let token: string
beforeAll(async () => {
  gw = await startGateway({ httpMaxBodyBytes: MAX_BODY })
  token = await signToken({ sub: "refusals-user" })
})
afterAll(() => gw.stop())

const postAlert = (body: string) =>
  fetch(`${gw.httpUrl}/v1/alerts`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  })

describe("refusals of the body limits", () => {
  it("are listed for every endpoint of the API document", () => {
    const spec = OpenApi.fromApi(QuotecastApi)
    const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
      (["get", "post", "delete"] as const).flatMap((method) => {
        const op = item[method]
        return op === undefined
          ? []
          : [{ at: `${method.toUpperCase()} ${path}`, statuses: Object.keys(op.responses) }]
      }),
    )
    expect(operations.length).toBeGreaterThan(5)
    for (const { at, statuses } of operations) {
      expect({ at, statuses: statuses.filter((s) => ["400", "413", "503"].includes(s)) }).toEqual({
        at,
        statuses: ["400", "413", "503"],
      })
    }
  })

  it("a body over the limit is answered 413 with the documented PayloadTooLarge", async () => {
    const res = await postAlert(JSON.stringify({ code: "005930", pad: "x".repeat(MAX_BODY) }))
    expect(res.status).toBe(413)
    const answer = Schema.decodeUnknownSync(PayloadTooLarge)(await res.json())
    expect(answer.message).toContain(`${MAX_BODY} bytes`)
  })

  it("malformed JSON is answered 400 with the documented InvalidJson", async () => {
    const res = await postAlert('{"code": "005930",')
    expect(res.status).toBe(400)
    const answer = Schema.decodeUnknownSync(InvalidJson)(await res.json())
    expect(answer.message).toMatch(/^Malformed JSON/)
  })
})
