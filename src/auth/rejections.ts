/**
 * Why a token was refused: INVALID_TOKEN's `details.reason`, the reason in a 401's message, and
 * the label of `quotecast_token_rejections_total`. One vocabulary whatever the key source.
 */
import { errors } from "jose"

export type TokenRejection =
  /** No key source is configured (no JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL). */
  | "no_secret_configured"
  /** Not a signed JWT (JWS compact form), or its header or claims are not valid JSON of the right types. */
  | "malformed"
  /** The header's `alg` is not one a configured key source verifies. */
  | "alg_not_allowed"
  | "bad_signature"
  | "expired"
  /** `nbf` is still in the future. */
  | "not_yet_valid"
  | "wrong_issuer"
  | "wrong_audience"
  /** Another registered claim failed its check. */
  | "invalid_claims"
  /** No key of the JWK set has the token's `kid` (and `alg`), even after a refetch. */
  | "unknown_key"
  /** Several keys of the JWK set match the token's header and it names none of them. */
  | "ambiguous_key"
  /** The JWK set could not be fetched and no key held from before matches. */
  | "jwks_unavailable"
  /** The claim JWT_USER_CLAIM names is absent or empty. */
  | "missing_user_id"
  /** The claim JWT_USER_CLAIM names is not a string. */
  | "invalid_user_claim"
  /** The claim JWT_ROLE_CLAIM names is neither a string nor an array of strings. */
  | "invalid_role_claim"
  /** jose failed in a way none of the above names (logged). */
  | "verification_failed"

/** The rejection a jose error stands for; undefined for an error that is not jose's. */
export const rejectionOf = (e: unknown): TokenRejection | undefined => {
  // JWTExpired is a JWTClaimValidationFailed: it comes first.
  if (e instanceof errors.JWTExpired) return "expired"
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "iss") return "wrong_issuer"
    if (e.claim === "aud") return "wrong_audience"
    if (e.claim === "nbf") return "not_yet_valid"
    return "invalid_claims"
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return "bad_signature"
  if (e instanceof errors.JOSEAlgNotAllowed) return "alg_not_allowed"
  if (e instanceof errors.JWKSNoMatchingKey) return "unknown_key"
  if (e instanceof errors.JWKSMultipleMatchingKeys) return "ambiguous_key"
  if (e instanceof errors.JOSEError) return "malformed"
  return undefined
}
