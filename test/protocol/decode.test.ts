/**
 * PROTOCOL.md "Client -> server": what the decoder accepts, and what INVALID_MESSAGE says
 * about everything else.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck, Schema } from "effect"
import { ClientMessage } from "../../src/protocol/client.js"
import { decodeText } from "../../src/protocol/decode.js"

const details = (text: string) => {
  const r = decodeText(text)
  if (Either.isRight(r)) throw new Error(`expected a failure for ${text}`)
  return r.left.details
}

describe("decoding client frames", () => {
  it("accepts every message of the client table", () => {
    const ok = [
      { type: "subscribe", subscription_type: "stock", targets: ["005930"] },
      { type: "unsubscribe", subscription_type: "sector", targets: ["IT", "FINANCE"] },
      { type: "ping" },
      { type: "ping", id: 7 },
      { type: "ping", id: "abc" },
      { type: "refresh_token", token: "x.y.z" },
      { type: "reconnect", session_id: "550e8400-e29b-41d4-a716-446655440000" },
    ]
    for (const m of ok) expect(Either.isRight(decodeText(JSON.stringify(m)))).toBe(true)
  })

  it("names malformed JSON", () => {
    expect(details("{not json")).toMatchObject({ reason: "malformed_json" })
  })

  it("names a non-object and what it was", () => {
    expect(details("[1,2]")).toEqual({ reason: "not_an_object", received: "array" })
    expect(details("42")).toEqual({ reason: "not_an_object", received: "number" })
    expect(details("null")).toEqual({ reason: "not_an_object", received: "null" })
    expect(details('"subscribe"')).toEqual({ reason: "not_an_object", received: "string" })
  })

  it("names a missing or unknown type and lists the known ones", () => {
    expect(details("{}")).toMatchObject({ reason: "missing_type" })
    expect(details('{"type":"subscribed"}')).toMatchObject({
      reason: "unknown_type",
      type: "subscribed",
      expected: ["subscribe", "unsubscribe", "ping", "refresh_token", "reconnect"],
    })
  })

  it("names each field of the wrong shape by its path", () => {
    const d = details('{"type":"subscribe","subscription_type":"crypto","targets":[]}')
    expect(d.reason).toBe("invalid_fields")
    const paths = (d.errors as Array<{ path: string }>).map((e) => e.path)
    expect(paths).toContain("subscription_type")
    expect(paths).toContain("targets")
  })

  it("rejects more than 100 targets", () => {
    const targets = Array.from({ length: 101 }, (_, i) => String(i).padStart(6, "0"))
    expect(details(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets }))).toMatchObject(
      {
        reason: "invalid_fields",
      },
    )
  })

  it("a numeric ping id is a finite number, which is all JSON can carry", () => {
    // Found by the round-trip property below: an id of Infinity was valid to the schema, and
    // JSON.stringify writes it as null.
    expect(Schema.is(ClientMessage)({ type: "ping", id: Number.POSITIVE_INFINITY })).toBe(false)
    expect(Schema.is(ClientMessage)({ type: "ping", id: Number.NaN })).toBe(false)
    expect(Either.isRight(decodeText(JSON.stringify({ type: "ping", id: 1.5e300 })))).toBe(true)
    expect(Either.isRight(decodeText(JSON.stringify({ type: "ping", id: -0.25 })))).toBe(true)
  })

  it.prop(
    "round-trips every valid message generated from the schema",
    [Arbitrary.make(ClientMessage)],
    ([m]) => {
      const r = decodeText(JSON.stringify(m))
      expect(Either.isRight(r)).toBe(true)
    },
  )

  it.prop(
    "never throws on arbitrary text, and every failure carries a reason",
    [FastCheck.string()],
    ([s]) => {
      const r = decodeText(s)
      if (Either.isLeft(r)) expect(typeof r.left.details.reason).toBe("string")
    },
  )
})
