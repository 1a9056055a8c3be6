/**
 * Which messages are one object for many connections (`Outgoing.shared`): what the outbound
 * budget counts as a reference in each outbox that queues it rather than as a copy. Market events
 * as fanned out are shared, and so are the snapshot copies of them; whatever is made for one
 * connection, or decoded per request, is not, and is counted in full.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  decodeWire,
  encodeFeedLine,
  encodeSnapshotValue,
  encodeWire,
  FeedLine,
  SnapshotValue,
} from "../../src/cluster/codec.js"
import { pongMsg, subscribedMsg } from "../../src/connection/messages.js"
import { encodeEvent } from "../../src/pipeline/MarketPipeline.js"
import { asSnapshot } from "../../src/protocol/encode.js"
import { samsungTrade } from "../support/events.js"

const event = samsungTrade

describe("messages shared by many connections", () => {
  it("are the market events the pipeline encodes, and their snapshot copies", () => {
    const { msg } = encodeEvent(event)
    expect(msg.shared).toBe(true)
    expect(asSnapshot(msg).shared).toBe(true)
    // One copy per message, whoever subscribes.
    expect(asSnapshot(msg)).toBe(asSnapshot(msg))
  })

  it("are the messages that arrive from another instance, fanned out on this one", () => {
    const { msg } = encodeEvent(event)
    expect(decodeWire(encodeWire("other", msg))?.msg.shared).toBe(true)
    expect(decodeWire(encodeWire("other", { key: undefined, body: '{"type":"alert"' }))?.msg.shared).toBe(
      true,
    )
    const line = FeedLine.decode(encodeFeedLine("stock:005930", "price", msg))
    expect(Either.map(line, (l) => l.msg.shared)).toEqual(Either.right(true))
  })

  it("are not what a snapshot store decodes per request, nor a connection's own answers", () => {
    const { msg } = encodeEvent(event)
    const fromRedis = SnapshotValue.decode(encodeSnapshotValue(msg))
    expect(Either.map(fromRedis, (m) => m.shared === true)).toEqual(Either.right(false))
    if (Either.isRight(fromRedis)) expect(asSnapshot(fromRedis.right).shared).not.toBe(true)
    for (const answer of [pongMsg(1, "t"), subscribedMsg("subscribed", "stock", ["005930"], "t")])
      expect(answer.shared).not.toBe(true)
  })
})
