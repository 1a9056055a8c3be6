/**
 * JWT verification with `jose`: HS256 with JWT_SECRET today; the algorithm list and key source
 * are the only things an RS256/JWKS deployment changes. Without a secret every token is invalid,
 * so a misconfigured deployment never silently accepts unsigned identities.
 */
import { Context, Effect, Layer, Option } from "effect"
import { errors as joseErrors, jwtVerify } from "jose"
import { AppConfig, jwtSecretBytes } from "../config/AppConfig.js"
import { InvalidToken } from "../protocol/errors.js"

export type Role = "admin" | "publisher"

export interface Claims {
  readonly userId: string
  readonly role: Role | undefined
  /** Expiry in epoch milliseconds, undefined for tokens without `exp`. */
  readonly expiresAt: number | undefined
  /** Per-connection message rate from the `rate_limit` claim (tiers). */
  readonly rateLimit: number | undefined
}

export interface JwtVerifierShape {
  readonly verify: (token: string) => Effect.Effect<Claims, InvalidToken>
}

export class JwtVerifier extends Context.Tag("quotecast/JwtVerifier")<JwtVerifier, JwtVerifierShape>() {
  static readonly layer = Layer.effect(
    JwtVerifier,
    Effect.map(AppConfig, (config) => makeJwtVerifier(jwtSecretBytes(config))),
  )
}

const reasonOf = (e: unknown): string => {
  if (e instanceof joseErrors.JWTExpired) return "expired"
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return "bad_signature"
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `claim_${e.claim}`
  if (e instanceof joseErrors.JOSEError) return e.code.toLowerCase()
  return "malformed"
}

export const makeJwtVerifier = (secret: Option.Option<Uint8Array>): JwtVerifierShape => ({
  verify: (token) =>
    Option.match(secret, {
      onNone: () => Effect.fail(new InvalidToken({ reason: "no_secret_configured" })),
      onSome: (key) =>
        Effect.tryPromise({
          try: () => jwtVerify(token, key, { algorithms: ["HS256"] }),
          catch: (e) => new InvalidToken({ reason: reasonOf(e) }),
        }).pipe(
          Effect.flatMap(({ payload }) => {
            if (typeof payload.sub !== "string" || payload.sub.length === 0) {
              return Effect.fail(new InvalidToken({ reason: "missing_sub" }))
            }
            const role = payload.role === "admin" || payload.role === "publisher" ? payload.role : undefined
            const rl = payload.rate_limit
            return Effect.succeed<Claims>({
              userId: payload.sub,
              role,
              expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined,
              rateLimit: typeof rl === "number" && Number.isFinite(rl) && rl > 0 ? Math.floor(rl) : undefined,
            })
          }),
        ),
    }),
})
