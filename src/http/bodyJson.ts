/**
 * JSON bodies: which bodies are JSON to check, and their problems (shape first, in one pass
 * before `JSON.parse`, then syntax), so malformed or hostile JSON is a 400 or 413, never a 500.
 */
import { checkJsonShape, type JsonShapeLimits } from "../protocol/jsonLimits.js"
import { BodyRejected } from "./bodyRejections.js"

/**
 * Whether a body is JSON to check: whenever the platform would parse it as JSON (no type, or a
 * type that contains "application/json" anywhere, parameters included, in any case:
 * `HttpApiBuilder`'s rule), and whenever its media type, parameters aside, is JSON in any case
 * (`json` or `+json` subtype).
 */
export const isJson = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return true
  const lower = contentType.toLowerCase().trim()
  if (lower === "" || lower.includes("application/json")) return true
  const semi = lower.indexOf(";")
  const media = (semi < 0 ? lower : lower.slice(0, semi)).trim()
  const slash = media.indexOf("/")
  if (slash < 0) return false
  const subtype = media.slice(slash + 1)
  return subtype === "json" || subtype.endsWith("+json")
}

/** The JSON problems of `text`, cheapest check first; undefined when it is well-formed and bounded. */
export const jsonProblem = (
  text: string,
  limits: JsonShapeLimits,
  ingest: boolean,
): BodyRejected | undefined => {
  const v = checkJsonShape(text, limits)
  if (v !== undefined) {
    if (v.reason === "too_many_members") {
      return new BodyRejected({
        reason: "json_too_many_members",
        status: 400,
        tag: "InvalidJson",
        message: `A JSON object has more than ${v.limit} members`,
      })
    }
    if (v.reason === "too_deep") {
      return new BodyRejected({
        reason: "json_too_deep",
        status: 400,
        tag: "InvalidJson",
        message: `JSON nested deeper than ${v.limit} levels`,
      })
    }
    // The longest legal array is an ingest request's events: said in the ingest endpoint's terms.
    return ingest
      ? new BodyRejected({
          reason: "too_many_events",
          status: 413,
          tag: "IngestTooLarge",
          message: `A JSON array holds more than ${v.limit} items; at most ${v.limit} events are accepted per request (INGEST_MAX_EVENTS)`,
          maxEvents: v.limit,
        })
      : new BodyRejected({
          reason: "json_array_too_long",
          status: 413,
          tag: "PayloadTooLarge",
          message: `A JSON array holds more than ${v.limit} items`,
        })
  }
  try {
    JSON.parse(text)
    return undefined
  } catch (e) {
    const detail = e instanceof Error ? e.message.slice(0, 120) : "unparseable"
    return new BodyRejected({
      reason: "invalid_json",
      status: 400,
      tag: "InvalidJson",
      message: `Malformed JSON: ${detail}`,
    })
  }
}
