/**
 * Keys from an identity provider's JWK set (JWT_JWKS_URL), through jose's remote JWK set: fetched
 * on first use, kept for JWT_JWKS_CACHE_MAX_AGE_MS, fetched again for an unknown `kid` at most
 * once per JWT_JWKS_COOLDOWN_MS (so a rotated key is picked up without a restart), every fetch
 * bounded by JWT_JWKS_TIMEOUT_MS.
 *
 * What jose leaves to the caller is an outage: a failed fetch fails the verification, including
 * for a key it already holds once the set is past its max age, and the next token tries again.
 * Here a failed fetch leaves the keys held before it verifying (past their max age too), and no
 * fetch is tried again for a cooldown, so an unreachable provider neither locks known users out
 * nor makes every connection wait for the timeout. A revoked key stops verifying at the first
 * successful fetch after it left the set.
 */
import { Clock, Data, Effect, Either } from "effect"
import { type CryptoKey, createLocalJWKSet, createRemoteJWKSet, errors, type JWSHeaderParameters } from "jose"
import type { JwksSource } from "../config/jwtConfig.js"

export class JwksKeyError extends Data.TaggedError("JwksKeyError")<{
  readonly reason: "unknown_key" | "ambiguous_key" | "jwks_unavailable"
}> {}

export interface JwksKeys {
  readonly key: (header: JWSHeaderParameters) => Effect.Effect<CryptoKey, JwksKeyError>
  /** Fetches the set now (at startup), bypassing the cooldown; answers how many keys it holds. */
  readonly load: Effect.Effect<number, unknown>
}

type LocalSet = ReturnType<typeof createLocalJWKSet>

const selectionError = (e: unknown): JwksKeyError | undefined =>
  e instanceof errors.JWKSNoMatchingKey
    ? new JwksKeyError({ reason: "unknown_key" })
    : e instanceof errors.JWKSMultipleMatchingKeys
      ? new JwksKeyError({ reason: "ambiguous_key" })
      : undefined

/** A fetch error with its cause (undici's "fetch failed" says nothing alone). */
export const messageOf = (e: unknown): string =>
  e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e)

export const makeJwksKeys = (source: JwksSource): JwksKeys => {
  const remote = createRemoteJWKSet(source.url, {
    timeoutDuration: source.timeoutMs,
    cooldownDuration: source.cooldownMs,
    cacheMaxAge: source.cacheMaxAgeMs,
  })
  let failedAt = Number.NEGATIVE_INFINITY
  /** The keys held when the last fetch failed. */
  let held: LocalSet | undefined

  /** From the keys held before the outage; a `kid` they lack may be a new key we cannot see. */
  const fromHeld = (header: JWSHeaderParameters): Effect.Effect<CryptoKey, JwksKeyError> => {
    const keys = held
    return keys === undefined
      ? Effect.fail(new JwksKeyError({ reason: "jwks_unavailable" }))
      : Effect.tryPromise({
          try: () => keys(header),
          catch: (e) =>
            e instanceof errors.JWKSMultipleMatchingKeys
              ? new JwksKeyError({ reason: "ambiguous_key" })
              : new JwksKeyError({ reason: "jwks_unavailable" }),
        })
  }

  const key = (header: JWSHeaderParameters): Effect.Effect<CryptoKey, JwksKeyError> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (now - failedAt < source.cooldownMs) return yield* fromHeld(header)
      const found = yield* Effect.either(Effect.tryPromise({ try: () => remote(header), catch: (e) => e }))
      if (Either.isRight(found)) {
        held = undefined
        return found.right
      }
      const refused = selectionError(found.left)
      if (refused !== undefined) return yield* refused
      // The fetch failed: timeout, connection refused, an answer other than 200 with a JWK set.
      // Verifications waiting on the same fetch fail together; the first one says so.
      const first = failedAt < now
      failedAt = Math.max(failedAt, now)
      if (first) {
        const set = remote.jwks()
        held = set === undefined ? undefined : createLocalJWKSet(set)
        yield* Effect.logWarning("JWKS fetch failed; the keys held before keep verifying").pipe(
          Effect.annotateLogs({
            url: source.url.href,
            error: messageOf(found.left),
            keys_held: set?.keys.length ?? 0,
            retry_after_ms: source.cooldownMs,
          }),
        )
      }
      return yield* fromHeld(header)
    })

  const load = Effect.tryPromise({ try: () => remote.reload(), catch: (e) => e }).pipe(
    Effect.map(() => remote.jwks()?.keys.length ?? 0),
  )
  return { key, load }
}
