/**
 * Request bodies, bounded before anything parses them. Wraps the whole HTTP app (every endpoint):
 *
 * - a body declared larger than the limit (Content-Length) is answered 413 at once, unread, and the
 *   connection is closed after the answer (`Connection: close`), so the upload stops there;
 * - a chunked body is read and counted, and the read stops at the first byte past the limit (413);
 * - the bodies held at once by all requests share a budget (HTTP_BODY_BUDGET_BYTES): past it a
 *   request is answered 503 with Retry-After, unread, so many concurrent bodies cannot exhaust
 *   the heap;
 * - a JSON body is checked for nesting depth and array length in one pass before `JSON.parse`
 *   (`protocol/jsonLimits.ts`), then parsed once here so that malformed JSON is a 400 with a JSON
 *   reason, never a 500 (deep nesting used to overflow Schema's error formatting).
 *
 * The platform's own `MaxBodySize` is not used: past it, the platform destroys the request stream,
 * which destroys the socket, so the client would get no answer at all.
 *
 * The endpoints then read the body from a copy of the request that holds the text already read
 * (`HttpServerRequest.fromWeb`); the answer still goes out through the original Node response.
 */
import type { IncomingMessage } from "node:http"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Data, Effect } from "effect"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { checkJsonShape } from "../protocol/jsonLimits.js"

export interface BodyLimits {
  readonly maxBodyBytes: number
  readonly ingestMaxBodyBytes: number
  readonly maxJsonDepth: number
  /** V8 parses an object of many distinct keys slowly (a 650 KB one of 60,000: 100-230 ms). */
  readonly maxObjectMembers: number
  /** No JSON array in a body may be longer: the longest legal one is an ingest request's events. */
  readonly maxArrayItems: number
  /** Bytes of request bodies held at once across all requests (read, or being handled). */
  readonly budgetBytes: number
}

/** The body bytes held by requests in flight, against `BodyLimits.budgetBytes`. */
interface Budget {
  used: number
  readonly limit: number
}

/** What one request holds of the budget, given back when it is answered. */
interface Held {
  bytes: number
}

const busy = (limit: number) =>
  new BodyRejected({
    reason: "body_budget",
    status: 503,
    tag: "ServerBusy",
    message: `Request bodies in flight have reached ${limit} bytes; retry shortly`,
  })

/** Why a body was refused; each is a `quotecast_http_rejections_total` reason. */
export type BodyRejectionReason =
  | "body_too_large"
  | "json_too_deep"
  | "json_array_too_long"
  | "json_too_many_members"
  | "invalid_json"
  | "too_many_events"
  | "body_budget"

export class BodyRejected extends Data.TaggedError("BodyRejected")<{
  readonly reason: BodyRejectionReason
  readonly status: 400 | 413 | 503
  /** The `_tag` of the JSON answer, as the API's own errors have. */
  readonly tag: "PayloadTooLarge" | "InvalidJson" | "IngestTooLarge" | "ServerBusy"
  readonly message: string
  /** For IngestTooLarge, as the ingest endpoint's own answer has it. */
  readonly maxEvents?: number
}> {}

/** The client went away (or the socket failed) while its body was being read. */
class BodyAborted extends Data.TaggedError("BodyAborted")<{ readonly cause: unknown }> {}

const pathOf = (url: string): string => {
  const q = url.indexOf("?")
  return q < 0 ? url : url.slice(0, q)
}

const isIngest = (url: string) => pathOf(url) === "/v1/ingest"

/** The body limit of a request to `url` (also used for `Expect: 100-continue`, in Server.ts). */
export const bodyLimitFor = (limits: BodyLimits, url: string): number =>
  isIngest(url) ? limits.ingestMaxBodyBytes : limits.maxBodyBytes

const tooLarge = (limit: number) =>
  new BodyRejected({
    reason: "body_too_large",
    status: 413,
    tag: "PayloadTooLarge",
    message: `Request body exceeds ${limit} bytes`,
  })

/**
 * Reads the whole body, failing at the first chunk past `limit`. The stream is paused and left
 * unread from there; the 413 answer closes the connection.
 */
