/**
 * The client's lifecycle as a pure reducer: `step(state, input)` gives the next state and the
 * actions to perform, as plain data. It holds the handshake (docs/protocol.md "Connection lifecycle":
 * `connected`, then `reconnected` or `SESSION_RESTORATION_FAILED` when a session was presented),
 * sequence tracking across restores, and the subscriptions the client wants. The engine feeds it
 * what the connection reports and performs the actions; nothing here touches a socket or a clock.
 */
import { Data, Option, Schema } from "effect"
import type { ClientMessage, SubscriptionType } from "../protocol/client.js"
import type { ServerSingle } from "../protocol/server.js"
import { ClientEvent, type SequenceGap } from "./events.js"
import { checkSequence, lastBeforeConnected } from "./sequence.js"
import {
  addTargets,
  chunkedMessages,
  type Desired,
  emptyDesired,
  reconcile,
  removeTargets,
  subscribeAll,
} from "./subscriptions.js"

export type ClientStatus = "connecting" | "handshaking" | "ready" | "reconnecting" | "closed"

export interface Lifecycle {
  readonly status: ClientStatus
  readonly sessionId: string | undefined
  readonly connectionId: string | undefined
  readonly userId: string | null | undefined
  /** Last sequence number seen in the current session (0 before any). */
  readonly last: number
  /** The token for the next connect (the provider's latest, or the last refreshed one). */
  readonly token: string | undefined
  /** What the client wants to be subscribed to (re-sent after a failed restore). */
  readonly desired: Desired
  /** The session id the current connection presented for restore. */
  readonly restoring: string | undefined
  /** While handshaking: the message that completes the handshake. */
  readonly awaiting: "connected" | "reconnected" | undefined
  /**
   * A restore's `connected` that did not continue the numbering: reported as a gap only if
   * `reconnected` does not announce the jump (after a crash of the session's instance).
   */
  readonly jump: SequenceGap | undefined
}

export const initial = (options: {
  readonly sessionId?: string | undefined
  readonly token?: string | undefined
  readonly desired?: Desired | undefined
}): Lifecycle => ({
  status: "connecting",
  sessionId: options.sessionId,
  connectionId: undefined,
  userId: undefined,
  last: 0,
  token: options.token,
  desired: options.desired ?? emptyDesired,
  restoring: undefined,
  awaiting: undefined,
  jump: undefined,
})

/** What happened, as the engine reports it. */
export type Input = Data.TaggedEnum<{
  /** A connection attempt begins (again, after a backoff delay). */
  Connecting: {}
  /** The socket opened; the handshake starts, presenting `sessionId` (if any) for restore. */
  Opened: {}
  /** A typed server message. */
  Received: { readonly message: ServerSingle }
  /** A message that could not be typed; its number (if readable) still counts. */
  Unreadable: { readonly sequence: number | undefined }
  /** The socket closed. */
  LinkClosed: {}
  /** A token to use from now on (from the token provider, or confirmed by `token_refreshed`). */
  TokenChanged: { readonly token: string | undefined }
  Subscribe: { readonly subscriptionType: SubscriptionType; readonly targets: ReadonlyArray<string> }
  Unsubscribe: { readonly subscriptionType: SubscriptionType; readonly targets: ReadonlyArray<string> }
  /** The client stopped for good. */
  Closed: {}
}>
export const Input = Data.taggedEnum<Input>()

/** What to perform, in order. */
export type Action = Data.TaggedEnum<{
  /** Report a lifecycle event. */
  Emit: { readonly event: ClientEvent }
  /** Hand a server message to the caller. */
  Deliver: { readonly message: ServerSingle }
  /** Send on the current connection. */
  Send: { readonly messages: ReadonlyArray<ClientMessage> }
  /** The handshake is done: requests may go to this connection, and `connect` may return. */
  Ready: {}
}>
export const Action = Data.taggedEnum<Action>()

export interface Step {
  readonly state: Lifecycle
  readonly actions: ReadonlyArray<Action>
}

/**
 * Messages whose input reads or changes the subscriptions or makes the connection ready. The engine
 * serializes them with subscribe/unsubscribe, so a change racing a handshake is either part of
 * what the handshake sends or sent after it, never lost or reordered.
 */
export const touchesSubscriptions = (message: ServerSingle): boolean =>
  message.type === "connected" || message.type === "reconnected" || message.type === "error"

export const step = (s: Lifecycle, input: Input): Step => {
  switch (input._tag) {
    case "Connecting":
      return { state: { ...s, status: "connecting" }, actions: [] }
    case "Opened":
      return {
        state: {
          ...s,
          status: "handshaking",
          restoring: s.sessionId,
          awaiting: "connected",
          jump: undefined,
        },
        actions: [],
      }
    case "Received":
      return received(s, input.message)
    case "Unreadable": {
      // Keep numbering through a message we cannot type, so it is not also reported as a gap.
      const actions: Array<Action> = []
      return { state: input.sequence === undefined ? s : track(s, input.sequence, actions), actions }
    }
    case "LinkClosed":
      return { state: { ...s, status: "reconnecting", awaiting: undefined }, actions: [] }
    case "TokenChanged":
      return { state: { ...s, token: input.token }, actions: [] }
    case "Subscribe":
    case "Unsubscribe": {
      const unique = [...new Set(input.targets)]
      if (unique.length === 0) return { state: s, actions: [] }
      const subscribe = input._tag === "Subscribe"
      const desired = (subscribe ? addTargets : removeTargets)(s.desired, input.subscriptionType, unique)
      const messages = chunkedMessages(
        subscribe ? "subscribe" : "unsubscribe",
        input.subscriptionType,
        unique,
      )
      // Not ready: the handshake sends what `desired` needs then.
      return { state: { ...s, desired }, actions: s.status === "ready" ? [Action.Send({ messages })] : [] }
    }
    case "Closed":
      return { state: { ...s, status: "closed", awaiting: undefined }, actions: [] }
  }
}

