/**
 * Turns one inbound WebSocket frame into a typed ClientMessage, or an InvalidMessage whose
 * `details` say exactly what was wrong (PROTOCOL.md: bad input never closes the connection).
 */
import { Either, ParseResult, Schema } from "effect"
import { CLIENT_MESSAGE_TYPES, type ClientMessage, type ClientMessageType, schemaForType } from "./client.js"
import { InvalidMessage } from "./errors.js"

const decoders: Record<
  ClientMessageType,
  (u: unknown) => Either.Either<ClientMessage, ParseResult.ParseError>
> = {
  subscribe: Schema.decodeUnknownEither(schemaForType.subscribe, { errors: "all" }),
  unsubscribe: Schema.decodeUnknownEither(schemaForType.unsubscribe, { errors: "all" }),
  ping: Schema.decodeUnknownEither(schemaForType.ping, { errors: "all" }),
  refresh_token: Schema.decodeUnknownEither(schemaForType.refresh_token, { errors: "all" }),
  reconnect: Schema.decodeUnknownEither(schemaForType.reconnect, { errors: "all" }),
}

const isKnownType = (t: unknown): t is ClientMessageType =>
  typeof t === "string" && (CLIENT_MESSAGE_TYPES as ReadonlyArray<string>).includes(t)

const kindOf = (u: unknown): string => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u)

export const binaryFrame = (): InvalidMessage =>
  new InvalidMessage({
    reason: "Binary frames are not supported; send JSON text",
    details: { reason: "binary_frame" },
  })

export const decodeText = (text: string): Either.Either<ClientMessage, InvalidMessage> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return Either.left(
      new InvalidMessage({
        reason: "Malformed JSON",
        details: { reason: "malformed_json", error: e instanceof Error ? e.message : String(e) },
      }),
    )
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return Either.left(
      new InvalidMessage({
        reason: "A message must be a JSON object",
        details: { reason: "not_an_object", received: kindOf(parsed) },
      }),
    )
  }
  const type = (parsed as { readonly type?: unknown }).type
  if (!isKnownType(type)) {
    return Either.left(
      new InvalidMessage({
        reason: type === undefined ? "Missing message type" : "Invalid message type",
        details: {
          reason: type === undefined ? "missing_type" : "unknown_type",
          ...(type === undefined ? {} : { type }),
          expected: CLIENT_MESSAGE_TYPES,
        },
      }),
    )
  }
  return Either.mapLeft(
    decoders[type](parsed),
    (error) =>
      new InvalidMessage({
        reason: `Invalid ${type} message`,
        details: {
          reason: "invalid_fields",
          type,
          errors: ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
            path: issue.path.join("."),
            message: issue.message,
          })),
        },
      }),
  )
}
