/**
 * The token verifier's configuration (docs/tokens.md): where keys come from (JWT_SECRET for
 * HS256; JWT_PUBLIC_KEY or JWT_JWKS_URL for asymmetric algorithms), which claims are checked, and
 * which claims carry the user and the role. Each variable is validated as it is read, and
 * `resolveJwt` checks them together, so a deployment that cannot verify what it is configured
 * for stops at startup with a ConfigError naming the variable.
 */
import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto"
import { Config, ConfigError, Either, Option, Redacted } from "effect"

/** What JWT_PUBLIC_KEY and JWT_JWKS_URL may verify; HS256 belongs to JWT_SECRET alone. */
export const ASYMMETRIC_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number]

const isAsymmetric = (s: string): s is AsymmetricAlgorithm =>
  (ASYMMETRIC_ALGORITHMS as ReadonlyArray<string>).includes(s)

/** RFC 7518 3.2: an HS256 key at least as long as the hash. */
const MIN_SECRET_BYTES = 32

/** Unset, or set and valid. */
const unsetOr = <A>(o: Option.Option<A>, valid: (a: A) => boolean): boolean =>
  Option.isNone(o) || valid(o.value)

const commaList = (s: string): ReadonlyArray<string> =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0)

/** A comma list; unset or empty: none. */
const optionalList = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.flatMap((s) => Option.some(commaList(s)).pipe(Option.filter((l) => l.length > 0)))),
  )

/** A claim named by a dotted path (`realm_access.roles`): the keys from the payload down. */
const claimPath = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.map((s) => s.trim().split("."))),
    Config.validate({
      message: `${name} must be a claim name or a dotted path of names (sub, realm_access.roles)`,
      validation: (path) => unsetOr(path, (keys) => keys.every((k) => k.length > 0)),
    }),
  )

const millis = (name: string, def: number, min: number) =>
  Config.integer(name).pipe(
    Config.withDefault(def),
    Config.validate({
      message: `${name} must be an integer of at least ${min}`,
      validation: (n) => n >= min,
    }),
  )

/** The variables as read, each valid on its own. */
export const jwtFields = {
  jwtSecret: Config.option(Config.redacted("JWT_SECRET")).pipe(
    Config.validate({
      message: `JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes long (RFC 7518: an HS256 key as long as its hash)`,
      validation: (s) => unsetOr(s, (r) => Buffer.byteLength(Redacted.value(r)) >= MIN_SECRET_BYTES),
    }),
  ),
  // A PEM in one environment variable often arrives with its line breaks written as `\n`.
  jwtPublicKey: Config.option(Config.string("JWT_PUBLIC_KEY")).pipe(
    Config.map(Option.map((s) => s.replaceAll("\\n", "\n").trim())),
    Config.map(Option.filter((s) => s.length > 0)),
  ),
  jwtJwksUrl: Config.option(Config.string("JWT_JWKS_URL")).pipe(
    Config.map(Option.filter((s) => s.trim().length > 0)),
    Config.validate({
      message:
        "JWT_JWKS_URL must be an http:// or https:// URL (https://idp.example/realms/x/protocol/openid-connect/certs)",
      validation: (u) => unsetOr(u, (s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol)),
    }),
  ),
  jwtAlgorithms: optionalList("JWT_ALGORITHMS").pipe(
    Config.mapOrFail((listed) => {
      const known = Option.map(listed, (algs) => algs.filter(isAsymmetric))
      return Option.getOrElse(listed, () => []).length === Option.getOrElse(known, () => []).length
        ? Either.right(known)
        : Either.left(
            ConfigError.InvalidData(
              [],
              `JWT_ALGORITHMS must be a comma list of ${ASYMMETRIC_ALGORITHMS.join(", ")} (HS256 comes with JWT_SECRET)`,
            ),
          )
    }),
  ),
  jwtIssuer: optionalList("JWT_ISSUER"),
  jwtAudience: optionalList("JWT_AUDIENCE"),
  jwtRoleClaim: claimPath("JWT_ROLE_CLAIM"),
  jwtUserClaim: claimPath("JWT_USER_CLAIM"),
  // jose's own defaults: an unknown `kid` refetches at most every 30 s; keys are kept 10 minutes.
  jwtJwksCooldownMs: millis("JWT_JWKS_COOLDOWN_MS", 30_000, 0),
  jwtJwksCacheMaxAgeMs: millis("JWT_JWKS_CACHE_MAX_AGE_MS", 600_000, 0),
  jwtJwksTimeoutMs: millis("JWT_JWKS_TIMEOUT_MS", 5_000, 1),
}

