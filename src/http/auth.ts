/**
 * HTTP authentication: `Authorization: Bearer <jwt>` verified by the same JwtVerifier as the
 * WebSocket. The middleware yields the caller (401 otherwise); endpoints that need a role
 * check it with `requireRole` (403). The endpoints that take a body are checked the same way
 * before their body is read (`bodyLimits.ts`), with the same answers.
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { type Claims, JwtVerifier, type JwtVerifierShape, type Role } from "../auth/JwtVerifier.js"

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 }),
) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 }),
) {}

export class CurrentUser extends Context.Tag("quotecast/CurrentUser")<CurrentUser, Claims>() {}

export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("quotecast/Authentication", {
  failure: Unauthorized,
  provides: CurrentUser,
  security: { bearer: HttpApiSecurity.bearer },
}) {}

/**
 * The token of an Authorization header, read as the platform's `HttpApiSecurity.bearer` reads it
 * (what follows the 7 characters of "Bearer "), so that `bodyLimits.ts`, which checks the token
 * before a body is read, agrees with the endpoints.
 */
export const bearerTokenOf = (authorization: string | undefined): string =>
  (authorization ?? "").slice("Bearer ".length)

/** The caller of `token`, as the Authentication middleware answers it (401 when not valid). */
export const authenticate = (jwt: JwtVerifierShape, token: string): Effect.Effect<Claims, Unauthorized> =>
  token === ""
    ? Effect.fail(new Unauthorized({ message: "Missing bearer token" }))
    : jwt
        .verify(token)
        .pipe(Effect.mapError((e) => new Unauthorized({ message: `Invalid token (${e.reason})` })))

/** `user` when it holds one of `roles`, else the 403 `requireRole` answers. */
export const checkRole = (user: Claims, roles: ReadonlyArray<Role>): Effect.Effect<Claims, Forbidden> =>
  user.role !== undefined && roles.includes(user.role)
    ? Effect.succeed(user)
    : Effect.fail(new Forbidden({ message: `Requires role ${roles.join(" or ")}` }))

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(JwtVerifier, (jwt) =>
    Authentication.of({
      bearer: (token) => authenticate(jwt, Redacted.value(token)),
    }),
  ),
)

export const requireRole = (...roles: ReadonlyArray<Role>) =>
  Effect.flatMap(CurrentUser, (user) => checkRole(user, roles))
