import { Effect, Fiber, FiberRef, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { sharedScheduler } from "../../src/lifecycle/sharedScheduler.js"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"
import { startGateway, waitFor } from "../support/gateway.js"

describe("the scheduler connection fibers share", () => {
  it("runs fibers that yield and wake, in the order they were woken", async () => {
    const order: Array<string> = []
    const program = Effect.gen(function* () {
      const fibers = yield* Effect.forEach(["a", "b", "c"], (name) =>
        Effect.fork(
          Effect.gen(function* () {
            for (let i = 0; i < 3; i++) {
              order.push(`${name}${i}`)
              yield* Effect.yieldNow()
            }
          }),
        ),
      )
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.withScheduler(sharedScheduler))
    await Effect.runPromise(program)
    // Round-robin: each yield queues the fiber behind the others on the one runner.
    expect(order).toEqual(["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"])
  })

  it("does not starve the event loop: a fiber yielding forever still lets a timer fire", async () => {
    let spins = 0
    const spinner = Effect.runFork(
      Effect.forever(
        Effect.zipRight(
          Effect.sync(() => spins++),
          Effect.yieldNow(),
        ),
      ).pipe(Effect.withScheduler(sharedScheduler)),
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    await Effect.runPromise(Fiber.interrupt(spinner))
    // Reaching this line is the point: past 2,048 nested microtask drains the runner goes
    // through a macrotask, so the timer could fire (a starving runner would time the test out).
    expect(spins).toBeGreaterThan(0)
  })

  it("is the scheduler of every fiber the gateway's layers start, not only of connection fibers", async () => {
    // A fiber forked while the gateway is built, as the flush clock, the feed and the fan-out are:
    // on Effect's default scheduler a long chain of work held the event loop for seconds.
    let seen: unknown
    const probe = Layer.scopedDiscard(
      Effect.forkScoped(
        Effect.flatMap(FiberRef.get(FiberRef.currentScheduler), (scheduler) =>
          Effect.sync(() => {
            seen = scheduler
          }),
        ),
      ),
    )
    const gw = await startGateway({}, { mode: Layer.merge(EmbeddedLive, probe) })
    try {
      await waitFor(() => seen !== undefined, 5_000, "the forked fiber to run")
      expect(seen).toBe(sharedScheduler)
    } finally {
      await gw.stop()
    }
  })
})
