/**
 * Hostile frames over real sockets (docs/limits.md, issue 12 point 2): whatever a
 * frame holds, it gets one INVALID_MESSAGE under 4 KB and the connection stays usable; a client
 * that sends costly frames at its message rate runs out of budget (RATE_LIMIT_EXCEEDED, then
 * 1008) instead of holding the event loop; and every other client keeps being answered.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import {
  connect,
  type Message,
  type MessageOf,
  ofType,
  sleep,
  type TestClient,
  useGateway,
} from "../support/gateway.js"

const KB = 1024

const SUBSCRIBE_HEAD = '{"type":"subscribe","subscription_type":"stock","targets":'
const subscribeOf = (targets: string) => `${SUBSCRIBE_HEAD}${targets}}`
/** `unit` repeated until the text is about `size` characters. */
const fill = (head: string, unit: string, tail: string, size: number) =>
  head + unit.repeat(Math.floor((size - head.length - tail.length) / unit.length)) + tail

/** The worst frame: a 64 KB subscribe whose targets are tens of thousands of numbers. */
const numbersFrame = fill(`${SUBSCRIBE_HEAD}[0`, ",0", "]}", 64 * KB)

const hostile: ReadonlyArray<readonly [string, string, string]> = [
  ["a 64 KB subscribe of 32,000 numbers", numbersFrame, "array_too_long"],
  [
    "a 64 KB subscribe of 10,000 strings",
    fill(`${SUBSCRIBE_HEAD}["a"`, ',"a"', "]}", 64 * KB),
    "array_too_long",
  ],
  ["100,000-deep nesting", `${"[".repeat(100_000)}${"]".repeat(100_000)}`, "too_deep"],
  [
    "100,000-deep nesting inside a field",
    `{"type":"ping","id":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
    "too_deep",
  ],
  ["targets nested 30,000 deep", subscribeOf(`${"[".repeat(30_000)}${"]".repeat(30_000)}`), "too_deep"],
  [
    "a ping with 6,500 distinct extra keys",
    `{"type":"ping",${Array.from({ length: 6500 }, (_, i) => `"k${i}":1`).join(",")}}`,
    "too_many_members",
  ],
  ["a 64 KB unknown type", JSON.stringify({ type: "x".repeat(64 * KB - 20) }), "unknown_type"],
  [
    "an unknown type that is a 60 KB object",
    JSON.stringify({ type: { a: "x".repeat(60 * KB) } }),
    "unknown_type",
  ],
  [
    "100 targets of 640 characters",
    JSON.stringify({
      type: "subscribe",
      subscription_type: "stock",
      targets: Array.from({ length: 100 }, () => "y".repeat(640)),
    }),
    "invalid_fields",
  ],
]

const isInvalid = (m: Message): m is MessageOf<"error"> => m.type === "error" && m.code === "INVALID_MESSAGE"

/** Sends a ping with a fresh id and waits for its pong. */
let pingId = 0
const pingPong = async (client: TestClient, timeoutMs = 5000) => {
  const id = `p${++pingId}`
  client.send({ type: "ping", id })
  return client.next((m) => m.type === "pong" && m.id === id, timeoutMs)
}

describe("hostile frames, one at a time", () => {
  // Frames up to 256 KB, so that a 100,000-deep nesting (200 KB) reaches the decoder.
  const gw = useGateway({ maxPayloadBytes: 256 * KB })

  it.each(hostile)(
    "%s gets one INVALID_MESSAGE under 4 KB, and the connection still answers a ping",
    async (_, frame, reason) => {
      const { client } = await connect(gw)
      client.sendRaw(frame)
      const answer = await client.next(isInvalid)
      expect(answer.details.reason).toBe(reason)
      expect(Buffer.byteLength(JSON.stringify(answer))).toBeLessThan(4096)
      expect((await pingPong(client)).type).toBe("pong")
      expect(client.messages.filter(isInvalid)).toHaveLength(1)
      await client.close()
    },
  )

  it("counts frames refused by a limit, by reason, and the input cost charged", async () => {
    const { client } = await connect(gw)
    client.sendRaw(numbersFrame)
    await client.next(isInvalid)
    client.sendRaw(`${"[".repeat(1000)}${"]".repeat(1000)}`)
    await client.next(isInvalid)
    await client.close()
    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text()
    const value = (series: string) => Number(new RegExp(`^${series} (\\d+)$`, "m").exec(metrics)?.[1])
    expect(value('quotecast_ws_frames_rejected_total\\{reason="array_too_long"\\}')).toBeGreaterThanOrEqual(1)
    expect(value('quotecast_ws_frames_rejected_total\\{reason="too_deep"\\}')).toBeGreaterThanOrEqual(1)
    // 64 KB costs 16 tokens, and an invalid frame 4 more.
    expect(value("quotecast_ws_input_cost_total")).toBeGreaterThanOrEqual(20)
  })
})

describe("arbitrary frames", () => {
  // A high rate limit: this is about answers, not budget.
  const gw = useGateway({ rateLimit: 100_000, maxPayloadBytes: 256 * KB })

  /** JSON texts big in every way a value can be: long strings, long arrays, deep nesting, wide objects. */
  const big = FastCheck.oneof(
    FastCheck.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    FastCheck.tuple(
      FastCheck.string({ minLength: 1, maxLength: 3 }),
      FastCheck.integer({ min: 1, max: 10_000 }),
    ).map(([s, n]) => JSON.stringify(s.repeat(n))),
    FastCheck.integer({ min: 0, max: 10_000 }).map((n) =>
      JSON.stringify(Array.from({ length: n }, (_, i) => i)),
    ),
    FastCheck.integer({ min: 1, max: 30_000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`),
    FastCheck.integer({ min: 0, max: 5_000 }).map((n) =>
      JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
    ),
  )
  const field = (name: string, value: FastCheck.Arbitrary<string>) =>
    FastCheck.option(
      value.map((v) => `"${name}":${v}`),
      { nil: undefined },
    )
  const frame = FastCheck.oneof(
    FastCheck.tuple(
      field(
        "type",
        FastCheck.oneof(FastCheck.constantFrom('"subscribe"', '"unsubscribe"', '"ping"', '"reconnect"'), big),
      ),
      field("subscription_type", big),
      field("targets", big),
      field("id", big),
      field("session_id", big),
    ).map((fields) => `{${fields.filter((f) => f !== undefined).join(",")}}`),
    big,
  ).filter((text) => Buffer.byteLength(text) <= 256 * KB) // larger frames are closed with 1009, by design

  it("answers each with an INVALID_MESSAGE under 4 KB, or as a valid message, and stays usable", async () => {
    // One connection for all runs, replaced only if a frame closed it (which fails that run).
    let client = (await connect(gw)).client
    await FastCheck.assert(
      FastCheck.asyncProperty(frame, async (text) => {
        if (client.ws.readyState !== client.ws.OPEN) client = (await connect(gw)).client
        const from = client.messages.length
        client.sendRaw(text)
        await pingPong(client)
        for (const m of client.messages.slice(from).filter(isInvalid))
          expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(4096)
      }),
      { numRuns: 40 },
    )
    await client.close()
  }, 60_000)
})

