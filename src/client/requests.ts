/**
 * Requests that wait for an answer: `ping` (answered by the `pong` that echoes its id) and
 * `refresh_token` (answered by `token_refreshed` or a `TOKEN_REFRESH_ERROR` error, which name no
 * request, so answers are matched in send order). A request needs a live connection; when the
 * connection goes away every pending request fails with `NotConnected`.
 */
import { Clock, Deferred, Duration, Effect, Ref } from "effect"
import type { ClientMessage } from "../protocol/client.js"
import type { ServerSingle } from "../protocol/server.js"
import { NotConnected, RequestTimeout, TokenRefreshFailed } from "./errors.js"

export type TokenRefreshed = Extract<ServerSingle, { readonly type: "token_refreshed" }>

export type Send = (message: ClientMessage) => Effect.Effect<boolean>

/** How requests reach the server. */
export interface Transport {
  /** The live connection's `send`; `NotConnected` when there is none. */
  readonly live: (operation: string) => Effect.Effect<Send, NotConnected>
  /** Runs a request's lookup, registration and send as one step, serialized with the handshake. */
  readonly serialized: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
}

export interface Requests {
  /** Round trip of a `ping`/`pong`. */
  readonly ping: Effect.Effect<Duration.Duration, NotConnected | RequestTimeout>
  readonly refreshToken: (
    token: string,
  ) => Effect.Effect<TokenRefreshed, NotConnected | RequestTimeout | TokenRefreshFailed>
  /** Settles the request `message` answers, if it answers one; other messages are ignored. */
  readonly answer: (message: ServerSingle) => Effect.Effect<void>
  /** The connection went away: every pending request fails with `NotConnected`. */
  readonly failAll: Effect.Effect<void>
}

interface PendingRefresh {
  readonly token: string
  readonly deferred: Deferred.Deferred<TokenRefreshed, TokenRefreshFailed | NotConnected>
}

interface Pending {
  readonly pings: ReadonlyMap<string, Deferred.Deferred<void, NotConnected>>
  /** In send order: the server answers `refresh_token`s in the order it received them. */
  readonly refreshes: ReadonlyArray<PendingRefresh>
}

const none: Pending = { pings: new Map(), refreshes: [] }

const withoutPing = (p: Pending, id: string): Pending => {
  if (!p.pings.has(id)) return p
  const pings = new Map(p.pings)
  pings.delete(id)
  return { ...p, pings }
}

export interface RequestsOptions {
  readonly transport: Transport
  readonly timeout: Duration.DurationInput
  /** Called with the new token when `token_refreshed` arrives, before the caller sees the answer. */
  readonly onRefreshed: (token: string) => Effect.Effect<void>
}

export const makeRequests = (options: RequestsOptions): Effect.Effect<Requests> =>
  Effect.gen(function* () {
    const { transport, onRefreshed } = options
    const timeout = Duration.decode(options.timeout)
    const pending = yield* Ref.make(none)
    const counter = yield* Ref.make(0)

    const timeoutFor = (operation: string) =>
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new RequestTimeout({ operation, millis: Duration.toMillis(timeout) }),
      })

    const ping = Effect.gen(function* () {
      const id = `qc-${yield* Ref.updateAndGet(counter, (n) => n + 1)}`
      const answered = yield* Deferred.make<void, NotConnected>()
      const started = yield* transport.serialized(
        Effect.gen(function* () {
          const send = yield* transport.live("ping")
          yield* Ref.update(pending, (p) => ({ ...p, pings: new Map(p.pings).set(id, answered) }))
          const started = yield* Clock.currentTimeMillis
          yield* send({ type: "ping", id })
          return started
        }),
      )
      yield* Deferred.await(answered).pipe(
        timeoutFor("ping"),
        Effect.ensuring(Ref.update(pending, (p) => withoutPing(p, id))),
      )
      return Duration.millis((yield* Clock.currentTimeMillis) - started)
    })

    const refreshToken = (token: string) =>
      Effect.gen(function* () {
        const deferred = yield* Deferred.make<TokenRefreshed, TokenRefreshFailed | NotConnected>()
        // Queued and sent in one step: answers come in send order and are matched first in, first out.
        yield* transport.serialized(
          Effect.gen(function* () {
            const send = yield* transport.live("refresh_token")
            yield* Ref.update(pending, (p) => ({ ...p, refreshes: [...p.refreshes, { token, deferred }] }))
            yield* send({ type: "refresh_token", token })
          }),
        )
        // A timed-out entry stays queued so that a late answer still pairs with it.
        return yield* Deferred.await(deferred).pipe(timeoutFor("refresh_token"))
      })

    const nextRefresh = Ref.modify(pending, (p) => [
      p.refreshes[0],
      { ...p, refreshes: p.refreshes.slice(1) },
    ])

    const answer = (message: ServerSingle): Effect.Effect<void> => {
      switch (message.type) {
        case "pong": {
          const id = message.id
          if (typeof id !== "string") return Effect.void
          return Effect.flatMap(
            Ref.modify(pending, (p) => [p.pings.get(id), withoutPing(p, id)]),
            (waiting) => (waiting === undefined ? Effect.void : Deferred.succeed(waiting, undefined)),
          )
        }
        case "token_refreshed":
          return Effect.flatMap(nextRefresh, (refresh) =>
            refresh === undefined
              ? Effect.void
              : Effect.zipRight(onRefreshed(refresh.token), Deferred.succeed(refresh.deferred, message)),
          )
        case "error":
          if (message.code !== "TOKEN_REFRESH_ERROR") return Effect.void
          return Effect.flatMap(nextRefresh, (refresh) =>
            refresh === undefined
              ? Effect.void
              : Deferred.fail(
                  refresh.deferred,
                  new TokenRefreshFailed({ message: message.message, details: message.details }),
                ),
          )
        default:
          return Effect.void
      }
    }

    const failAll = Effect.gen(function* () {
      const { pings, refreshes } = yield* Ref.getAndSet(pending, none)
      for (const r of refreshes) {
        yield* Deferred.fail(r.deferred, new NotConnected({ operation: "refresh_token" }))
      }
      for (const d of pings.values()) yield* Deferred.fail(d, new NotConnected({ operation: "ping" }))
    })

    return { ping, refreshToken, answer, failAll }
  })
