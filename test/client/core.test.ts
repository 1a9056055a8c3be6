import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Chunk, Duration, Effect, Either, Random, Schedule } from "effect"
import { backoffSchedule, nominalDelayMillis } from "../../src/client/backoff.js"
import { decodeSingle, sequenceOf, unpackFrame } from "../../src/client/frames.js"
import { checkSequence, lastBeforeConnected } from "../../src/client/sequence.js"
import {
  addTargets,
  emptyDesired,
  reconcile,
  removeTargets,
  subscribeAll,
  toSubscriptionSet,
} from "../../src/client/subscriptions.js"
import { buildUrl, redactUrl } from "../../src/client/url.js"
import { ServerSingle } from "../../src/protocol/server.js"

const ts = "2025-11-11T09:30:00.030Z"
const price = (sequence: number, extra: Record<string, unknown> = {}) => ({
  type: "price_update",
  code: "005930",
  name: "Samsung Electronics",
  price: 73000,
  change: 1000,
  change_percent: 1.39,
  volume: 12345678,
  timestamp: ts,
  sequence,
  ...extra,
})

describe("unpackFrame", () => {
  it("passes a single message through", () => {
    const frame = unpackFrame(JSON.stringify(price(7)))
    expect(Either.getOrThrow(frame)).toEqual({ items: [price(7)], batchSequence: undefined })
  })

  it("unpacks a batch into its messages, in order", () => {
    const batch = {
      type: "batch",
      batch_size: 3,
      messages: [price(4), price(5), price(6)],
      timestamp: ts,
      sequence: 6,
    }
    const frame = Either.getOrThrow(unpackFrame(JSON.stringify(batch)))
    expect(frame.items.map(sequenceOf)).toEqual([4, 5, 6])
    expect(frame.batchSequence).toBe(6)
  })

  it("reports unreadable frames instead of throwing", () => {
    expect(Either.isLeft(unpackFrame("{not json"))).toBe(true)
    expect(Either.isLeft(unpackFrame("[1,2]"))).toBe(true)
    expect(Either.isLeft(unpackFrame("42"))).toBe(true)
    expect(Either.isLeft(unpackFrame('{"type":"batch","batch_size":2}'))).toBe(true)
  })
})

describe("decodeSingle", () => {
  it("types a valid message and keeps snapshot flags", () => {
    const decoded = decodeSingle(price(1, { snapshot: true }), true)
    expect(Either.getOrThrow(decoded)).toMatchObject({ type: "price_update", sequence: 1, snapshot: true })
  })

  it("rejects a message that breaks its Schema when validating", () => {
    expect(Either.isLeft(decodeSingle(price(1, { price: "cheap" }), true))).toBe(true)
    expect(Either.isLeft(decodeSingle({ type: "nope", sequence: 1, timestamp: ts }, true))).toBe(true)
  })

  it("only checks type and sequence without validation", () => {
    expect(Either.isRight(decodeSingle(price(1, { price: "cheap" }), false))).toBe(true)
    expect(Either.isLeft(decodeSingle({ type: "nope", sequence: 1 }, false))).toBe(true)
    expect(Either.isLeft(decodeSingle({ type: "pong" }, false))).toBe(true)
  })

  // Generated from the server's Schema: a message type added to the protocol reaches SDK users
  // whether or not they validate (candle messages once did not without validation).
  it.prop(
    "types every message the server can send, with and without validation",
    [Arbitrary.make(ServerSingle).filter((m) => !("sequence" in m) || m.sequence > 0)],
    ([m]) => {
      const wire: unknown = JSON.parse(JSON.stringify(m))
      expect(Either.getOrThrow(decodeSingle(wire, true)).type).toBe(m.type)
      expect(Either.getOrThrow(decodeSingle(wire, false)).type).toBe(m.type)
    },
  )
})

describe("sequence tracking", () => {
  it("accepts consecutive numbers", () => {
    expect(checkSequence(0, 1)).toEqual({ last: 1, gap: undefined })
    expect(checkSequence(41, 42)).toEqual({ last: 42, gap: undefined })
  })

  it("reports a gap with expected and received, then follows the server", () => {
    expect(checkSequence(10, 14)).toEqual({ last: 14, gap: { expected: 11, received: 14 } })
    expect(checkSequence(14, 15).gap).toBeUndefined()
  })

  it("reports numbers going backwards too", () => {
    expect(checkSequence(10, 3).gap).toEqual({ expected: 11, received: 3 })
  })

  it("continues numbering only for the session being restored", () => {
    expect(lastBeforeConnected(57, "s1", "s1")).toBe(57)
    expect(lastBeforeConnected(57, "s1", "s2")).toBe(0)
    expect(lastBeforeConnected(57, undefined, "s1")).toBe(0)
  })
})