type JwtFields = { readonly [K in keyof typeof jwtFields]: Config.Config.Success<(typeof jwtFields)[K]> }

export interface PublicKeySource {
  readonly format: "spki" | "x509"
  readonly pem: string
  readonly algorithms: ReadonlyArray<AsymmetricAlgorithm>
}

export interface JwksSource {
  readonly url: URL
  readonly algorithms: ReadonlyArray<AsymmetricAlgorithm>
  readonly cooldownMs: number
  readonly cacheMaxAgeMs: number
  readonly timeoutMs: number
}

/** How the tokens of one key source are checked and read. */
export interface TokenRules {
  /** Empty: not checked. Otherwise the token's `iss` must be one of them. */
  readonly issuers: ReadonlyArray<string>
  /** Empty: not checked. Otherwise the token's `aud` must name one of them. */
  readonly audiences: ReadonlyArray<string>
  readonly userClaim: ReadonlyArray<string>
  readonly roleClaim: ReadonlyArray<string>
}

/** HS256 tokens (JWT_SECRET) are quotecast's own: `sub` and `role`, no issuer or audience. */
export const OWN_TOKEN_RULES: TokenRules = {
  issuers: [],
  audiences: [],
  userClaim: ["sub"],
  roleClaim: ["role"],
}

/** What the verifier does, derived from the variables (JwtVerifier.ts). */
export interface JwtPlan {
  readonly secret: Option.Option<Uint8Array>
  readonly publicKey: Option.Option<PublicKeySource>
  readonly jwks: Option.Option<JwksSource>
  /** For the identity provider's tokens (JWT_PUBLIC_KEY, JWT_JWKS_URL). */
  readonly providerRules: TokenRules
}

/** The algorithms a public key can verify, the first being the one used when JWT_ALGORITHMS is unset. */
const algorithmsFor = (key: KeyObject): ReadonlyArray<AsymmetricAlgorithm> | undefined => {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === "prime256v1") return ["ES256"]
      if (curve === "secp384r1") return ["ES384"]
      if (curve === "secp521r1") return ["ES512"]
      return undefined
    }
    case "ed25519":
      return ["EdDSA", "Ed25519"]
    default:
      return undefined
  }
}

const invalid = (variable: string, message: string) =>
  Either.left(ConfigError.InvalidData([variable], message))

