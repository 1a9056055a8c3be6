/**
 * Turns one inbound WebSocket frame into a typed ClientMessage, or an InvalidMessage whose
 * `details` say what was wrong (docs/protocol.md: bad input never closes the connection).
 *
 * Cost and answer are bounded whatever the frame holds (docs/limits.md):
 * - its shape is checked before `JSON.parse` in one pass (`jsonLimits.ts`): nesting deeper than
 *   `maxDepth`, an array longer than `maxArrayItems` (default: the longest array a legal
 *   message holds) or an object of more than `maxObjectMembers` is refused unparsed, so Schema
 *   never walks tens of thousands of items, no recursive walk meets a 100,000-deep nesting, and
 *   V8 never parses an object of thousands of distinct keys (its slowest input per byte);
 * - Schema stops at the first issue of each field and at most `MAX_ISSUES` are reported, each
 *   cut to a few hundred characters (it quotes the offending value);
 * - every echoed value (an unknown `type`, JSON.parse's message) is cut short, and a final
 *   guard replaces `details` whose JSON exceeds `MAX_DETAILS_BYTES`, so every INVALID_MESSAGE
 *   stays under 4 KB on the wire.
 */
import { Either, ParseResult, Schema } from "effect"
import {
  CLIENT_MESSAGE_TYPES,
  type ClientMessage,
  type ClientMessageType,
  MAX_TARGET_LENGTH,
  MAX_TARGETS,
  SUBSCRIPTION_TYPES,
  type Subscribe,
  type SubscriptionType,
  schemaForType,
  type Unsubscribe,
} from "./client.js"
import { InvalidMessage } from "./errors.js"
import { checkJsonShape, type JsonShapeLimits, type JsonShapeViolation } from "./jsonLimits.js"

/**
 * Defaults of WS_MAX_JSON_DEPTH, WS_MAX_ARRAY_ITEMS and WS_MAX_OBJECT_MEMBERS: a legal message is
 * 2 deep, its longest array is its targets and it has at most 3 fields; extra fields get room.
 */
export const WS_JSON_LIMITS: JsonShapeLimits = {
  maxDepth: 8,
  maxArrayItems: MAX_TARGETS,
  maxObjectMembers: 32,
}

/** Schema issues listed in `details.errors` at most (at most one per field is found anyway). */
export const MAX_ISSUES = 5
/** Characters kept of an echoed string (an unknown type, a Schema issue's message, JSON.parse's message). */
const MAX_ECHO = 200
/** Bytes of `details` JSON at most: the envelope (type, code, message, timestamp, sequence) adds under 300. */
export const MAX_DETAILS_BYTES = 3072

/**
 * Decoding stops at the first issue (`errors: "all"` over a bad frame formatted every issue,
 * quoting each offending value: 0.5-2 ms for 100 bad targets). Only when that fails is each
 * field decoded on its own, again stopping at its first issue, so the answer still names every
 * wrong field (at most one issue each) at a cost bounded by the number of fields.
 */
interface Decoder {
  readonly whole: (u: unknown) => Either.Either<ClientMessage, ParseResult.ParseError>
  /** One decoder per field besides `type` (known right when these run); keep in step with client.ts. */
  readonly fields: ReadonlyArray<(u: unknown) => Either.Either<unknown, ParseResult.ParseError>>
}

const field = Schema.decodeUnknownEither

const decoders: Record<ClientMessageType, Decoder> = {
  subscribe: {
    whole: Schema.decodeUnknownEither(schemaForType.subscribe),
    fields: [
      field(schemaForType.subscribe.pick("subscription_type")),
      field(schemaForType.subscribe.pick("targets")),
    ],
  },
  unsubscribe: {
    whole: Schema.decodeUnknownEither(schemaForType.unsubscribe),
    fields: [
      field(schemaForType.unsubscribe.pick("subscription_type")),
      field(schemaForType.unsubscribe.pick("targets")),
    ],
  },
  ping: {
    whole: Schema.decodeUnknownEither(schemaForType.ping),
    fields: [field(schemaForType.ping.pick("id"))],
  },
  refresh_token: {
    whole: Schema.decodeUnknownEither(schemaForType.refresh_token),
    fields: [field(schemaForType.refresh_token.pick("token"))],
  },
  reconnect: {
    whole: Schema.decodeUnknownEither(schemaForType.reconnect),
    fields: [field(schemaForType.reconnect.pick("session_id"))],
  },
}

const isKnownType = (t: unknown): t is ClientMessageType =>
  typeof t === "string" && (CLIENT_MESSAGE_TYPES as ReadonlyArray<string>).includes(t)

const kindOf = (u: unknown): string => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u)

/** `s` cut to `max` characters (never in the middle of a surrogate pair), marked with "…" when cut. */
export const truncate = (s: string, max: number = MAX_ECHO): string => {
  if (s.length <= max) return s
  const code = s.charCodeAt(max - 1)
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max
  return `${s.slice(0, end)}…`
}

/**
 * The one constructor of INVALID_MESSAGE: whatever went into `details`, the answer stays small.
 * Oversized details (which the truncations above should never let through) keep only their reason.
 */
