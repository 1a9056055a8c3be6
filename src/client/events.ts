/**
 * Lifecycle events of a client, reported beside (not inside) the server's message stream.
 */
import { Data } from "effect"
import type { SubscriptionSet } from "../protocol/server.js"
import type { TerminalError } from "./errors.js"

/** A sequence number other than the one expected; `received - expected` messages are missing when positive. */
export interface SequenceGap {
  readonly expected: number
  readonly received: number
  readonly sessionId: string | undefined
}

export type ClientEvent = Data.TaggedEnum<{
  /** `connected` arrived. `restoring` is true when a `session_id` was presented for restore. */
  Connected: {
    readonly connectionId: string
    readonly sessionId: string
    readonly userId: string | null
    readonly restoring: boolean
  }
  /**
   * The session was restored; the server kept its subscriptions, the client did not re-send them.
   * `sequenceJumped`: the session's instance had crashed and numbering continues past the numbers
   * it may have used (announced by the server, so no `Gap` is reported for it).
   */
  Restored: {
    readonly sessionId: string
    readonly restoredSubscriptions: SubscriptionSet
    readonly missedMessagesCount: number
    readonly sequenceJumped: boolean
  }
  /** Restore failed: a new session started (numbering from 1) and the subscriptions were re-sent. */
  RestoreFailed: {
    readonly previousSessionId: string
    readonly sessionId: string
  }
  /** The handshake finished and subscribe/ping/refresh go straight to the server. */
  Ready: { readonly sessionId: string }
  Gap: SequenceGap
  /** A frame or message the SDK could not read (not JSON, binary, or not a known message shape). */
  InvalidMessage: { readonly reason: string; readonly raw: string }
  Disconnected: { readonly code: number; readonly reason: string; readonly willReconnect: boolean }
  Reconnecting: { readonly attempt: number; readonly delayMillis: number }
  /** The client stopped: `error` is absent when its owner closed it. */
  Closed: { readonly error: TerminalError | undefined }
}>

export const ClientEvent = Data.taggedEnum<ClientEvent>()
