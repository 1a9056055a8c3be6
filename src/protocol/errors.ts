/**
 * Protocol errors. Every failure a client can see is one of these tagged errors, and
 * `toErrorMessage` is the single place that maps them onto docs/protocol.md's error codes and wording.
 */
import { Data } from "effect"
import type { ErrorCode } from "./server.js"

export class InvalidMessage extends Data.TaggedError("InvalidMessage")<{
  readonly reason: string
  readonly details: Readonly<Record<string, unknown>>
}> {}

/**
 * Why a token was refused: INVALID_TOKEN's `details.reason` (TOKEN_REFRESH_ERROR's too), the
 * reason in an HTTP 401's message, and the label of `quotecast_token_rejections_total`. One
 * vocabulary whatever the key source; `auth/` produces them (`auth/rejections.ts`), and the AsyncAPI
 * document and docs/protocol.md describe each one.
 */
export const TOKEN_REJECTIONS = [
  /** No key source is configured (no JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL). */
  "no_secret_configured",
  /** Not a signed JWT (JWS compact form), or its header or claims are not valid JSON of the right types. */
  "malformed",
  /** The header's `alg` is not one a configured key source verifies. */
  "alg_not_allowed",
  "bad_signature",
  "expired",
  /** `nbf` is still in the future. */
  "not_yet_valid",
  "wrong_issuer",
  "wrong_audience",
  /** Another registered claim failed its check. */
  "invalid_claims",
  /** No key of the JWK set has the token's `kid` (and `alg`), even after a refetch. */
  "unknown_key",
  /** Several keys of the JWK set match the token's header and it names none of them. */
  "ambiguous_key",
  /** The JWK set could not be fetched and no key held from before matches. */
  "jwks_unavailable",
  /** The claim JWT_USER_CLAIM names is absent or empty. */
  "missing_user_id",
  /** The claim JWT_USER_CLAIM names is not a string. */
  "invalid_user_claim",
  /** The claim JWT_ROLE_CLAIM names is neither a string nor an array of strings. */
  "invalid_role_claim",
  /** jose failed in a way none of the above names (logged). */
  "verification_failed",
] as const
export type TokenRejection = (typeof TOKEN_REJECTIONS)[number]

export class InvalidToken extends Data.TaggedError("InvalidToken")<{ readonly reason: TokenRejection }> {}

export class SubscriptionFailed extends Data.TaggedError("SubscriptionFailed")<{
  readonly subscriptionType: string
  readonly rejected: ReadonlyArray<{ readonly target: string; readonly reason: string }>
  readonly accepted: ReadonlyArray<string>
  readonly limit: number
}> {}

export class RateLimitExceeded extends Data.TaggedError("RateLimitExceeded")<{ readonly limit: number }> {}

export class SessionRestorationFailed extends Data.TaggedError("SessionRestorationFailed")<{
  readonly sessionId: string
  readonly reason: "not_found" | "expired" | "user_mismatch" | "takeover_failed" | "store_unavailable"
}> {}

/** A refused `refresh_token`: the new token's rejection, or `different_user` (not the connection's user). */
export class TokenRefreshError extends Data.TaggedError("TokenRefreshError")<{
  readonly reason: TokenRejection | "different_user"
}> {}

export type ProtocolError =
  | InvalidMessage
  | InvalidToken
  | SubscriptionFailed
  | RateLimitExceeded
  | SessionRestorationFailed
  | TokenRefreshError

export interface ErrorPayload {
  readonly code: ErrorCode
  readonly message: string
  readonly details: Readonly<Record<string, unknown>>
}

const sessionReasons: Record<SessionRestorationFailed["reason"], string> = {
  not_found: "Session not found or expired",
  expired: "Session not found or expired",
  user_mismatch: "Session belongs to another user",
  takeover_failed: "Session is held by another connection that did not release it",
  store_unavailable: "Session store unavailable",
}

/** The one mapping from typed errors to docs/protocol.md error codes. */
export const toErrorMessage = (error: ProtocolError): ErrorPayload => {
  switch (error._tag) {
    case "InvalidMessage":
      return { code: "INVALID_MESSAGE", message: error.reason, details: error.details }
    case "InvalidToken":
      return {
        code: "INVALID_TOKEN",
        message: "JWT token validation failed",
        details: { reason: error.reason },
      }
    case "SubscriptionFailed":
      return {
        code: "SUBSCRIPTION_FAILED",
        message: "Unable to subscribe to some targets",
        details: {
          subscription_type: error.subscriptionType,
          rejected: error.rejected,
          accepted: error.accepted,
          max_subscriptions: error.limit,
        },
      }
    case "RateLimitExceeded":
      return {
        code: "RATE_LIMIT_EXCEEDED",
        message: `Rate limit exceeded (${error.limit} messages/second)`,
        details: { rate_limit: error.limit },
      }
    case "SessionRestorationFailed":
      return {
        code: "SESSION_RESTORATION_FAILED",
        message: sessionReasons[error.reason],
        details: { session_id: error.sessionId, reason: error.reason },
      }
    case "TokenRefreshError":
      return {
        code: "TOKEN_REFRESH_ERROR",
        message: "Token refresh failed",
        details: { reason: error.reason },
      }
  }
}

/**
 * WebSocket close codes used by the gateway and the SDK (docs/protocol.md), the one definition of each.
 * 1006 is never sent: it is how a close without a close frame is reported (and recorded).
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  abnormal: 1006,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
  takenOver: 4000,
  invalidToken: 4001,
} as const