describe("a flood of costly frames at the message rate", () => {
  const gw = useGateway({ rateLimit: 100 })

  it("runs out of budget: RATE_LIMIT_EXCEEDED at most once a second, then 1008, while another client is answered", async () => {
    const { client: attacker } = await connect(gw)
    const { client: observer } = await connect(gw)
    let closedWith: number | undefined
    void attacker.closed.then((c) => {
      closedWith = c.code
    })
    const started = Date.now()
    // 100 frames a second (RATE_LIMIT) of the worst frame, for at most 25 s; paced by the clock,
    // so that a late timer on a busy machine is caught up rather than slowing the flood.
    let sent = 0
    const flood = (async () => {
      while (closedWith === undefined && sent < 2500 && Date.now() - started < 25_000) {
        const due = Math.floor((Date.now() - started) / 10) + 1
        while (sent < due && attacker.ws.readyState === attacker.ws.OPEN) {
          attacker.sendRaw(numbersFrame)
          sent++
        }
        await sleep(20)
      }
    })()
    // The observer is answered throughout (liveness; delays are the benchmark's to measure).
    let pongs = 0
    while (closedWith === undefined && Date.now() - started < 25_000) {
      await pingPong(observer)
      pongs++
      await sleep(100)
    }
    await flood
    const elapsedS = (Date.now() - started) / 1000
    expect(closedWith).toBe(1008)
    const limited = ofType(attacker.messages, "error").filter((m) => m.code === "RATE_LIMIT_EXCEEDED")
    expect(limited.length).toBeGreaterThanOrEqual(1)
    expect(limited.length).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1)
    expect(limited[0]?.details).toEqual({ rate_limit: 100 })
    // Charged by cost: of the frames sent, only a small share was decoded and answered.
    const invalid = attacker.messages.filter(isInvalid).length
    expect(invalid).toBeLessThan(sent / 5)
    expect(pongs).toBeGreaterThan(0)
    expect((await pingPong(observer)).type).toBe("pong")
    await observer.close()
  }, 60_000)
})
