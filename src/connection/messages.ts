/**
 * Builders for the connection-specific messages (answers, errors, snapshots headers), as
 * open bodies ready for the outbox. Field order follows the original document's examples.
 */
import type { SubscriptionType } from "../protocol/client.js"
import { type Outgoing, openBody } from "../protocol/encode.js"
import { type ProtocolError, toErrorMessage } from "../protocol/errors.js"
import type { SequenceJump, Subscriptions } from "../session/SessionStore.js"

const unkeyed = (value: object): Outgoing => ({ key: undefined, body: openBody(value) })

export const connectedMsg = (
  connectionId: string,
  sessionId: string,
  userId: string | null,
  timestamp: string,
): Outgoing =>
  unkeyed({
    type: "connected",
    connection_id: connectionId,
    session_id: sessionId,
    user_id: userId,
    timestamp,
  })

export const reconnectedMsg = (
  sessionId: string,
  restored: Subscriptions,
  missed: number,
  timestamp: string,
  jump?: SequenceJump,
): Outgoing => {
  // Only the types that have targets, as in the original document's example.
  const restored_subscriptions: Record<string, ReadonlyArray<string>> = {}
  for (const [type, targets] of Object.entries(restored))
    if (targets.length > 0) restored_subscriptions[type] = targets
  const base = {
    type: "reconnected",
    session_id: sessionId,
    restored_subscriptions,
    missed_messages_count: missed,
  }
  // Additive (docs/protocol.md "Sequence jumps"): after a crash of the session's instance the numbering skipped
  // `from`+1 .. `to`, numbers the crashed instance may or may not have sent.
  return unkeyed(
    jump === undefined
      ? { ...base, timestamp }
      : {
          ...base,
          sequence_jumped: true,
          sequence_jumped_from: jump.from,
          sequence_jumped_to: jump.to,
          timestamp,
        },
  )
}

export const subscribedMsg = (
  type: "subscribed" | "unsubscribed",
  subscriptionType: SubscriptionType,
  targets: ReadonlyArray<string>,
  timestamp: string,
): Outgoing => unkeyed({ type, subscription_type: subscriptionType, targets, timestamp })

export const pongMsg = (id: string | number | undefined, timestamp: string): Outgoing =>
  unkeyed(id === undefined ? { type: "pong", timestamp } : { type: "pong", id, timestamp })

export const tokenRefreshedMsg = (userId: string, expiresAt: string | null, timestamp: string): Outgoing =>
  unkeyed({ type: "token_refreshed", user_id: userId, expires_at: expiresAt, timestamp })

export const errorMsg = (error: ProtocolError, timestamp: string): Outgoing => {
  const e = toErrorMessage(error)
  return unkeyed({ type: "error", code: e.code, message: e.message, details: e.details, timestamp })
}
