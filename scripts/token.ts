/**
 * `npm run token -- --sub alice --role admin [--exp 1h] [--rate-limit N]`: prints an HS256 token
 * signed with JWT_SECRET, for development against a gateway that has the same secret. The secret
 * is read and checked with the gateway's own rule (config/jwtConfig.ts), so a token this prints
 * is one that gateway accepts.
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, ConfigError, Console, Data, Effect, Either, Exit, Option, Redacted } from "effect"
import { SignJWT } from "jose"
import { jwtFields } from "../src/config/jwtConfig.js"
import { colourOnTerminal } from "./cliColour.js"

class TokenError extends Data.TaggedError("TokenError")<{ readonly message: string }> {}

const UNITS = { s: 1, m: 60, h: 3600, d: 86_400 } as const

/** `90s`, `30m`, `1h`, `7d` in seconds. */
export const durationSeconds = (text: string): Either.Either<number, string> => {
  const match = /^(\d+)([smhd])$/.exec(text.trim())
  const amount = Number(match?.[1] ?? 0)
  return match === null || amount <= 0
    ? Either.left(
        `--exp must be a positive whole number of s, m, h or d (30m, 1h, 7d), not ${JSON.stringify(text)}`,
      )
    : Either.right(amount * UNITS[match[2] as keyof typeof UNITS])
}

const options = {
  sub: Options.text("sub").pipe(
    Options.withDescription("the user id, the `sub` claim (required, no default)"),
  ),
  role: Options.choice("role", ["admin", "publisher"] as const).pipe(
    Options.optional,
    Options.withDescription("the `role` claim (default: none, an ordinary user)"),
  ),
  exp: Options.text("exp").pipe(
    Options.withDefault("1h"),
    Options.mapEffect((text) =>
      Either.mapLeft(durationSeconds(text), (message) => ValidationError.invalidValue(HelpDoc.p(message))),
    ),
    Options.withDescription(
      "lifetime from now, the `exp` claim: a number with s, m, h or d, as 30m or 7d (default: 1h)",
    ),
  ),
  rateLimit: Options.integer("rate-limit").pipe(
    Options.optional,
    Options.withDescription(
      "messages per second for this user's connections, the `rate_limit` claim (default: none, the gateway's RATE_LIMIT applies)",
    ),
  ),
}

/** JWT_SECRET as the gateway reads it: unset is an error here, too short is the gateway's error. */
const secret = Config.map(
  jwtFields.jwtSecret,
  Option.map((r) => new TextEncoder().encode(Redacted.value(r))),
)

const token = Command.make("token", options, ({ sub, role, exp, rateLimit }) =>
  Effect.gen(function* () {
    const key = yield* secret.pipe(
      Effect.mapError((e: ConfigError.ConfigError) => new TokenError({ message: configMessage(e) })),
      Effect.flatMap(
        Option.match({
          onNone: () =>
            Effect.fail(
              new TokenError({
                message: "JWT_SECRET is unset: set it to the gateway's secret (at least 32 bytes)",
              }),
            ),
          onSome: Effect.succeed,
        }),
      ),
    )
    if (Option.isSome(rateLimit) && rateLimit.value <= 0)
      return yield* new TokenError({
        message: `--rate-limit must be a positive integer, not ${rateLimit.value}`,
      })
    const now = Math.floor(Date.now() / 1000)
    const claims = {
      sub,
      ...Option.match(role, { onNone: () => ({}), onSome: (r) => ({ role: r }) }),
      ...Option.match(rateLimit, { onNone: () => ({}), onSome: (n) => ({ rate_limit: n }) }),
    }
    const jwt = yield* Effect.promise(() =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuedAt(now)
        .setExpirationTime(now + exp)
        .sign(key),
    )
    yield* Console.log(jwt)
  }),
).pipe(Command.withDescription("Print an HS256 token signed with JWT_SECRET (development only)"))

/** A ConfigError's message alone (JWT_SECRET's own says what it needs). */
const configMessage = (e: ConfigError.ConfigError): string =>
  e._op === "And" || e._op === "Or" ? configMessage(e.left) : e.message

const cli = Command.run(token, { name: "quotecast-token", version: "0.1.0" })

NodeRuntime.runMain(
  colourOnTerminal(cli(process.argv)).pipe(
    Effect.tapErrorTag("TokenError", (e) => Console.error(`token: ${e.message}`)),
    Effect.provide(NodeContext.layer),
  ),
  {
    // TokenError is reported above and @effect/cli reports invalid options itself.
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) return onExit(0)
      const expected = Option.isSome(Cause.failureOption(exit.cause))
      if (!expected && !Cause.isInterruptedOnly(exit.cause)) console.error(Cause.pretty(exit.cause))
      return onExit(1)
    },
  },
)
