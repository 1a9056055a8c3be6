/**
 * What quotecast reads from a verified token's payload, decoded with Schemas: a good signature
 * says who issued the payload, not what shape the issuer's mappers gave it. The user id and the
 * role sit at configurable paths (JWT_USER_CLAIM, JWT_ROLE_CLAIM: `realm_access.roles` where
 * Keycloak puts realm roles).
 */
import { Either, Option, Schema } from "effect"
import type { TokenRejection } from "./rejections.js"

export type Role = "admin" | "publisher"

export interface Claims {
  readonly userId: string
  readonly role: Role | undefined
  /** Expiry in epoch milliseconds, undefined for tokens without `exp`. */
  readonly expiresAt: number | undefined
  /** Per-connection message rate from the `rate_limit` claim (tiers). */
  readonly rateLimit: number | undefined
}

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const Registered = Schema.Struct({
  exp: Schema.optional(Schema.Number),
  rate_limit: Schema.optional(Schema.Unknown),
})
const UserId = Schema.String
const RoleNames = Schema.Union(Schema.String, Schema.Array(Schema.String))
/** A `rate_limit` that is not one is ignored (the default applies), as it always was. */
const RateLimit = Schema.Number.pipe(Schema.finite(), Schema.positive())

const decodeObject = Schema.decodeUnknownEither(JsonObject)
const decodeRegistered = Schema.decodeUnknownEither(Registered)
const decodeUserId = Schema.decodeUnknownEither(UserId)
const decodeRoleNames = Schema.decodeUnknownEither(RoleNames)
const isRateLimit = Schema.is(RateLimit)

/**
 * The value at `path`: none when a key along it is absent or null; Left when a step that should
 * hold the next key is not an object.
 */
const valueAt = (
  payload: unknown,
  path: ReadonlyArray<string>,
): Either.Either<Option.Option<unknown>, void> => {
  let current: unknown = payload
  for (const key of path) {
    if (current === null || current === undefined) return Either.right(Option.none())
    const object = decodeObject(current)
    if (Either.isLeft(object)) return Either.left(undefined)
    current = Object.hasOwn(object.right, key) ? object.right[key] : undefined
  }
  return Either.right(current === null || current === undefined ? Option.none() : Option.some(current))
}

/** Admin over publisher when a token carries both; other role names are not the gateway's. */
export const roleOf = (names: ReadonlyArray<string>): Role | undefined =>
  names.includes("admin") ? "admin" : names.includes("publisher") ? "publisher" : undefined

export interface ClaimPaths {
  readonly userClaim: ReadonlyArray<string>
  readonly roleClaim: ReadonlyArray<string>
}

export const readClaims = (payload: unknown, paths: ClaimPaths): Either.Either<Claims, TokenRejection> => {
  const registered = decodeRegistered(payload)
  if (Either.isLeft(registered)) return Either.left("invalid_claims")
  const user = valueAt(payload, paths.userClaim)
  if (Either.isLeft(user)) return Either.left("invalid_user_claim")
  if (Option.isNone(user.right)) return Either.left("missing_user_id")
  const userId = decodeUserId(user.right.value)
  if (Either.isLeft(userId)) return Either.left("invalid_user_claim")
  if (userId.right.length === 0) return Either.left("missing_user_id")
  const roleValue = valueAt(payload, paths.roleClaim)
  if (Either.isLeft(roleValue)) return Either.left("invalid_role_claim")
  const names = Option.match(roleValue.right, {
    onNone: () => Either.right<ReadonlyArray<string>>([]),
    onSome: (v) => Either.map(decodeRoleNames(v), (r) => (typeof r === "string" ? [r] : r)),
  })
  if (Either.isLeft(names)) return Either.left("invalid_role_claim")
  const { exp, rate_limit } = registered.right
  return Either.right({
    userId: userId.right,
    role: roleOf(names.right),
    expiresAt: exp === undefined ? undefined : exp * 1000,
    rateLimit: isRateLimit(rate_limit) ? Math.max(1, Math.floor(rate_limit)) : undefined,
  })
}
