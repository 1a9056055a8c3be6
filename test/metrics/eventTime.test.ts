/**
 * The event time the delivery histogram reads: set where an event is encoded, and recovered from
 * the body where it arrives from another instance through Redis; answers and snapshots carry none.
 */
import { describe, expect, it } from "@effect/vitest"
import { decodeWire, encodeWire } from "../../src/cluster/codec.js"
import { encodeEvent } from "../../src/pipeline/MarketPipeline.js"
import { asSnapshot, eventTimeOf } from "../../src/protocol/encode.js"
import { samsungTrade } from "../support/events.js"

const event = samsungTrade
const at = Date.parse("2026-12-05T09:00:01.250Z")

describe("a market event's time on its way to the socket", () => {
  it("is set when the pipeline encodes the event", () => {
    expect(encodeEvent(event).msg.at).toBe(at)
  })

  it("is read back from the body when the event comes from another instance", () => {
    const { msg } = encodeEvent(event)
    const wire = decodeWire(encodeWire("other-instance", { key: msg.key, body: msg.body }))
    expect(wire?.msg.at).toBe(at)
    expect(eventTimeOf(msg.body)).toBe(at)
  })

  it("is absent from unkeyed messages (answers, alerts) and from snapshots", () => {
    const wire = decodeWire(
      encodeWire("other-instance", { key: undefined, body: '{"type":"alert","id":"a"' }),
    )
    expect(wire?.msg.at).toBeUndefined()
    expect(asSnapshot(encodeEvent(event).msg).at).toBeUndefined()
    expect(eventTimeOf('{"type":"pong"')).toBeNaN()
  })
})
