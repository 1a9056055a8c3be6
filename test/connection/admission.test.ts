/**
 * Admission of connection setups (`connection/Admission.ts`): at most `limit` setups hold a
 * slot, the others wait in arrival order, a wait past `waitMs` or beyond `queueLimit` is refused,
 * and a slot is never lost, whether its setup succeeds, fails or is interrupted while waiting.
 * Upgrades wait before their handshake (`enqueue`): one starts no sooner than the turn after it
 * was queued, one whose client went away is dropped uncounted as a setup, setups start for at
 * most `turnBudgetMs` per turn, and a turn that accepted a connection leaves them to a later one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber } from "effect"
import { Admission } from "../../src/connection/Admission.js"
import type { Startable } from "../../src/connection/admissionTicket.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"
import { waitFor } from "../support/gateway.js"

const make = (limit: number, queueLimit: number, waitMs: number, turnBudgetMs = 2) => {
  const stats = new GatewayStatsImpl()
  return { stats, admission: new Admission(limit, queueLimit, waitMs, stats, turnBudgetMs) }
}

/** One event-loop turn: resolves after the hand-ons already scheduled have run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** An upgrade as `http/Server.ts` queues one: it records its start, or why it was refused. */
class Upgrade implements Startable {
  started = false
  gone = false
  refused: { reason: string; retryAfterS: number } | undefined = undefined
  constructor(readonly onStart: () => void = () => {}) {}
  isGone() {
    return this.gone
  }
  start() {
    this.started = true
    this.onStart()
  }
  refuse(reason: string, retryAfterS: number) {
    this.refused = { reason, retryAfterS }
  }
}

const busyFor = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}