const publicKeySource = (
  pem: string,
  configured: Option.Option<ReadonlyArray<AsymmetricAlgorithm>>,
): Either.Either<PublicKeySource, ConfigError.ConfigError> => {
  const format = pem.startsWith("-----BEGIN CERTIFICATE-----")
    ? "x509"
    : pem.startsWith("-----BEGIN PUBLIC KEY-----")
      ? "spki"
      : undefined
  if (format === undefined)
    return invalid(
      "JWT_PUBLIC_KEY",
      "JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate (-----BEGIN CERTIFICATE-----)",
    )
  const key = Either.try(() =>
    format === "x509" ? new X509Certificate(pem).publicKey : createPublicKey(pem),
  )
  if (Either.isLeft(key))
    return invalid(
      "JWT_PUBLIC_KEY",
      `JWT_PUBLIC_KEY could not be read as a PEM ${format} (${String(key.left)})`,
    )
  const bits = key.right.asymmetricKeyDetails?.modulusLength
  if (bits !== undefined && bits < 2048)
    return invalid(
      "JWT_PUBLIC_KEY",
      `JWT_PUBLIC_KEY is a ${bits}-bit RSA key; RS* and PS* need 2048 bits or more`,
    )
  const usable = algorithmsFor(key.right)
  if (usable === undefined)
    return invalid(
      "JWT_PUBLIC_KEY",
      `JWT_PUBLIC_KEY must be an RSA, EC (P-256, P-384, P-521) or Ed25519 key, not ${key.right.asymmetricKeyType}`,
    )
  const wanted = Option.getOrElse(configured, () => usable.slice(0, 1))
  const unfit = wanted.filter((a) => !usable.includes(a))
  if (unfit.length > 0)
    return invalid(
      "JWT_ALGORITHMS",
      `JWT_ALGORITHMS lists ${unfit.join(", ")}, which the ${key.right.asymmetricKeyType} key of JWT_PUBLIC_KEY cannot verify (it can: ${usable.join(", ")})`,
    )
  return Either.right({ format, pem, algorithms: wanted })
}

/** The variables together: one key source per kind of algorithm, settings that fit the key. */
export const resolveJwt = (c: JwtFields): Either.Either<JwtPlan, ConfigError.ConfigError> => {
  // Both would verify the same algorithms with nothing to choose between them; a JWKS holds any number of keys.
  if (Option.isSome(c.jwtPublicKey) && Option.isSome(c.jwtJwksUrl))
    return invalid(
      "JWT_PUBLIC_KEY",
      "JWT_PUBLIC_KEY and JWT_JWKS_URL cannot both be set: publish every key in the JWKS instead",
    )
  if (Option.isNone(c.jwtPublicKey) && Option.isNone(c.jwtJwksUrl)) {
    // These describe an identity provider's tokens; HS256 tokens have quotecast's own shape.
    const providerOnly = [
      ["JWT_ALGORITHMS", c.jwtAlgorithms],
      ["JWT_ISSUER", c.jwtIssuer],
      ["JWT_AUDIENCE", c.jwtAudience],
      ["JWT_USER_CLAIM", c.jwtUserClaim],
      ["JWT_ROLE_CLAIM", c.jwtRoleClaim],
    ] as const
    const set = providerOnly.find(([, value]) => Option.isSome(value))
    if (set !== undefined)
      return invalid(
        set[0],
        `${set[0]} applies to the tokens of JWT_PUBLIC_KEY or JWT_JWKS_URL, and neither is set (HS256 tokens of JWT_SECRET carry sub and role, with no issuer or audience check)`,
      )
  }
  const publicKey = Option.match(c.jwtPublicKey, {
    onNone: () => Either.right(Option.none<PublicKeySource>()),
    onSome: (pem) => Either.map(publicKeySource(pem, c.jwtAlgorithms), Option.some),
  })
  if (Either.isLeft(publicKey)) return Either.left(publicKey.left)
  return Either.right({
    secret: Option.map(c.jwtSecret, (s) => new TextEncoder().encode(Redacted.value(s))),
    publicKey: publicKey.right,
    jwks: Option.map(c.jwtJwksUrl, (url) => ({
      url: new URL(url),
      algorithms: Option.getOrElse(c.jwtAlgorithms, () => ASYMMETRIC_ALGORITHMS),
      cooldownMs: c.jwtJwksCooldownMs,
      cacheMaxAgeMs: c.jwtJwksCacheMaxAgeMs,
      timeoutMs: c.jwtJwksTimeoutMs,
    })),
    providerRules: {
      issuers: Option.getOrElse(c.jwtIssuer, () => []),
      audiences: Option.getOrElse(c.jwtAudience, () => []),
      userClaim: Option.getOrElse(c.jwtUserClaim, () => OWN_TOKEN_RULES.userClaim),
      roleClaim: Option.getOrElse(c.jwtRoleClaim, () => OWN_TOKEN_RULES.roleClaim),
    },
  })
}
