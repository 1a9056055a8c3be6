/**
 * Request matching (no sockets; TestClock for round trips and timeouts): a `ping` is answered by
 * the `pong` that echoes its id; `refresh_token` answers name no request, so they are matched in
 * send order; a lost connection fails every pending request.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Ref, Schema, TestClock } from "effect"
import { NotConnected } from "../../src/client/errors.js"
import { makeRequests } from "../../src/client/requests.js"
import type { ClientMessage } from "../../src/protocol/client.js"
import { ServerSingle } from "../../src/protocol/server.js"

const timestamp = "2025-11-11T09:30:00.030Z"
const server = (message: Record<string, unknown>): ServerSingle =>
  Schema.decodeUnknownSync(ServerSingle)({ timestamp, sequence: 9, ...message })
const pong = (id?: string) => server({ type: "pong", ...(id === undefined ? {} : { id }) })
const refreshed = server({ type: "token_refreshed", user_id: "user-1", expires_at: null })
const refreshError = server({
  type: "error",
  code: "TOKEN_REFRESH_ERROR",
  message: "Token refresh failed",
  details: { reason: "invalid" },
})

/** Requests over a fake connection that records what was sent; `connected` says whether one is live. */
const setup = Effect.gen(function* () {
  const sent: Array<ClientMessage> = []
  const refreshedTokens: Array<string> = []
  const connected = yield* Ref.make(true)
  const requests = yield* makeRequests({
    transport: {
      live: (operation) =>
        Effect.flatMap(Ref.get(connected), (live) =>
          live
            ? Effect.succeed((message: ClientMessage) => Effect.sync(() => sent.push(message) > 0))
            : Effect.fail(new NotConnected({ operation })),
        ),
      serialized: (effect) => effect,
    },
    timeout: "10 seconds",
    onRefreshed: (token) => Effect.sync(() => void refreshedTokens.push(token)),
  })
  /** Lets forked requests run until `n` messages were sent. */
  const untilSent = (n: number) =>
    Effect.gen(function* () {
      for (let i = 0; i < 100 && sent.length < n; i++) yield* Effect.yieldNow()
      expect(sent).toHaveLength(n)
    })
  return { requests, sent, refreshedTokens, connected, untilSent }
})

describe("ping", () => {
  it.effect("completes with the round trip when the pong echoing its id arrives", () =>
    Effect.gen(function* () {
      const { requests, sent, untilSent } = yield* setup
      const fiber = yield* Effect.fork(requests.ping)
      yield* untilSent(1)
      const [message] = sent
      expect(message).toMatchObject({ type: "ping", id: expect.any(String) })
      const id = message?.type === "ping" ? message.id : undefined
      yield* TestClock.adjust("25 millis")
      yield* requests.answer(pong("someone-else"))
      yield* requests.answer(pong())
      expect(fiber.unsafePoll()).toBeNull()
      yield* requests.answer(pong(typeof id === "string" ? id : ""))
      expect(Duration.toMillis(yield* Fiber.join(fiber))).toBe(25)
    }),
  )

  it.effect("gives each ping its own id, so answers settle the right one", () =>
    Effect.gen(function* () {
      const { requests, sent, untilSent } = yield* setup
      const first = yield* Effect.fork(requests.ping)
      const second = yield* Effect.fork(requests.ping)
      yield* untilSent(2)
      const ids = sent.map((m) => (m.type === "ping" ? m.id : undefined))
      expect(new Set(ids).size).toBe(2)
      yield* requests.answer(pong(String(ids[1])))
      yield* Fiber.join(second)
      expect(first.unsafePoll()).toBeNull()
      yield* requests.answer(pong(String(ids[0])))
      yield* Fiber.join(first)
    }),
  )

  it.effect("fails with NotConnected without a live connection, sending nothing", () =>
    Effect.gen(function* () {
      const { requests, sent, connected } = yield* setup
      yield* Ref.set(connected, false)
      const error = yield* Effect.flip(requests.ping)
      expect(error).toEqual(new NotConnected({ operation: "ping" }))
      expect(sent).toEqual([])
    }),
  )

  it.effect("fails with RequestTimeout when no pong comes in time, and ignores a late one", () =>
    Effect.gen(function* () {
      const { requests, sent, untilSent } = yield* setup
      const fiber = yield* Effect.fork(requests.ping)
      yield* untilSent(1)
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(exit).toEqual(
        Exit.fail(expect.objectContaining({ _tag: "RequestTimeout", operation: "ping", millis: 10_000 })),
      )
      const id = sent[0]?.type === "ping" ? String(sent[0].id) : ""
      yield* requests.answer(pong(id))
    }),
  )
})

describe("refresh_token", () => {
  it.effect("matches answers in send order and hands over the new token before the caller sees it", () =>
    Effect.gen(function* () {
      const { requests, sent, refreshedTokens, untilSent } = yield* setup
      const first = yield* Effect.fork(requests.refreshToken("token-a"))
      yield* untilSent(1)
      const second = yield* Effect.fork(requests.refreshToken("token-b"))
      yield* untilSent(2)
      expect(sent).toEqual([
        { type: "refresh_token", token: "token-a" },
        { type: "refresh_token", token: "token-b" },
      ])
      yield* requests.answer(refreshed)
      expect(yield* Fiber.join(first)).toBe(refreshed)
      expect(refreshedTokens).toEqual(["token-a"])
      yield* requests.answer(refreshError)
      const error = yield* Effect.flip(Fiber.join(second))
      expect(error).toMatchObject({
        _tag: "TokenRefreshFailed",
        message: "Token refresh failed",
        details: { reason: "invalid" },
      })
      expect(refreshedTokens).toEqual(["token-a"])
    }),
  )

  it.effect("keeps a timed-out request queued, so a late answer pairs with it and not with the next", () =>
    Effect.gen(function* () {
      const { requests, refreshedTokens, untilSent } = yield* setup
      const late = yield* Effect.fork(requests.refreshToken("token-a"))
      yield* untilSent(1)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Effect.flip(Fiber.join(late))).toMatchObject({ _tag: "RequestTimeout" })
      const next = yield* Effect.fork(requests.refreshToken("token-b"))
      yield* untilSent(2)
      yield* requests.answer(refreshError) // the answer to token-a
      expect(next.unsafePoll()).toBeNull()
      yield* requests.answer(refreshed)
      expect(yield* Fiber.join(next)).toBe(refreshed)
      expect(refreshedTokens).toEqual(["token-b"])
    }),
  )

  it.effect("ignores an answer nobody waits for", () =>
    Effect.gen(function* () {
      const { requests, refreshedTokens } = yield* setup
      yield* requests.answer(refreshed)
      yield* requests.answer(refreshError)
      expect(refreshedTokens).toEqual([])
    }),
  )
})

describe("a lost connection", () => {
  it.effect("fails every pending request with NotConnected, and later answers settle nothing", () =>
    Effect.gen(function* () {
      const { requests, refreshedTokens, untilSent } = yield* setup
      const ping = yield* Effect.fork(requests.ping)
      const refresh = yield* Effect.fork(requests.refreshToken("token-a"))
      yield* untilSent(2)
      yield* requests.failAll
      expect(yield* Effect.flip(Fiber.join(ping))).toEqual(new NotConnected({ operation: "ping" }))
      expect(yield* Effect.flip(Fiber.join(refresh))).toEqual(
        new NotConnected({ operation: "refresh_token" }),
      )
      yield* requests.answer(refreshed)
      expect(refreshedTokens).toEqual([])
    }),
  )
})
