/**
 * HTTP authentication: `Authorization: Bearer <jwt>` verified by the same JwtVerifier as the
 * WebSocket. The middleware yields the caller (401 otherwise); endpoints that need a role
 * check it with `requireRole` (403).
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { type Claims, JwtVerifier, type Role } from "../auth/JwtVerifier.js"

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

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(JwtVerifier, (jwt) =>
    Authentication.of({
      bearer: (token) => {
        const raw = Redacted.value(token)
        if (raw === "") return Effect.fail(new Unauthorized({ message: "Missing bearer token" }))
        return jwt
          .verify(raw)
          .pipe(Effect.mapError((e) => new Unauthorized({ message: `Invalid token (${e.reason})` })))
      },
    }),
  ),
)

export const requireRole = (...roles: ReadonlyArray<Role>) =>
  Effect.flatMap(CurrentUser, (user) =>
    user.role !== undefined && roles.includes(user.role)
      ? Effect.succeed(user)
      : Effect.fail(new Forbidden({ message: `Requires role ${roles.join(" or ")}` })),
  )
