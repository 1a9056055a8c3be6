/**
 * The actor's inbound queue: frames in arrival order, a take that waits for the next one, and
 * nothing lost when a waiting take is interrupted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, Fiber } from "effect"
import { Inbox } from "../../src/connection/Inbox.js"

describe("Inbox", () => {
  it.effect("hands out items in arrival order, queued or not yet offered", () =>
    Effect.gen(function* () {
      const inbox = new Inbox<number>()
      inbox.offer(1)
      inbox.offer(2)
      expect(inbox.size).toBe(2)
      expect(yield* inbox.take()).toBe(1)
      const waiting = yield* Effect.fork(Effect.zip(inbox.take(), inbox.take()))
      yield* Effect.yieldNow()
      inbox.offer(3)
      expect(yield* Fiber.join(waiting)).toEqual([2, 3])
      expect(inbox.size).toBe(0)
    }),
  )

  it.effect("a take waits until something is offered", () =>
    Effect.gen(function* () {
      const inbox = new Inbox<string>()
      const waiting = yield* Effect.fork(inbox.take())
      yield* Effect.yieldNow()
      expect(yield* Fiber.poll(waiting)).toMatchObject({ _tag: "None" })
      inbox.offer("frame")
      expect(yield* Fiber.join(waiting)).toBe("frame")
    }),
  )

  it.effect("an interrupted take gives its place back: the next offer waits for the next take", () =>
    Effect.gen(function* () {
      const inbox = new Inbox<string>()
      const waiting = yield* Effect.fork(inbox.take())
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiting)
      inbox.offer("close")
      expect(inbox.size).toBe(1)
      expect(yield* inbox.take()).toBe("close")
    }),
  )

  it.prop(
    "keeps FIFO order over any interleaving of offers and takes",
    // true: offer the next number; false: take one (when one is waiting).
    // Long runs too, so that the array is compacted while items are still waiting.
    [FastCheck.array(FastCheck.boolean(), { maxLength: 5000 })],
    ([ops]) => {
      const inbox = new Inbox<number>()
      const model: Array<number> = []
      let next = 0
      for (const offer of ops) {
        if (offer) {
          inbox.offer(next)
          model.push(next++)
        } else if (model.length > 0) {
          expect(Effect.runSync(inbox.take())).toBe(model.shift())
        }
        expect(inbox.size).toBe(model.length)
      }
    },
  )
})
