/**
 * docs/protocol.md "Client to server": what the decoder accepts, and what INVALID_MESSAGE says
 * about everything else.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck, Schema } from "effect"
import { errorMsg } from "../../src/connection/messages.js"
import { ClientMessage } from "../../src/protocol/client.js"
import { decodeText, MAX_ISSUES } from "../../src/protocol/decode.js"

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

  it("rejects more than 100 targets before decoding: no legal message holds a longer array", () => {
    const targets = Array.from({ length: 101 }, (_, i) => String(i).padStart(6, "0"))
    expect(details(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets }))).toEqual({
      reason: "array_too_long",
      limit: 100,
    })
    // With a looser array limit, Schema's own bound still holds.
    const d = Either.flip(
      decodeText(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets }), {
        maxDepth: 8,
        maxArrayItems: 1000,
        maxObjectMembers: 32,
      }),
    )
    expect(Either.getOrThrow(d).details).toMatchObject({ reason: "invalid_fields" })
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

  it("subscribe and unsubscribe at their bounds: the hand-checked path agrees with Schema", () => {
    const target = (n: number) => "A".repeat(n)
    for (const length of [0, 1, 32, 33])
      for (const count of [0, 1, 100, 101]) {
        const m = {
          type: "subscribe",
          subscription_type: "stock",
          targets: Array.from({ length: count }, () => target(length)),
        }
        const ours = decodeText(JSON.stringify(m))
        const schema = Schema.decodeUnknownEither(ClientMessage)(m)
        expect(Either.isRight(ours)).toBe(Either.isRight(schema))
      }
  })

  it.prop(
    "subscribe and unsubscribe: the hand-checked path decodes exactly what Schema decodes",
    [
      FastCheck.record(
        {
          type: FastCheck.constantFrom("subscribe", "unsubscribe"),
          subscription_type: FastCheck.oneof(
            FastCheck.constantFrom("stock", "market", "sector", "STOCK", ""),
            FastCheck.integer(),
          ),
          targets: FastCheck.oneof(
            FastCheck.array(FastCheck.string({ minLength: 0, maxLength: 34 }), { maxLength: 102 }),
            FastCheck.array(FastCheck.oneof(FastCheck.string({ maxLength: 3 }), FastCheck.integer()), {
              maxLength: 4,
            }),
            FastCheck.string(),
          ),
          extra: FastCheck.string(),
        },
        { requiredKeys: ["type"] },
      ),
    ],
    ([m]) => {
      const text = JSON.stringify(m)
      const ours = decodeText(text)
      const schema = Schema.decodeUnknownEither(ClientMessage)(JSON.parse(text))
      expect(Either.isRight(ours)).toBe(Either.isRight(schema))
      if (Either.isRight(ours) && Either.isRight(schema)) expect(ours.right).toStrictEqual(schema.right)
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

  describe("bounded cost and answer (README: Limits and abuse)", () => {
    /** Bytes of the INVALID_MESSAGE a frame gets on the wire (the body is JSON without its `}`; the sequence number is added when sent). */
    const answerBytes = (text: string): number => {
      const r = decodeText(text)
      if (Either.isRight(r)) return 0
      return Buffer.byteLength(
        `${errorMsg(r.left, new Date().toISOString()).body},"sequence":${Number.MAX_SAFE_INTEGER}}`,
      )
    }
    const subscribeWith = (targets: unknown) =>
      JSON.stringify({ type: "subscribe", subscription_type: "stock", targets })

    it("refuses nesting deeper than the limit, at any depth, without a stack overflow", () => {
      expect(details('{"type":"ping","id":[[[[[[[[1]]]]]]]]}')).toEqual({ reason: "too_deep", limit: 8 })
      expect(details(`${"[".repeat(100_000)}${"]".repeat(100_000)}`)).toEqual({
        reason: "too_deep",
        limit: 8,
      })
      expect(details(`{"type":"ping","id":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`)).toEqual({
        reason: "too_deep",
        limit: 8,
      })
      // Extra fields a little deeper than any message's own are still fine.
      expect(Either.isRight(decodeText('{"type":"ping","meta":{"a":{"b":[1,2]}}}'))).toBe(true)
    })

    it("refuses an object of thousands of members (V8's slowest parse per byte) before parsing it", () => {
      const extra = Array.from({ length: 6500 }, (_, i) => `"k${i}":1`).join(",")
      expect(details(`{"type":"ping",${extra}}`)).toEqual({ reason: "too_many_members", limit: 32 })
      // A few extra fields are still ignored.
      expect(Either.isRight(decodeText('{"type":"ping","client":"sdk","v":2}'))).toBe(true)
    })

    it("refuses a 64 KB subscribe of tens of thousands of numbers with a small answer", () => {
      const text = subscribeWith(Array.from({ length: 32_000 }, () => 0))
      expect(details(text)).toEqual({ reason: "array_too_long", limit: 100 })
      expect(answerBytes(text)).toBeLessThan(4096)
    })

    it("names every wrong field, at most one issue each, however many items are wrong", () => {
      const targets = Array.from({ length: 100 }, () => "y".repeat(640))
      const d = details(JSON.stringify({ type: "subscribe", subscription_type: "crypto", targets }))
      const errors = d.errors as Array<{ path: string; message: string }>
      expect(errors.map((e) => e.path)).toEqual(["subscription_type", "targets.0"])
      // A union's alternatives are one issue.
      expect(errors[0]?.message).toBe(
        'Expected "stock", actual "crypto" | Expected "market", actual "crypto" | Expected "sector", actual "crypto" | Expected "candle", actual "crypto"',
      )
      expect(errors.length).toBeLessThanOrEqual(MAX_ISSUES)
      // The offending value is quoted, cut short.
      for (const e of errors) expect(e.message.length).toBeLessThanOrEqual(201)
    })

    it("cuts an echoed unknown type short, and names a non-string one by its kind", () => {
      const d = details(JSON.stringify({ type: "x".repeat(60_000) }))
      expect(d.reason).toBe("unknown_type")
      expect((d.type as string).length).toBeLessThanOrEqual(65)
      expect(details(JSON.stringify({ type: { a: "x".repeat(60_000) } }))).toMatchObject({
        reason: "unknown_type",
        type_kind: "object",
      })
      expect(answerBytes(JSON.stringify({ type: "😀".repeat(30_000) }))).toBeLessThan(4096)
    })

    /** Frames built from arbitrary values, big ones included, in every field a message may have. */
    const bigString = FastCheck.oneof(
      FastCheck.string({ maxLength: 40 }),
      FastCheck.tuple(
        FastCheck.string({ minLength: 1, maxLength: 4 }),
        FastCheck.integer({ min: 1, max: 5000 }),
      ).map(([s, n]) => s.repeat(n)),
    )
    const anyValue = FastCheck.oneof(
      FastCheck.jsonValue({ maxDepth: 4 }),
      bigString,
      FastCheck.array(bigString, { maxLength: 150 }),
      FastCheck.array(FastCheck.jsonValue({ maxDepth: 2 }), { maxLength: 120 }),
      FastCheck.integer({ min: 1, max: 3000 }).map((n) => JSON.parse(`${"[".repeat(n)}${"]".repeat(n)}`)),
    )
    const frame = FastCheck.record(
      {
        type: FastCheck.oneof(
          FastCheck.constantFrom("subscribe", "unsubscribe", "ping", "refresh_token", "reconnect"),
          anyValue,
        ),
        subscription_type: anyValue,
        targets: anyValue,
        id: anyValue,
        token: anyValue,
        session_id: anyValue,
      },
      { requiredKeys: [] },
    ).map((o) => JSON.stringify(o))

    it.prop(
      "answers every frame, whatever it holds and wherever it is cut, in under 4 KB",
      [frame, FastCheck.option(FastCheck.nat(), { nil: undefined })],
      ([text, cut]) => {
        expect(answerBytes(cut === undefined ? text : text.slice(0, cut % (text.length + 1)))).toBeLessThan(
          4096,
        )
      },
    )
  })
})
