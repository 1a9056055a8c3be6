/**
 * The reconnect supervisor: runs one connection after another on the backoff schedule until an
 * outcome ends the client. It knows connections only by how they ended (`Outcome`); what happens
 * inside one (handshake, restore, sequence numbers) is the lifecycle reducer's.
 */
import { Duration, Effect, Option, Ref, Schedule, ScheduleDecision } from "effect"
import { CloseCode } from "../protocol/errors.js"
import { type BackoffOptions, backoffSchedule } from "./backoff.js"
import {
  ConnectFailed,
  ConnectionLost,
  SessionTakenOver,
  type TerminalError,
  TokenRejected,
} from "./errors.js"
import { ClientEvent } from "./events.js"

/** How one connection attempt ended. */
export interface Outcome {
  /** The socket opened (else the attempt failed before any handshake). */
  readonly opened: boolean
  /** The handshake completed before the socket closed. */
  readonly wasReady: boolean
  readonly code: number
  readonly reason: string
  /** Why the attempt did not become ready, when it did not. */
  readonly failure: ConnectFailed | undefined
}

export interface Policy {
  /** Reconnect after a healthy connection was lost (`reconnect !== false`). */
  readonly reconnect: boolean
  readonly backoff: Partial<BackoffOptions>
  /** Keep retrying when the very first connect fails, instead of failing `connect`. */
  readonly retryInitialConnect: boolean
  /** A token provider may have a fresh token, so a 4001 close is retried rather than final. */
  readonly retryInvalidToken: boolean
}

/** Why `outcome` ends the client, if it does. `everReady`: some connection completed a handshake. */
export const terminalFor = (
  policy: Policy,
  outcome: Outcome,
  everReady: boolean,
): TerminalError | undefined => {
  if (outcome.code === CloseCode.takenOver) {
    return new SessionTakenOver({ code: outcome.code, reason: outcome.reason })
  }
  if (outcome.code === CloseCode.invalidToken && !policy.retryInvalidToken) {
    return new TokenRejected({ code: outcome.code, reason: outcome.reason })
  }
  if (!everReady && !policy.retryInitialConnect) {
    return (
      outcome.failure ??
      new ConnectFailed({ reason: `closed before ready (${outcome.code})`, code: outcome.code })
    )
  }
  if (!policy.reconnect)
    return new ConnectionLost({ code: outcome.code, reason: outcome.reason, attempts: 0 })
  return undefined
}

export interface SupervisorHooks {
  /** `Disconnected` after each opened connection, `Reconnecting` before each wait. */
  readonly event: (event: ClientEvent) => Effect.Effect<void>
  /** A new attempt is about to start, after its backoff delay. */
  readonly retrying: Effect.Effect<void>
}

/**
 * Runs `connectOnce` again and again, waiting the backoff delay between attempts (reset after
 * every connection that became ready), until an outcome is terminal or the schedule gives up.
 * Completes with the error that ends the client; it never ends otherwise.
 */
export const supervise = <R>(
  policy: Policy,
  connectOnce: Effect.Effect<Outcome, never, R>,
  hooks: SupervisorHooks,
): Effect.Effect<TerminalError, never, R> =>
  Effect.gen(function* () {
    const attempts = yield* Ref.make(0)
    const driver = yield* Schedule.driver(
      backoffSchedule(policy.backoff).pipe(
        // onDecision rather than tapOutput: the step that ends the schedule is not an attempt.
        Schedule.onDecision((delay, decision) =>
          ScheduleDecision.isDone(decision)
            ? Effect.void
            : Effect.flatMap(
                Ref.updateAndGet(attempts, (n) => n + 1),
                (attempt) =>
                  hooks.event(ClientEvent.Reconnecting({ attempt, delayMillis: Duration.toMillis(delay) })),
              ),
        ),
      ),
    )
    let everReady = false
    for (;;) {
      const outcome = yield* connectOnce
      if (outcome.wasReady) {
        everReady = true
        yield* driver.reset
        yield* Ref.set(attempts, 0)
      }
      const terminal = terminalFor(policy, outcome, everReady)
      if (outcome.opened) {
        yield* hooks.event(
          ClientEvent.Disconnected({
            code: outcome.code,
            reason: outcome.reason,
            willReconnect: terminal === undefined,
          }),
        )
      }
      if (terminal !== undefined) return terminal
      // Sleeps the chosen delay on Effect's Clock (so TestClock drives it in tests).
      const next = yield* Effect.option(driver.next(undefined))
      if (Option.isNone(next)) {
        return new ConnectionLost({
          code: outcome.code,
          reason: outcome.reason || "reconnect attempts exhausted",
          attempts: yield* Ref.get(attempts),
        })
      }
      yield* hooks.retrying
    }
  })
