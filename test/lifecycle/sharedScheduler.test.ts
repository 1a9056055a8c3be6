import { Effect, Fiber, FiberRef, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { deliveryLoop, httpLane, sharedScheduler } from "../../src/lifecycle/sharedScheduler.js"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"
import { startGateway, waitFor } from "../support/gateway.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** `ms` of CPU, then `done`. */
const spin = (ms: number, done: () => void) => {
  const end = performance.now() + ms
  while (performance.now() < end) {}
  done()
}

/** Half a millisecond of CPU, then `done`. */
const busy = (done: () => void) => spin(0.5, done)

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

  it("stops a drain after 20 ms: a timer fires while thousands of tasks queued at once still wait", async () => {
    let ran = 0
    let ranWhenTimerFired = -1
    // 2,000 fibers started together, each taking half a millisecond: a second of work.
    const program = Effect.forEach(
      range(2_000),
      () => Effect.forkDaemon(Effect.sync(() => busy(() => ran++))),
      {
        discard: true,
      },
    ).pipe(Effect.withScheduler(sharedScheduler))
    setTimeout(() => {
      ranWhenTimerFired = ran
    }, 5)
    await Effect.runPromise(program)
    await waitFor(() => ran === 2_000, 10_000, "every task to run")
    // Effect's runner ran all 2,000 in one drain before the timer's turn came.
    expect(ranWhenTimerFired).toBeGreaterThanOrEqual(0)
    expect(ranWhenTimerFired).toBeLessThan(500)
  })

  it("counts the 20 ms per turn of the event loop: work woken by many I/O callbacks of one turn still lets a timer in", async () => {
    let ran = 0
    let ranWhenTimerFired = -1
    // 2,000 fibers waiting, as connections wait for their client's next frame.
    const wakers: Array<() => void> = []
    const waiting = Effect.forEach(
      range(2_000),
      () =>
        Effect.forkDaemon(
          Effect.zipRight(
            Effect.async<void>((resume) => {
              wakers.push(() => resume(Effect.void))
            }),
            Effect.sync(() => busy(() => ran++)),
          ),
        ),
      { discard: true },
    ).pipe(Effect.withScheduler(sharedScheduler))
    await Effect.runPromise(waiting)
    await waitFor(() => wakers.length === 2_000, 5_000, "every fiber to wait")
    setTimeout(() => {
      ranWhenTimerFired = ran
    }, 5)
    // Each woken from a callback of its own, with its microtasks after it, as one poll phase
    // reads thousands of sockets: each wake-up starts a drain of its own.
    for (const wake of wakers) setImmediate(wake)
    await waitFor(() => ran === 2_000, 10_000, "every fiber to run")
    // Counted per chain of microtasks, every one of those drains was under the bound, and all
    // 2,000 (a second of work) ran before the timer.
    expect(ranWhenTimerFired).toBeGreaterThanOrEqual(0)
    expect(ranWhenTimerFired).toBeLessThan(500)
  })

  it("runs a delivery loop woken by its timer ahead of the work queued before it", async () => {
    let ran = 0
    const program = Effect.gen(function* () {
      // 400 fibers of other work that yield after each half millisecond: a round is 200 ms.
      const workers = yield* Effect.forEach(range(400), () =>
        Effect.fork(
          Effect.forever(
            Effect.zipRight(
              Effect.sync(() => busy(() => ran++)),
              Effect.yieldNow(),
            ),
          ),
        ),
      )
      const waited = yield* deliveryLoop(
        Effect.gen(function* () {
          const before = ran
          yield* Effect.sleep("5 millis")
          return ran - before
        }),
      )
      yield* Fiber.interruptAll(workers)
      return waited
    }).pipe(Effect.withScheduler(sharedScheduler))
    const tasksWhileItWaited = await Effect.runPromise(program)
    // At the back of the queue it would have waited for a whole round (400 tasks) after its timer.
    expect(tasksWhileItWaited).toBeLessThan(200)
  })

  it("gives an HTTP request its turn among thousands of commands queued before it", async () => {
    let ran = 0
    let ranWhenRequestCame = -1
    let ranWhenRequestRan = -1
    // 2,000 commands queued at once (a storm's `subscribe`s), each half a millisecond: a second.
    const program = Effect.gen(function* () {
      yield* Effect.forEach(range(2_000), () => Effect.forkDaemon(Effect.sync(() => busy(() => ran++))), {
        discard: true,
      })
      // Then a metrics scrape arrives: its fiber is started from the lane, as the server's handler
      // starts every request's.
      ranWhenRequestCame = ran
      yield* httpLane(
        Effect.forkDaemon(
          Effect.sync(() => {
            ranWhenRequestRan = ran
          }),
        ),
      )
    }).pipe(Effect.withScheduler(sharedScheduler))
    await Effect.runPromise(program)
    await waitFor(() => ran === 2_000 && ranWhenRequestRan >= 0, 10_000, "every task to run")
    // Behind them in one queue it would have waited for every command still queued (about a
    // thousand: the forking fiber yields halfway); it takes turns with them.
    expect(2_000 - ranWhenRequestCame).toBeGreaterThan(500)
    expect(ranWhenRequestRan - ranWhenRequestCame).toBeLessThan(10)
  })

  it("keeps a fifth of the time for other fibers while a delivery loop runs back to back", async () => {
    let deliveryMs = 0
    let otherTasks = 0
    const program = Effect.gen(function* () {
      // A feed that has fallen behind: 50 ms of fan-out per iteration, always ready again.
      const feed = yield* Effect.fork(
        deliveryLoop(
          Effect.forever(
            Effect.zipRight(
              Effect.sync(() => spin(50, () => (deliveryMs += 50))),
              Effect.yieldNow(),
            ),
          ),
        ),
      )
      // Other work in small pieces (closing connections, HTTP): 0.05 ms each.
      const other = yield* Effect.fork(
        Effect.forever(
          Effect.zipRight(
            Effect.sync(() => spin(0.05, () => otherTasks++)),
            Effect.yieldNow(),
          ),
        ),
      )
      yield* Effect.sleep("1 second")
      yield* Fiber.interruptAll([feed, other])
    }).pipe(Effect.withScheduler(sharedScheduler))
    await Effect.runPromise(program)
    const otherMs = otherTasks * 0.05
    expect(deliveryMs).toBeGreaterThan(0)
    expect(otherMs).toBeGreaterThan(deliveryMs / 5)
  })

  it("answers an HTTP request of the gateway in its lane, not behind the commands queued before it", async () => {
    const gw = await startGateway()
    try {
      let ran = 0
      // 2,000 pieces of other work queued at once: a second of CPU.
      await Effect.runPromise(
        Effect.forEach(range(2_000), () => Effect.forkDaemon(Effect.sync(() => busy(() => ran++))), {
          discard: true,
        }).pipe(Effect.withScheduler(sharedScheduler)),
      )
      const came = ran
      const res = await fetch(`http://127.0.0.1:${gw.port}/metrics`)
      const answered = ran
      expect(res.status).toBe(200)
      await waitFor(() => ran === 2_000, 10_000, "every task to run")
      // A scrape waits for the metrics registry (a promise): its fiber resumes through the
      // scheduler, and takes turns with them (each turn of I/O lets a few dozen through).
      expect(2_000 - came).toBeGreaterThan(500)
      expect(answered - came).toBeLessThan((2_000 - came) / 2)
    } finally {
      await gw.stop()
    }
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
