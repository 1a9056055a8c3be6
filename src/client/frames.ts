/**
 * Frame handling shared by the Effect API and the facade: JSON text -> single messages
 * (a `batch` is unpacked into its messages) -> typed `ServerSingle`s.
 */
import { Either, ParseResult, Schema } from "effect"
import { SERVER_SINGLE_TYPES, ServerSingle } from "../protocol/server.js"

export interface UnpackedFrame {
  /** The single messages of the frame: the frame itself, or the `messages` of a `batch`. */
  readonly items: ReadonlyArray<unknown>
  /** For a batch, the envelope's `sequence` (the number of its last message). */
  readonly batchSequence: number | undefined
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** Parses one text frame and unpacks a batch. Left: why the frame is unreadable. */
export const unpackFrame = (text: string): Either.Either<UnpackedFrame, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return Either.left(`malformed JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!isRecord(parsed)) return Either.left("frame is not a JSON object")
  if (parsed.type !== "batch") return Either.right({ items: [parsed], batchSequence: undefined })
  if (!Array.isArray(parsed.messages)) return Either.left("batch without a messages array")
  return Either.right({
    items: parsed.messages,
    batchSequence: typeof parsed.sequence === "number" ? parsed.sequence : undefined,
  })
}

/** The `sequence` of an unvalidated message, so numbering is tracked even for messages we cannot type. */
export const sequenceOf = (item: unknown): number | undefined =>
  isRecord(item) && typeof item.sequence === "number" && Number.isInteger(item.sequence)
    ? item.sequence
    : undefined

// Preserve fields this SDK version does not know, so a newer server's additions reach the caller.
const decodeServerSingle = Schema.decodeUnknownEither(ServerSingle, { onExcessProperty: "preserve" })

/**
 * Types one message. With `validate` the full Schema is checked (a bad message is reported, not
 * delivered); without it only `type` and `sequence` are checked, for high-rate consumers that
 * trust the server.
 */
export const decodeSingle = (item: unknown, validate: boolean): Either.Either<ServerSingle, string> => {
  if (validate) {
    return Either.mapLeft(decodeServerSingle(item), (error) =>
      ParseResult.TreeFormatter.formatErrorSync(error),
    )
  }
  if (
    isRecord(item) &&
    typeof item.type === "string" &&
    SERVER_SINGLE_TYPES.has(item.type) &&
    (sequenceOf(item) ?? 0) > 0
  ) {
    return Either.right(item as unknown as ServerSingle)
  }
  return Either.left("not a known server message")
}

/** A frame excerpt for error reports; frames can be large. */
export const excerpt = (text: string, max = 200): string =>
  text.length <= max ? text : `${text.slice(0, max)}...`