describe("Admission", () => {
  it.live("admits at most `limit` setups at once and the others in arrival order", () =>
    Effect.gen(function* () {
      // A turn budget no busy machine exhausts: both slots are taken in the first turn.
      const { stats, admission } = make(2, 100, 10_000, 10_000)
      const order: Array<number> = []
      let running = 0
      let most = 0
      const setup = (i: number) =>
        admission.admitted(
          Effect.gen(function* () {
            running++
            most = Math.max(most, running)
            order.push(i)
            yield* Effect.sleep("5 millis")
            running--
          }),
        )
      yield* Effect.forEach([0, 1, 2, 3, 4, 5, 6, 7], setup, { concurrency: "unbounded" })
      expect(most).toBe(2)
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
      expect(stats.admissionQueued).toBe(6)
      expect(stats.setupsInFlightPeak).toBe(2)
      // Every slot came back (freed slots are handed on in a later turn: waited for, within 2 s,
      // as a loaded machine may take a while to run it).
      for (let k = 0; k < 400 && admission.inFlight > 0; k++) yield* Effect.sleep("5 millis")
      expect(admission.inFlight).toBe(0)
    }),
  )

  it.live("refuses a setup that waited longer than waitMs, and one that finds the queue full", () =>
    Effect.gen(function* () {
      const { stats, admission } = make(1, 1, 50)
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(admission.admitted(Deferred.await(release)))
      const waiter = yield* Effect.fork(Effect.either(admission.admitted(Effect.void)))
      yield* Effect.sleep("10 millis")
      const overflow = yield* Effect.either(admission.admitted(Effect.void))
      expect(Either.isLeft(overflow) && overflow.left.reason).toBe("queue_full")
      const waited = yield* Fiber.join(waiter)
      expect(Either.isLeft(waited) && waited.left.reason).toBe("timeout")
      expect(stats.admissionRejectedQueueFull).toBe(1)
      expect(stats.admissionRejectedTimeout).toBe(1)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      // The slot is free again.
      yield* Effect.sleep("5 millis")
      yield* admission.admitted(Effect.void)
    }),
  )

  it.live("gives the slot back when a setup fails, and the place when a waiting one is interrupted", () =>
    Effect.gen(function* () {
      const { admission } = make(1, 10, 10_000)
      const failed = yield* Effect.either(admission.admitted(Effect.fail("setup failed")))
      expect(Either.isLeft(failed)).toBe(true)
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(admission.admitted(Deferred.await(release)))
      yield* Effect.sleep("5 millis")
      const interrupted = yield* Effect.fork(admission.admitted(Effect.void))
      const next = yield* Effect.fork(admission.admitted(Effect.succeed("admitted")))
      yield* Effect.sleep("5 millis")
      yield* Fiber.interrupt(interrupted)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(next).pipe(Effect.timeout("2 seconds"))).toBe("admitted")
      yield* Effect.sleep("5 millis")
      expect(admission.inFlight).toBe(0)
      expect(admission.waiting).toBe(0)
    }),
  )

  it.live(
    "starts a queued upgrade no sooner than the turn after it was queued, its setup taking the slot ahead of the queue",
    () =>
      Effect.gen(function* () {
        const { stats, admission } = make(1, 10, 10_000)
        const order: Array<string> = []
        // Its setup asks for the slot synchronously, as the connection runner's does.
        const first = new Upgrade(() => {
          Effect.runFork(admission.admitted(Effect.sync(() => order.push("first"))))
        })
        const second = new Upgrade(() => {
          Effect.runFork(admission.admitted(Effect.sync(() => order.push("second"))))
        })
        admission.enqueue(first)
        admission.enqueue(second)
        yield* Effect.promise(turn)
        expect(first.started).toBe(false)
        yield* Effect.promise(() => waitFor(() => order.length === 2, 2_000, "both set up"))
        expect(order).toEqual(["first", "second"])
        expect(stats.setupsInFlightPeak).toBe(1)
        expect(stats.admissionQueued).toBe(2)
      }),
  )

  it.live("drops a queued upgrade whose client went away, without starting it", () =>
    Effect.gen(function* () {
      const { stats, admission } = make(1, 10, 10_000)
      const leaving = new Upgrade()
      const staying = new Upgrade()
      const ticket = admission.enqueue(leaving)
      admission.enqueue(staying)
      const closed = new Upgrade()
      admission.enqueue(closed)
      // One client's "close" arrives; another's socket ended before its turn (its close to come).
      if (ticket !== undefined) admission.cancel(ticket)
      closed.gone = true
      yield* Effect.promise(() => waitFor(() => staying.started, 2_000, "the staying upgrade started"))
      yield* Effect.promise(turn)
      expect(leaving.started).toBe(false)
      expect(closed.started).toBe(false)
      expect(stats.admissionAbandoned).toBe(2)
    }),
  )

  it.live(
    "refuses an upgrade past the free slots and `queueLimit`, and one that waited `waitMs`, with a Retry-After",
    () =>
      Effect.gen(function* () {
        const { stats, admission } = make(1, 1, 50)
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(admission.admitted(Deferred.await(release)))
        yield* Effect.promise(turn)
        const waiting = new Upgrade()
        const overflow = new Upgrade()
        admission.enqueue(waiting)
        admission.enqueue(overflow)
        expect(overflow.refused).toMatchObject({ reason: "queue_full" })
        yield* Effect.promise(() => waitFor(() => waiting.refused !== undefined, 2_000, "the wait refused"))
        expect(waiting.refused?.reason).toBe("timeout")
        expect(waiting.refused?.retryAfterS).toBeGreaterThanOrEqual(1)
        expect(waiting.started).toBe(false)
        expect(stats.admissionRejectedQueueFull).toBe(1)
        expect(stats.admissionRejectedTimeout).toBe(1)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
      }),
  )

  it.live("starts setups for at most `turnBudgetMs` per turn, at least one", () =>
    Effect.gen(function* () {
      const { admission } = make(10, 10, 10_000, 5)
      const upgrades = [0, 1, 2].map(
        () =>
          new Upgrade(() => {
            busyFor(6)
          }),
      )
      for (const u of upgrades) admission.enqueue(u)
      const started = () => upgrades.filter((u) => u.started).length
      // The turn that queued them starts none; then each turn starts one, each taking longer than the budget.
      yield* Effect.promise(turn)
      expect(started()).toBe(0)
      yield* Effect.promise(turn)
      expect(started()).toBe(1)
      yield* Effect.promise(turn)
      expect(started()).toBe(2)
    }),
  )

  it.live("leaves the setups to a later turn when a connection was accepted in this one", () =>
    Effect.gen(function* () {
      const { admission } = make(10, 10, 10_000)
      const u = new Upgrade()
      admission.enqueue(u)
      yield* Effect.promise(turn)
      // Node accepts one connection per turn: the next turn accepts again instead of setting up.
      admission.noteAccept()
      yield* Effect.promise(turn)
      expect(u.started).toBe(false)
      yield* Effect.promise(turn)
      expect(u.started).toBe(true)
    }),
  )
})
