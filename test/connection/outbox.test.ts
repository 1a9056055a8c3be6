/**
 * docs/protocol.md "Slow readers and conflation": state messages conflate per (type, code) in place; everything
 * else is kept, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { Outbox, REF_BYTES } from "../../src/connection/Outbox.js"
import { asSnapshot, type Outgoing } from "../../src/protocol/encode.js"

const price = (code: string, n: number): Outgoing => ({ key: `price_update|${code}`, body: `p${code}:${n}` })
const answer = (n: number): Outgoing => ({ key: undefined, body: `a${n}` })

describe("Outbox", () => {
  it("replaces a waiting state message in place, keeping its position", () => {
    const o = new Outbox()
    o.offer(price("A", 1))
    o.offer(answer(1))
    o.offer(price("B", 1))
    expect(o.offer(price("A", 2))).toBe(true)
    expect(o.drain().map((m) => m.body)).toEqual(["pA:2", "a1", "pB:1"])
  })

  it("sheds all but what it is told to keep, in order, counting only what it kept", () => {
    const o = new Outbox()
    o.offer(price("A", 1))
    o.offer(answer(1))
    o.offer({ key: undefined, body: "alert1" })
    o.offer(price("B", 1))
    o.offer({ key: undefined, body: "alert2" })
    expect(o.shed((body) => body.startsWith("alert"))).toBe(2)
    expect(o.bytes).toBe(12)
    expect(o.unkeyed).toBe(2)
    expect(o.footprint).toBe(2 * REF_BYTES + 12)
    // Its index of keys is gone with them: a new price is appended, not conflated into nothing.
    expect(o.offer(price("A", 2))).toBe(false)
    expect(o.drain().map((m) => m.body)).toEqual(["alert1", "alert2", "pA:2"])
  })

  it("never conflates messages without a key", () => {
    const o = new Outbox()
    o.offer(answer(1))
    o.offer(answer(1))
    expect(o.drain()).toHaveLength(2)
  })

  it("knows how many characters wait in it (what the outbound budget counts)", () => {
    const o = new Outbox()
    o.offer(price("A", 1)) // pA:1
    o.offer(answer(10)) // a10
    o.offer(price("A", 123)) // pA:123 in place of pA:1
    const mark = o.mark()
    o.offer(price("B", 1)) // pB:1
    o.insertAt(mark, [answer(1), answer(2)]) // a1, a2
    expect(o.bytes).toBe(6 + 3 + 4 + 2 + 2)
    expect(o.bytes).toBe(o.drain().reduce((n, m) => n + m.body.length, 0))
    expect(o.bytes).toBe(0)
  })

  it("counts as its footprint a reference for a shared message and a reference plus text for its own", () => {
    const o = new Outbox()
    const shared = (code: string, n: number): Outgoing => ({ ...price(code, n), shared: true })
    o.offer(shared("A", 1))
    o.offer(answer(10)) // a10, made for this connection
    o.offer(price("B", 1)) // pB:1, sharing unknown: counted in full
    o.offer(shared("A", 2)) // in place of pA:1
    const mark = o.mark()
    o.insertAt(mark, [asSnapshot(shared("C", 1)), answer(1)])
    expect(o.footprint).toBe(5 * REF_BYTES + 3 + 4 + 2)
    // The frame still carries every character.
    expect(o.bytes).toBe(o.drain().reduce((n, m) => n + m.body.length, 0))
    expect(o.footprint).toBe(0)
  })

  it("starts fresh after a drain", () => {
    const o = new Outbox()
    o.offer(price("A", 1))
    o.drain()
    expect(o.offer(price("A", 2))).toBe(false)
    expect(o.drain().map((m) => m.body)).toEqual(["pA:2"])
  })

  it("inserts answers at an earlier mark, ahead of later arrivals, and keeps conflating those", () => {
    const o = new Outbox()
    o.offer(answer(0))
    const mark = o.mark()
    o.offer(price("A", 1))
    o.insertAt(mark, [answer(1), answer(2)])
    o.offer(price("A", 2))
    expect(o.drain().map((m) => m.body)).toEqual(["a0", "a1", "a2", "pA:2"])
  })

  it.prop(
    "holds the latest value of each key once, unkeyed messages all, in first-arrival order",
    [
      // Few keys (short queues, found by scanning) or many (long queues, found through an index).
      FastCheck.oneof(
        FastCheck.array(
          FastCheck.tuple(FastCheck.option(FastCheck.constantFrom("A", "B", "C")), FastCheck.nat(1000)),
        ),
        FastCheck.array(
          FastCheck.tuple(
            FastCheck.option(FastCheck.integer({ min: 0, max: 40 }).map(String)),
            FastCheck.nat(1000),
          ),
          { maxLength: 200 },
        ),
      ),
    ],
    ([ops]) => {
      const o = new Outbox()
      const expected: Array<{ key: string | undefined; body: string }> = []
      for (const [key, n] of ops) {
        const msg = { key: key ?? undefined, body: `${key}:${n}` }
        o.offer(msg)
        const at = key === null ? -1 : expected.findIndex((e) => e.key === key)
        if (at >= 0) expected[at] = msg
        else expected.push(msg)
      }
      expect(o.drain()).toEqual(expected)
    },
  )

  it.prop(
    "places answers inserted at a mark where the queue stood, however many states arrived since",
    [
      FastCheck.array(FastCheck.integer({ min: 0, max: 40 }), { maxLength: 60 }),
      FastCheck.array(FastCheck.integer({ min: 0, max: 40 }), { maxLength: 60 }),
    ],
    ([before, after]) => {
      const o = new Outbox()
      const model: Array<Outgoing> = []
      const offer = (code: number, n: number) => {
        const msg = price(String(code), n)
        o.offer(msg)
        const at = model.findIndex((m) => m.key === msg.key)
        if (at >= 0) model[at] = msg
        else model.push(msg)
      }
      for (const [i, c] of before.entries()) offer(c, i)
      const mark = o.mark()
      const markInModel = model.length
      for (const [i, c] of after.entries()) offer(c, 1000 + i)
      o.insertAt(mark, [answer(1), answer(2)])
      model.splice(markInModel, 0, answer(1), answer(2))
      // States that arrive after the insertion still conflate with the right waiting message.
      for (const [i, c] of after.entries()) offer(c, 2000 + i)
      expect(o.drain()).toEqual(model)
    },
  )
})