/** Checks `sequence` against the last one seen; a mismatch is reported as a `Gap`. */
const track = (s: Lifecycle, sequence: number, actions: Array<Action>): Lifecycle => {
  const check = checkSequence(s.last, sequence)
  if (check.gap !== undefined) {
    actions.push(Action.Emit({ event: ClientEvent.Gap({ ...check.gap, sessionId: s.sessionId }) }))
  }
  return { ...s, last: check.last }
}

/** The handshake is done: send what `desired` needs on this session, then take direct requests. */
const ready = (s: Lifecycle, messages: ReadonlyArray<ClientMessage>, actions: Array<Action>): Step => {
  if (messages.length > 0) actions.push(Action.Send({ messages }))
  actions.push(Action.Ready())
  if (s.sessionId !== undefined) {
    actions.push(Action.Emit({ event: ClientEvent.Ready({ sessionId: s.sessionId }) }))
  }
  return { state: { ...s, status: "ready", awaiting: undefined }, actions }
}

/** A new session instead of the one presented: every subscription is sent again. */
const restoreFailed = (s: Lifecycle, previousSessionId: string, actions: Array<Action>): Step => {
  actions.push(
    Action.Emit({ event: ClientEvent.RestoreFailed({ previousSessionId, sessionId: s.sessionId ?? "" }) }),
  )
  return ready(s, subscribeAll(s.desired), actions)
}

const received = (s0: Lifecycle, msg: ServerSingle): Step => {
  const actions: Array<Action> = []
  if (msg.type === "connected") {
    const restoring = s0.restoring
    const continues = restoring !== undefined && restoring === msg.session_id
    let s: Lifecycle = {
      ...s0,
      sessionId: msg.session_id,
      connectionId: msg.connection_id,
      userId: msg.user_id,
      last: lastBeforeConnected(s0.last, restoring, msg.session_id),
    }
    if (continues && msg.sequence !== s.last + 1) {
      // Held until `reconnected` says whether the server announced this jump.
      const jump = { expected: s.last + 1, received: msg.sequence, sessionId: msg.session_id }
      s = { ...s, last: msg.sequence, jump }
    } else s = track(s, msg.sequence, actions)
    const connected = ClientEvent.Connected({
      connectionId: msg.connection_id,
      sessionId: msg.session_id,
      userId: msg.user_id,
      restoring: restoring !== undefined,
    })
    actions.push(Action.Emit({ event: connected }), Action.Deliver({ message: msg }))
    if (restoring === undefined) return ready(s, subscribeAll(s.desired), actions)
    if (!continues) return restoreFailed(s, restoring, actions)
    return { state: { ...s, awaiting: "reconnected" }, actions }
  }

  let s = track(s0, msg.sequence, actions)
  actions.push(Action.Deliver({ message: msg }))
  switch (msg.type) {
    case "reconnected": {
      if (s.jump !== undefined && msg.sequence_jumped !== true) {
        actions.push(Action.Emit({ event: ClientEvent.Gap(s.jump) }))
      }
      s = { ...s, jump: undefined }
      if (s.awaiting !== "reconnected") return { state: s, actions }
      const restored = ClientEvent.Restored({
        sessionId: msg.session_id,
        restoredSubscriptions: msg.restored_subscriptions,
        missedMessagesCount: msg.missed_messages_count,
        sequenceJumped: msg.sequence_jumped === true,
      })
      actions.push(Action.Emit({ event: restored }))
      return ready(s, reconcile(s.desired, msg.restored_subscriptions), actions)
    }
    case "error":
      // Normally `connected` already carried a new session id; this covers a server that says so later.
      if (msg.code === "SESSION_RESTORATION_FAILED" && s.awaiting === "reconnected") {
        return restoreFailed(s, s.restoring ?? "", actions)
      }
      if (msg.code === "SUBSCRIPTION_FAILED") {
        // Forget rejected targets, so they are not re-sent after every reconnect.
        const type = msg.details.subscription_type
        const targets = rejectedTargets(msg.details.rejected)
        if ((type === "stock" || type === "market" || type === "sector") && targets.length > 0) {
          s = { ...s, desired: removeTargets(s.desired, type, targets) }
        }
      }
      return { state: s, actions }
    default:
      return { state: s, actions }
  }
}

// `details.rejected` is `[{ target, reason }]` (docs/protocol.md); bare strings are accepted too.
const RejectedEntry = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Struct({ target: Schema.String }), Schema.String, {
    strict: true,
    decode: (entry) => entry.target,
    encode: (target) => ({ target }),
  }),
)
const decodeRejected = Schema.decodeUnknownOption(RejectedEntry)

/** The targets named in `details.rejected`; entries of another shape are skipped. */
const rejectedTargets = (rejected: unknown): ReadonlyArray<string> =>
  Array.isArray(rejected) ? rejected.flatMap((entry) => Option.toArray(decodeRejected(entry))) : []