const invalid = (reason: string, details: Readonly<Record<string, unknown>>): InvalidMessage => {
  const bounded =
    Buffer.byteLength(JSON.stringify(details)) <= MAX_DETAILS_BYTES
      ? details
      : { reason: details.reason, details_truncated: true }
  return new InvalidMessage({ reason, details: bounded })
}

export const binaryFrame = (): InvalidMessage =>
  invalid("Binary frames are not supported; send JSON text", { reason: "binary_frame" })

const limitMessages: Record<JsonShapeViolation["reason"], (limit: number) => string> = {
  too_deep: (limit) => `JSON nested deeper than ${limit} levels`,
  array_too_long: (limit) => `An array holds more than ${limit} items`,
  too_many_members: (limit) => `An object holds more than ${limit} members`,
}

/** What an unknown `type` was: a string or number is echoed (cut short), anything else is named by its kind. */
const echoType = (type: unknown): Record<string, unknown> =>
  typeof type === "string"
    ? { type: truncate(type, 64) }
    : typeof type === "number" || typeof type === "boolean"
      ? { type }
      : { type_kind: kindOf(type) }

/** Schema's issues as `details.errors`: one entry per path (a union's alternatives joined), at most MAX_ISSUES, each cut short. */
const issueList = (issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>) => {
  const byPath = new Map<string, Array<string>>()
  for (const issue of issues) {
    const path = truncate(issue.path.join("."), 64)
    const messages = byPath.get(path)
    if (messages !== undefined) messages.push(issue.message)
    else if (byPath.size < MAX_ISSUES) byPath.set(path, [issue.message])
  }
  return Array.from(byPath, ([path, messages]) => ({ path, message: truncate(messages.join(" | ")) }))
}

const invalidFields = (
  type: ClientMessageType,
  parsed: object,
  first: ParseResult.ParseError,
): InvalidMessage => {
  const issues: Array<ParseResult.ArrayFormatterIssue> = []
  for (const field of decoders[type].fields) {
    const r = field(parsed)
    if (Either.isLeft(r)) issues.push(...ParseResult.ArrayFormatter.formatErrorSync(r.left))
  }
  // Fields checked apart cannot all pass where the whole failed; if they did, say what the whole said.
  if (issues.length === 0) issues.push(...ParseResult.ArrayFormatter.formatErrorSync(first))
  return invalid(`Invalid ${type} message`, { reason: "invalid_fields", type, errors: issueList(issues) })
}

export const decodeText = (
  text: string,
  limits: JsonShapeLimits = WS_JSON_LIMITS,
): Either.Either<ClientMessage, InvalidMessage> => {
  const violation = checkJsonShape(text, limits)
  if (violation !== undefined) {
    return Either.left(
      invalid(limitMessages[violation.reason](violation.limit), {
        reason: violation.reason,
        limit: violation.limit,
      }),
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return Either.left(
      invalid("Malformed JSON", {
        reason: "malformed_json",
        error: truncate(e instanceof Error ? e.message : String(e)),
      }),
    )
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return Either.left(
      invalid("A message must be a JSON object", { reason: "not_an_object", received: kindOf(parsed) }),
    )
  }
  const type = "type" in parsed ? parsed.type : undefined
  if (!isKnownType(type)) {
    return Either.left(
      type === undefined
        ? invalid("Missing message type", { reason: "missing_type", expected: CLIENT_MESSAGE_TYPES })
        : invalid("Invalid message type", {
            reason: "unknown_type",
            ...echoType(type),
            expected: CLIENT_MESSAGE_TYPES,
          }),
    )
  }
  if (type === "subscribe" || type === "unsubscribe") {
    const valid = validSubscription(type, parsed)
    if (valid !== undefined) return Either.right(valid)
  }
  return Either.mapLeft(decoders[type].whole(parsed), (error) => invalidFields(type, parsed, error))
}

const isTarget = (t: unknown): t is string =>
  typeof t === "string" && t.length >= 1 && t.length <= MAX_TARGET_LENGTH

const isSubscriptionType = (u: unknown): u is SubscriptionType =>
  typeof u === "string" && (SUBSCRIPTION_TYPES as ReadonlyArray<string>).includes(u)

/**
 * `subscribe` and `unsubscribe` as Schema decodes them when they are valid (the same fields in
 * the same order, extra fields dropped), checked by hand: Schema's walk of 20 targets allocated
 * about 20 KB per frame, and with 10,000 clients subscribing at once that is scavenges enough
 * to promote the setups in flight (scenario C). Anything else goes to Schema, which says what
 * is wrong; `test/protocol/decode.test.ts` checks that both agree on arbitrary input.
 */
const validSubscription = (
  type: "subscribe" | "unsubscribe",
  parsed: object,
): Subscribe | Unsubscribe | undefined => {
  const subscriptionType = "subscription_type" in parsed ? parsed.subscription_type : undefined
  const targets: unknown = "targets" in parsed ? parsed.targets : undefined
  if (!isSubscriptionType(subscriptionType) || !Array.isArray(targets)) return undefined
  if (targets.length < 1 || targets.length > MAX_TARGETS || !targets.every(isTarget)) return undefined
  return { type, subscription_type: subscriptionType, targets }
}
