/**
 * Token verification with `jose` (docs/tokens.md). Keys come from up to two sources at once,
 * chosen by the token header's `alg`: HS256 from JWT_SECRET, and the asymmetric algorithms
 * (RS*, PS*, ES*, EdDSA) from JWT_PUBLIC_KEY or JWT_JWKS_URL, so a deployment can move from a
 * shared secret to an identity provider without a flag day. Each source has its rules: the
 * provider's tokens are checked against JWT_ISSUER / JWT_AUDIENCE and read through
 * JWT_USER_CLAIM / JWT_ROLE_CLAIM; HS256 tokens keep quotecast's own shape (`sub`, `role`).
 * Every failure is an InvalidToken with a reason (`rejections.ts`), counted by reason. Without
 * any key source every token is invalid, so a misconfigured deployment never silently accepts
 * unsigned identities.
 */
import { ConfigError, Context, Effect, Either, Layer, Option } from "effect"
import {
  type CryptoKey,
  decodeProtectedHeader,
  importSPKI,
  importX509,
  type JWSHeaderParameters,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose"
import { AppConfig } from "../config/AppConfig.js"
import {
  type JwtPlan,
  OWN_TOKEN_RULES,
  type PublicKeySource,
  resolveJwt,
  type TokenRules,
} from "../config/jwtConfig.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { InvalidToken } from "../protocol/errors.js"
import { type Claims, readClaims } from "./claims.js"
import { makeJwksKeys, messageOf } from "./jwksKeys.js"
import { rejectionOf } from "./rejections.js"

export type { Claims, Role } from "./claims.js"

export interface JwtVerifierShape {
  readonly verify: (token: string) => Effect.Effect<Claims, InvalidToken>
}

/** Where the key for one `alg` comes from, and how that source's tokens are checked and read. */
interface Source {
  readonly keyFor: (header: JWSHeaderParameters) => Effect.Effect<CryptoKey | Uint8Array, InvalidToken>
  readonly checks: JWTVerifyOptions
  readonly rules: TokenRules
}

const checksOf = (rules: TokenRules): JWTVerifyOptions => ({
  ...(rules.issuers.length > 0 ? { issuer: [...rules.issuers] } : {}),
  ...(rules.audiences.length > 0 ? { audience: [...rules.audiences] } : {}),
})

const source = (keyFor: Source["keyFor"], rules: TokenRules): Source => ({
  keyFor,
  checks: checksOf(rules),
  rules,
})

/** The PEM imported once per algorithm it may verify (a WebCrypto key is bound to one). */
const importPublicKey = (source: PublicKeySource) =>
  Effect.forEach(source.algorithms, (alg) =>
    Effect.tryPromise({
      try: () => (source.format === "x509" ? importX509(source.pem, alg) : importSPKI(source.pem, alg)),
      catch: (e) =>
        ConfigError.InvalidData(
          ["JWT_PUBLIC_KEY"],
          `JWT_PUBLIC_KEY could not be imported for ${alg} (${String(e)})`,
        ),
    }).pipe(Effect.map((key) => [alg, key] as const)),
  ).pipe(Effect.map((pairs) => new Map<string, CryptoKey>(pairs)))

/** The verifier for a resolved configuration; `stats` counts rejections by reason. */
export const makeJwtVerifier = (plan: JwtPlan, stats: GatewayStatsImpl) =>
  Effect.gen(function* () {
    const sources = new Map<string, Source>()
    if (Option.isSome(plan.secret)) {
      const secret = plan.secret.value
      sources.set(
        "HS256",
        source(() => Effect.succeed(secret), OWN_TOKEN_RULES),
      )
    }
    if (Option.isSome(plan.publicKey)) {
      const keys = yield* importPublicKey(plan.publicKey.value)
      for (const [alg, key] of keys)
        sources.set(
          alg,
          source(() => Effect.succeed(key), plan.providerRules),
        )
    }
    const jwks = Option.map(plan.jwks, (settings) => ({ settings, keys: makeJwksKeys(settings) }))
    if (Option.isSome(jwks)) {
      const { keys, settings } = jwks.value
      const fromSet = source(
        (header) => keys.key(header).pipe(Effect.mapError((e) => new InvalidToken({ reason: e.reason }))),
        plan.providerRules,
      )
      for (const alg of settings.algorithms) sources.set(alg, fromSet)
    }

    const verifyToken = (token: string): Effect.Effect<Claims, InvalidToken> =>
      Effect.gen(function* () {
        if (sources.size === 0) return yield* new InvalidToken({ reason: "no_secret_configured" })
        const header = Either.try(() => decodeProtectedHeader(token))
        if (Either.isLeft(header) || typeof header.right.alg !== "string")
          return yield* new InvalidToken({ reason: "malformed" })
        const alg = header.right.alg
        const from = sources.get(alg)
        if (from === undefined) return yield* new InvalidToken({ reason: "alg_not_allowed" })
        const key = yield* from.keyFor(header.right)
        const { payload } = yield* Effect.tryPromise({
          try: () => jwtVerify(token, key, { ...from.checks, algorithms: [alg] }),
          catch: (e) => e,
        }).pipe(
          Effect.catchAll((e) => {
            const reason = rejectionOf(e)
            return reason !== undefined
              ? Effect.fail(new InvalidToken({ reason }))
              : Effect.logWarning("token verification failed unexpectedly", e).pipe(
                  Effect.zipRight(Effect.fail(new InvalidToken({ reason: "verification_failed" }))),
                )
          }),
        )
        return yield* Either.mapLeft(
          readClaims(payload, from.rules),
          (reason) => new InvalidToken({ reason }),
        )
      })

    const verifier: JwtVerifierShape = {
      verify: (token) =>
        verifyToken(token).pipe(Effect.tapError((e) => Effect.sync(() => stats.tokenRejected(e.reason)))),
    }
    return { verifier, jwks: Option.map(jwks, ({ keys }) => keys) }
  })

/** The key sources in use, for the startup line (never a key). */
const summary = (plan: JwtPlan): Record<string, unknown> => ({
  hs256: Option.isSome(plan.secret),
  public_key: Option.match(plan.publicKey, { onNone: () => "none", onSome: (k) => k.algorithms.join(",") }),
  jwks_url: Option.match(plan.jwks, { onNone: () => "none", onSome: (j) => j.url.href }),
  ...(Option.isSome(plan.publicKey) || Option.isSome(plan.jwks)
    ? {
        issuer: plan.providerRules.issuers.join(",") || "any",
        audience: plan.providerRules.audiences.join(",") || "any",
        user_claim: plan.providerRules.userClaim.join("."),
        role_claim: plan.providerRules.roleClaim.join("."),
      }
    : {}),
})

export class JwtVerifier extends Context.Tag("quotecast/JwtVerifier")<JwtVerifier, JwtVerifierShape>() {
  /**
   * The configuration is checked again here (AppConfig.layer checked it once) because tests and
   * embedders build AppConfig from values; a JWK set is fetched in the background at startup, so
   * that a wrong URL shows in the log before the first user does.
   */
  static readonly layer = Layer.scoped(
    JwtVerifier,
    Effect.gen(function* () {
      const plan = yield* resolveJwt(yield* AppConfig)
      const { verifier, jwks } = yield* makeJwtVerifier(plan, yield* GatewayStats)
      yield* Effect.logInfo("token verification").pipe(Effect.annotateLogs(summary(plan)))
      if (Option.isSome(jwks)) {
        yield* jwks.value.load.pipe(
          Effect.flatMap((keys) => Effect.logInfo("JWKS loaded").pipe(Effect.annotateLogs({ keys }))),
          Effect.catchAll((e) =>
            Effect.logWarning("JWKS not loaded at startup; tried again on the first token").pipe(
              Effect.annotateLogs({
                url: plan.jwks.pipe(
                  Option.map((j) => j.url.href),
                  Option.getOrUndefined,
                ),
                error: messageOf(e),
              }),
            ),
          ),
          Effect.forkScoped,
        )
      }
      return verifier
    }),
  )
}