describe("subscriptions", () => {
  it("re-subscribes everything in chunks of at most 100 targets", () => {
    const codes = Array.from({ length: 250 }, (_, i) => String(900000 + i))
    const desired = addTargets(addTargets(emptyDesired, "stock", codes), "market", ["KOSPI"])
    const messages = subscribeAll(desired)
    expect(messages.map((m) => [m.subscription_type, m.targets.length])).toEqual([
      ["stock", 100],
      ["stock", 100],
      ["stock", 50],
      ["market", 1],
    ])
    expect(messages.every((m) => m.type === "subscribe")).toBe(true)
  })

  it("reconciles a restored set with changes made while disconnected", () => {
    let desired = addTargets(emptyDesired, "stock", ["005930", "000660", "035720"])
    desired = removeTargets(desired, "stock", ["000660"])
    const messages = reconcile(desired, { stock: ["005930", "000660"], market: ["KOSPI"] })
    expect(messages).toEqual([
      { type: "subscribe", subscription_type: "stock", targets: ["035720"] },
      { type: "unsubscribe", subscription_type: "stock", targets: ["000660"] },
      { type: "unsubscribe", subscription_type: "market", targets: ["KOSPI"] },
    ])
    expect(reconcile(desired, toSubscriptionSet(desired))).toEqual([])
  })
})

describe("urls", () => {
  it("adds token and session_id for a restore, encoded", () => {
    const url = new URL(buildUrl("ws://localhost:8000/v1/ws", { token: "a.b+c", sessionId: "s-1" }))
    expect(url.searchParams.get("token")).toBe("a.b+c")
    expect(url.searchParams.get("session_id")).toBe("s-1")
    expect(buildUrl("ws://localhost:8000/v1/ws?session_id=old", {})).toBe("ws://localhost:8000/v1/ws")
  })

  it("redacts tokens", () => {
    expect(redactUrl("ws://h/v1/ws?token=secret")).not.toContain("secret")
  })
})

describe("backoff schedule", () => {
  const delaysOf = (options: Parameters<typeof backoffSchedule>[0], n: number, seed: number) =>
    Schedule.run(
      backoffSchedule(options),
      0,
      Array.from({ length: n }, () => undefined),
    ).pipe(
      Effect.map((chunk) => Chunk.toReadonlyArray(chunk).map(Duration.toMillis)),
      Effect.withRandom(Random.make(seed)),
    )

  it.effect("grows exponentially up to the cap without jitter", () =>
    Effect.gen(function* () {
      const delays = yield* delaysOf({ initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0 }, 7, 1)
      expect(delays).toEqual([100, 200, 400, 800, 1000, 1000, 1000])
    }),
  )

  it.effect("keeps every jittered delay within [nominal * (1 - jitter), nominal]", () =>
    Effect.gen(function* () {
      for (const jitter of [0.1, 0.5, 1]) {
        const options = { initialDelay: 50, maxDelay: 5000, factor: 2, jitter }
        for (let seed = 0; seed < 50; seed++) {
          const delays = yield* delaysOf(options, 10, seed)
          delays.forEach((d, n) => {
            const nominal = nominalDelayMillis(n, options)
            expect(d).toBeGreaterThanOrEqual(nominal * (1 - jitter) - 1e-6)
            expect(d).toBeLessThanOrEqual(nominal + 1e-6)
          })
        }
      }
    }),
  )

  it.effect("actually varies with jitter", () =>
    Effect.gen(function* () {
      const a = yield* delaysOf({ jitter: 0.5 }, 5, 1)
      const b = yield* delaysOf({ jitter: 0.5 }, 5, 2)
      expect(a).not.toEqual(b)
    }),
  )

  it.effect("stops after maxAttempts", () =>
    Effect.gen(function* () {
      const delays = yield* delaysOf({ initialDelay: 10, jitter: 0, maxAttempts: 3 }, 10, 1)
      // Schedule.run also emits the output of the step that ended the schedule (a zero delay).
      expect(delays).toEqual([10, 20, 40, 0])
    }),
  )
})
