/**
 * Why a token was refused: the reasons are listed once, in `protocol/errors.ts`
 * (`TOKEN_REJECTIONS`), where the protocol's documentation reads them; here, the jose errors
 * they stand for.
 */
import { errors } from "jose"
import type { TokenRejection } from "../protocol/errors.js"

export type { TokenRejection } from "../protocol/errors.js"

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
