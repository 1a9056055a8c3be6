/**
 * The reconnect supervisor (no sockets; TestClock drives the backoff): which connection outcomes
 * end the client, how long it waits between attempts, and what it reports while doing so.
 * Connections are scripted as their outcomes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, TestClock } from "effect"
import { ConnectFailed } from "../../src/client/errors.js"
import type { ClientEvent } from "../../src/client/events.js"
import { type Outcome, type Policy, supervise, terminalFor } from "../../src/client/supervisor.js"
import { CloseCode } from "../../src/protocol/errors.js"

/** A connection that completed its handshake and was then lost with `code`. */
const lostAfterReady = (code: number = CloseCode.abnormal, reason = ""): Outcome => ({
  opened: true,
  wasReady: true,
  code,
  reason,
  failure: undefined,
})
/** An attempt that never opened (refused, timed out). */
const refused: Outcome = {
  opened: false,
  wasReady: false,
  code: CloseCode.abnormal,
  reason: "connect ECONNREFUSED",
  failure: new ConnectFailed({ reason: "connect ECONNREFUSED" }),
}
/** A socket that opened and closed before the handshake completed. */
const closedInHandshake = (code: number, reason = ""): Outcome => ({
  opened: true,
  wasReady: false,
  code,
  reason,
  failure: new ConnectFailed({ reason: `closed during handshake (${code})`, code }),
})

const policy = (overrides: Partial<Policy> = {}): Policy => ({
  reconnect: true,
  backoff: { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0 },
  retryInitialConnect: false,
  retryInvalidToken: false,
  ...overrides,
})

/** Runs the supervisor over scripted outcomes; records when each attempt started and what was reported. */
const scripted = (p: Policy, outcomes: ReadonlyArray<Outcome>) =>
  Effect.gen(function* () {
    const startedAt: Array<number> = []
    const events: Array<ClientEvent> = []
    let retries = 0
    const connectOnce = Effect.gen(function* () {
      startedAt.push(yield* Clock.currentTimeMillis)
      const outcome = outcomes[startedAt.length - 1]
      // A script that runs out stays connected for good.
      return outcome ?? (yield* Effect.never)
    })
    const fiber = yield* Effect.fork(
      supervise(p, connectOnce, {
        event: (event) => Effect.sync(() => void events.push(event)),
        retrying: Effect.sync(() => void retries++),
      }),
    )
    /** Advances the clock one delay at a time, so each attempt sees its own time. */
    const advance = (...millis: ReadonlyArray<number>) =>
      Effect.forEach(millis, (ms) => TestClock.adjust(ms), { discard: true })
    return { fiber, startedAt, events, advance, retries: () => retries }
  })

const outline = (events: ReadonlyArray<ClientEvent>) =>
  events.map((e) =>
    e._tag === "Disconnected"
      ? `Disconnected ${e.code} willReconnect=${e.willReconnect}`
      : e._tag === "Reconnecting"
        ? `Reconnecting #${e.attempt} after ${e.delayMillis} ms`
        : e._tag,
  )

