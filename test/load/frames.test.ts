import { describe, expect, it } from "@effect/vitest"
import { parseFrame, readUint, Sampler, scanFrame } from "../../load/lib/frames.js"

const ts = "2025-11-11T09:30:00.030Z"
const price = (sequence: number, extra = "") =>
  `{"type":"price_update","code":"005930","name":"Samsung Electronics","price":73000,"change":1000,"change_percent":1.39,"volume":12345678,"timestamp":"${ts}"${extra},"sequence":${sequence}}`
const batch = (items: ReadonlyArray<string>, last: number) =>
  `{"type":"batch","batch_size":${items.length},"messages":[${items.join(",")}],"timestamp":"${ts}","sequence":${last}}`

describe("readUint", () => {
  it("reads digits after optional spaces and stops at the first non-digit", () => {
    const buf = Buffer.from('x: 1234,"y"')
    expect(readUint(buf, 2)).toBe(1234)
    expect(readUint(buf, 8)).toBe(-1)
  })
})

describe("scanFrame (no JSON parse)", () => {
  it("counts a batch by its batch_size and takes the envelope's sequence", () => {
    const scan = scanFrame(Buffer.from(batch([price(11), price(12), price(13)], 13)))
    expect(scan).toEqual({ messages: 3, lastSequence: 13, isBatch: true, hasError: false })
  })

  it("counts a single message as one", () => {
    expect(scanFrame(Buffer.from(price(7)))).toEqual({
      messages: 1,
      lastSequence: 7,
      isBatch: false,
      hasError: false,
    })
  })

  it("finds the sequence even when the envelope writes it first", () => {
    const frame = `{"sequence":9,"type":"batch","batch_size":2,"messages":[${price(8)},${price(9)}]}`
    expect(scanFrame(Buffer.from(frame))).toMatchObject({ messages: 2, lastSequence: 9 })
  })

  it("tolerates spaces after colons", () => {
    const frame = `{"type": "batch", "batch_size": 2, "messages": [], "sequence": 42}`
    expect(scanFrame(Buffer.from(frame))).toMatchObject({ messages: 2, lastSequence: 42, isBatch: true })
  })

  it("flags frames holding an error", () => {
    const error = `{"type":"error","code":"RATE_LIMIT_EXCEEDED","message":"x","details":{},"timestamp":"${ts}","sequence":5}`
    expect(scanFrame(Buffer.from(batch([error, price(6)], 6))).hasError).toBe(true)
  })

  it("does not mistake a batch_size deep inside a message for a batch", () => {
    const frame = `{"type":"error","message":"${"x".repeat(100)}","details":{"batch_size":9},"sequence":3}`
    expect(scanFrame(Buffer.from(frame))).toMatchObject({ messages: 1, isBatch: false, lastSequence: 3 })
  })
})

describe("parseFrame (sampled frames)", () => {
  it("unpacks batches and gives event times of non-snapshot market messages only", () => {
    const parsed = parseFrame(batch([price(1), price(2, ',"snapshot":true')], 2))
    expect(parsed?.messages.map((m) => [m.type, m.sequence, m.eventTimeMs])).toEqual([
      ["price_update", 1, Date.parse(ts)],
      ["price_update", 2, undefined],
    ])
    expect(parsed?.nonConsecutive).toBe(false)
  })

  it("reads error codes and subscribed targets, and notices non-consecutive numbers", () => {
    const error = `{"type":"error","code":"SUBSCRIPTION_FAILED","message":"x","details":{},"timestamp":"${ts}","sequence":3}`
    const subscribed = `{"type":"subscribed","subscription_type":"stock","targets":["a","b"],"timestamp":"${ts}","sequence":1}`
    const parsed = parseFrame(batch([subscribed, error], 3))
    expect(parsed?.messages.map((m) => [m.errorCode, m.subscribedTargets, m.eventTimeMs])).toEqual([
      [undefined, 2, undefined],
      ["SUBSCRIPTION_FAILED", 0, undefined],
    ])
    expect(parsed?.nonConsecutive).toBe(true)
  })

  it("returns undefined for frames that are not JSON objects", () => {
    expect(parseFrame("{oops")).toBeUndefined()
    expect(parseFrame("[1]")).toBeUndefined()
  })
})

describe("Sampler", () => {
  it("selects exactly one frame in N", () => {
    const sampler = new Sampler(10)
    const picks = Array.from({ length: 1000 }, () => sampler.next()).filter(Boolean).length
    expect(picks).toBe(100)
    const all = new Sampler(1)
    expect([all.next(), all.next()]).toEqual([true, true])
  })
})