const readBounded = (
  req: IncomingMessage,
  limit: number,
  budget: Budget,
  held: Held,
): Effect.Effect<Buffer, BodyRejected | BodyAborted> =>
  Effect.async<Buffer, BodyRejected | BodyAborted>((resume) => {
    const chunks: Array<Buffer> = []
    let bytes = 0
    const cleanup = () => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
      req.off("aborted", onAborted)
    }
    const stop = (e: BodyRejected) => {
      cleanup()
      req.pause()
      chunks.length = 0
      resume(Effect.fail(e))
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > limit) return stop(tooLarge(limit))
      if (budget.used + chunk.length > budget.limit) return stop(busy(budget.limit))
      budget.used += chunk.length
      held.bytes += chunk.length
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks, bytes)))
    }
    const onError = (cause: Error) => {
      cleanup()
      resume(Effect.fail(new BodyAborted({ cause })))
    }
    const onAborted = () => onError(new Error("request aborted"))
    req.on("data", onData)
    req.once("end", onEnd)
    req.once("error", onError)
    req.once("aborted", onAborted)
    return Effect.sync(cleanup)
  })

const isJson = (contentType: string | undefined) => contentType === undefined || contentType.includes("json")

/** The JSON problems of `text`, cheapest check first; undefined when it is well-formed and bounded. */
const jsonProblem = (text: string, limits: BodyLimits, ingest: boolean): BodyRejected | undefined => {
  const v = checkJsonShape(text, {
    maxDepth: limits.maxJsonDepth,
    maxArrayItems: limits.maxArrayItems,
    maxObjectMembers: limits.maxObjectMembers,
  })
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

/** Headers that describe the original transfer, not the body handed on. */
const TRANSFER_HEADERS: ReadonlySet<string> = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "expect",
  "keep-alive",
  "upgrade",
])

/** The request as the endpoints see it: same method, URL and headers, with the body already read. */
const withBody = (
  request: HttpServerRequest.HttpServerRequest,
  body: string,
): HttpServerRequest.HttpServerRequest => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (!TRANSFER_HEADERS.has(name)) headers.append(name, value)
  }
  return HttpServerRequest.fromWeb(
    new Request(`http://localhost${request.url}`, { method: request.method, headers, body }),
  )
}

/** The JSON answer to a refused body, in the shape of the API's other errors (`_tag`, `message`). */
export const rejectionResponse = (e: BodyRejected): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    e.maxEvents === undefined
      ? { _tag: e.tag, message: e.message }
      : { _tag: e.tag, message: e.message, max_events: e.maxEvents },
    // After a 413 or 503 the rest of the body is not read: the connection cannot carry another request.
    {
      status: e.status,
      headers:
        e.status === 413
          ? { connection: "close" }
          : e.status === 503
            ? { connection: "close", "retry-after": "1" }
            : {},
    },
  )

/** `app` with every request body bounded as described above. */
export const limitBodies = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>,
  limits: BodyLimits,
  stats: GatewayStatsImpl,
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> => {
  const budget: Budget = { used: 0, limit: limits.budgetBytes }
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const declared = request.headers["content-length"]
    const chunked = request.headers["transfer-encoding"] !== undefined
    if (!chunked && (declared === undefined || declared === "0")) return app
    const limit = bodyLimitFor(limits, request.url)
    const refuse = (e: BodyRejected) => {
      stats.httpRejected(e.reason)
      return Effect.as(
        Effect.logDebug("http body refused").pipe(
          Effect.annotateLogs({ reason: e.reason, path: pathOf(request.url), method: request.method }),
        ),
        rejectionResponse(e),
      )
    }
    if (declared !== undefined && Number(declared) > limit) return refuse(tooLarge(limit))
    if (declared !== undefined && budget.used + Number(declared) > budget.limit)
      return refuse(busy(budget.limit))
    const held: Held = { bytes: 0 }
    return readBounded(NodeHttpServerRequest.toIncomingMessage(request), limit, budget, held).pipe(
      Effect.flatMap((buffer) => {
        // A GET or HEAD body means nothing to any endpoint (and a web Request cannot carry one):
        // bounded and read, it is dropped.
        if (request.method === "GET" || request.method === "HEAD") return Effect.succeed(undefined)
        const text = buffer.toString("utf8")
        const problem = isJson(request.headers["content-type"])
          ? jsonProblem(text, limits, isIngest(request.url))
          : undefined
        return problem === undefined ? Effect.succeed(text) : Effect.fail(problem)
      }),
      Effect.matchEffect({
        onFailure: (e) =>
          e._tag === "BodyRejected"
            ? refuse(e)
            : // Nobody is left to answer; the platform ends the response of a gone client.
              Effect.as(
                Effect.logDebug("http body aborted", e.cause),
                HttpServerResponse.empty({ status: 400 }),
              ),
        onSuccess: (text) =>
          text === undefined
            ? app
            : Effect.provideService(app, HttpServerRequest.HttpServerRequest, withBody(request, text)),
      }),
      // The body's bytes are held until the answer: the endpoint works on the text.
      Effect.ensuring(
        Effect.sync(() => {
          budget.used -= held.bytes
          held.bytes = 0
        }),
      ),
    )
  })
}