describe("reconnecting", () => {
  it.effect(
    "waits the backoff delay before each attempt and starts again from the first delay after a healthy connection",
    () =>
      Effect.gen(function* () {
        const run = yield* scripted(policy(), [
          lostAfterReady(),
          refused,
          refused,
          lostAfterReady(CloseCode.serviceRestart, "restart"),
        ])
        yield* run.advance(100, 200, 400, 100)
        expect(run.startedAt).toEqual([0, 100, 300, 700, 800])
        expect(outline(run.events)).toEqual([
          "Disconnected 1006 willReconnect=true",
          "Reconnecting #1 after 100 ms",
          "Reconnecting #2 after 200 ms",
          "Reconnecting #3 after 400 ms",
          "Disconnected 1012 willReconnect=true",
          "Reconnecting #1 after 100 ms",
        ])
        expect(run.retries()).toBe(4)
        expect(run.fiber.unsafePoll()).toBeNull()
      }),
  )

  it.effect("does not start an attempt before its delay has passed", () =>
    Effect.gen(function* () {
      const run = yield* scripted(policy(), [lostAfterReady()])
      yield* run.advance(99)
      expect(run.startedAt).toEqual([0])
      yield* run.advance(1)
      expect(run.startedAt).toEqual([0, 100])
    }),
  )

  it.effect("caps the delay at maxDelay", () =>
    Effect.gen(function* () {
      const run = yield* scripted(
        policy({ backoff: { initialDelay: 100, maxDelay: 300, factor: 2, jitter: 0 } }),
        [lostAfterReady(), refused, refused, refused],
      )
      yield* run.advance(100, 200, 300, 300)
      expect(run.startedAt).toEqual([0, 100, 300, 600, 900])
    }),
  )

  it.effect("gives up after maxAttempts with ConnectionLost, naming the attempts made", () =>
    Effect.gen(function* () {
      const run = yield* scripted(policy({ backoff: { initialDelay: 100, jitter: 0, maxAttempts: 2 } }), [
        lostAfterReady(),
        refused,
        refused,
      ])
      yield* run.advance(100, 200)
      const error = yield* Fiber.join(run.fiber)
      expect(error).toMatchObject({ _tag: "ConnectionLost", attempts: 2, code: CloseCode.abnormal })
      expect(outline(run.events)).toEqual([
        "Disconnected 1006 willReconnect=true",
        "Reconnecting #1 after 100 ms",
        "Reconnecting #2 after 200 ms",
      ])
    }),
  )

  it.effect("keeps retrying a first connect that fails when retryInitialConnect is set", () =>
    Effect.gen(function* () {
      const run = yield* scripted(policy({ retryInitialConnect: true }), [refused, refused])
      yield* run.advance(100, 200)
      expect(run.startedAt).toEqual([0, 100, 300])
      expect(outline(run.events)).toEqual(["Reconnecting #1 after 100 ms", "Reconnecting #2 after 200 ms"])
    }),
  )
})

describe("outcomes that end the client", () => {
  it.effect("a session taken over (4000) ends it at once: reconnecting would take the session back", () =>
    Effect.gen(function* () {
      const run = yield* scripted(policy(), [lostAfterReady(CloseCode.takenOver, "session taken over")])
      const error = yield* Fiber.join(run.fiber)
      expect(error).toMatchObject({ _tag: "SessionTakenOver", code: 4000, reason: "session taken over" })
      expect(outline(run.events)).toEqual(["Disconnected 4000 willReconnect=false"])
      expect(run.startedAt).toEqual([0])
    }),
  )

  it.effect("a rejected token (4001) ends it unless a token provider may have a fresh one", () =>
    Effect.gen(function* () {
      const fixed = yield* scripted(policy(), [closedInHandshake(CloseCode.invalidToken, "invalid token")])
      expect(yield* Fiber.join(fixed.fiber)).toMatchObject({ _tag: "TokenRejected", code: 4001 })

      const provided = yield* scripted(policy({ retryInvalidToken: true, retryInitialConnect: true }), [
        closedInHandshake(CloseCode.invalidToken),
      ])
      yield* provided.advance(100)
      expect(provided.startedAt).toEqual([0, 100])
    }),
  )

  it.effect("a first connect that fails ends it with that attempt's failure, without waiting", () =>
    Effect.gen(function* () {
      const run = yield* scripted(policy(), [refused])
      expect(yield* Fiber.join(run.fiber)).toBe(refused.failure)
      expect(run.events).toEqual([]) // never opened: nothing was connected, nothing to report
    }),
  )

  it.effect("with reconnect off, losing a healthy connection ends it with ConnectionLost", () =>
    Effect.gen(function* () {
      const run = yield* scripted(policy({ reconnect: false }), [lostAfterReady(CloseCode.goingAway, "bye")])
      const error = yield* Fiber.join(run.fiber)
      expect(error).toMatchObject({ _tag: "ConnectionLost", code: 1001, reason: "bye", attempts: 0 })
      expect(outline(run.events)).toEqual(["Disconnected 1001 willReconnect=false"])
    }),
  )
})

describe("terminalFor", () => {
  it("lets every other loss through to the backoff once a connection has been ready", () => {
    for (const code of [
      CloseCode.normal,
      CloseCode.abnormal,
      CloseCode.serviceRestart,
      CloseCode.tryAgainLater,
    ]) {
      expect(terminalFor(policy(), lostAfterReady(code), true)).toBeUndefined()
      expect(terminalFor(policy(), closedInHandshake(code), true)).toBeUndefined()
    }
  })

  it("names the close code when a first connect closed without a failure of its own", () => {
    const outcome: Outcome = { ...closedInHandshake(CloseCode.tryAgainLater), failure: undefined }
    expect(terminalFor(policy(), outcome, false)).toMatchObject({
      _tag: "ConnectFailed",
      code: 1013,
      reason: "closed before ready (1013)",
    })
  })
})
