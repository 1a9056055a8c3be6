/**
 * Request bodies, bounded before anything parses them. Wraps the whole HTTP app (every endpoint):
 *
 * - a body declared larger than the limit (Content-Length) is answered 413 at once, unread, and the
 *   connection is closed after the answer (`Connection: close`), so the upload stops there;
 * - a chunked body is read and counted, and the read stops at the first byte past the limit (413);
 * - no public endpoint takes a body, and every endpoint that does needs a token: a request with a
 *   body (other than GET or HEAD) must carry a valid bearer token, and for /v1/ingest the role
 *   publisher or admin, before any of its body is read; otherwise it is answered 401 or 403 at
 *   once, with the API's own JSON, the body unread and the connection closed. So nobody without
 *   a token can hold a byte of the budget below. (The router matches paths loosely, any case,
 *   trailing or doubled slashes: so the token rule goes by method, not by path.) A GET or HEAD
 *   body means nothing to any endpoint: it is read, bounded, and dropped as it arrives;
 * - the bodies held at once by all requests share a budget (HTTP_BODY_BUDGET_BYTES), and one
 *   client address (its admission key, `clientAddress.ts`) may hold at most
 *   HTTP_BODY_BUDGET_PER_ADDRESS_BYTES of it: past either the request is answered 503 with
 *   Retry-After, unread, so many concurrent bodies cannot exhaust the heap and one address (a
 *   leaked token, a misbehaving publisher) cannot starve the others;
 * - a JSON body is checked for nesting depth and array length in one pass before `JSON.parse`
 *   (`protocol/jsonLimits.ts`), then parsed once here so that malformed JSON is a 400 with a JSON
 *   reason, never a 500 (deep nesting used to overflow Schema's error formatting). A body is JSON
 *   to check whenever the platform would parse it as JSON, and also when its media type says so
 *   in any case (`Application/JSON`, `application/vnd.x+json`, `text/json`; see `isJson`).
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
import type { JwtVerifierShape, Role } from "../auth/JwtVerifier.js"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { checkJsonShape } from "../protocol/jsonLimits.js"
import { authenticate, bearerTokenOf, checkRole } from "./auth.js"

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
  /** The most of `budgetBytes` that the requests of one client address may hold at once. */
  readonly budgetPerAddressBytes: number
}

/** Who may send a body, checked before it is read. */
export interface BodyGate {
  /** The same verifier as the Authentication middleware's. */
  readonly jwt: JwtVerifierShape
  /** The key a request's client address is counted under (`admissionKeyOf(clientAddressOf(..))`). */
  readonly addressKeyOf: (req: IncomingMessage) => string
}

/** The body bytes held by requests in flight, against `BodyLimits.budgetBytes`, and per address. */
interface Budget {
  used: number
  readonly limit: number
  readonly perAddressLimit: number
  /** Bytes held per address key; an address holding nothing has no entry. */
  readonly byAddress: Map<string, number>
}

/** What one request holds of the budget, given back when it is answered. */
interface Held {
  bytes: number
  readonly key: string
}

const busy = (limit: number) =>
  new BodyRejected({
    reason: "body_budget",
    status: 503,
    tag: "ServerBusy",
    message: `Request bodies in flight have reached ${limit} bytes; retry shortly`,
  })

const addressBusy = (limit: number) =>
  new BodyRejected({
    reason: "body_budget_per_address",
    status: 503,
    tag: "ServerBusy",
    message: `Request bodies in flight from your address have reached ${limit} bytes; retry shortly`,
  })

/** Why `bytes` more cannot be held for `held` now; undefined when they can. */
const overBudget = (budget: Budget, held: Held, bytes: number): BodyRejected | undefined => {
  if ((budget.byAddress.get(held.key) ?? 0) + bytes > budget.perAddressLimit)
    return addressBusy(budget.perAddressLimit)
  if (budget.used + bytes > budget.limit) return busy(budget.limit)
  return undefined
}

const take = (budget: Budget, held: Held, bytes: number) => {
  budget.used += bytes
  budget.byAddress.set(held.key, (budget.byAddress.get(held.key) ?? 0) + bytes)
  held.bytes += bytes
}

const giveBack = (budget: Budget, held: Held) => {
  if (held.bytes === 0) return
  budget.used -= held.bytes
  const left = (budget.byAddress.get(held.key) ?? 0) - held.bytes
  if (left > 0) budget.byAddress.set(held.key, left)
  else budget.byAddress.delete(held.key)
  held.bytes = 0
}

/** Why a body was refused; each is a `quotecast_http_rejections_total` reason. */
export type BodyRejectionReason =
  | "body_too_large"
  | "json_too_deep"
  | "json_array_too_long"
  | "json_too_many_members"
  | "invalid_json"
  | "too_many_events"
  | "body_budget"
  | "body_budget_per_address"
  | "unauthorized"
  | "forbidden"

export class BodyRejected extends Data.TaggedError("BodyRejected")<{
  readonly reason: BodyRejectionReason
  readonly status: 400 | 401 | 403 | 413 | 503
  /** The `_tag` of the JSON answer, as the API's own errors have. */
  readonly tag:
    | "PayloadTooLarge"
    | "InvalidJson"
    | "IngestTooLarge"
    | "ServerBusy"
    | "Unauthorized"
    | "Forbidden"
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

/**
 * The path as the router matches it: any case, doubled and trailing slashes ignored (checked
 * against the platform's router), percent-escapes decoded.
 */
const routeOf = (url: string): string => {
  let path = pathOf(url)
  try {
    path = decodeURIComponent(path)
  } catch {
    // A malformed escape: the router will not match it to an endpoint either.
  }
  return path
    .toLowerCase()
    .replace(/\/{2,}/g, "/")
    .replace(/(.)\/+$/, "$1")
}

const isIngest = (url: string) => routeOf(url) === "/v1/ingest"

/** The roles that may send a body to /v1/ingest (handlers.ts checks the same). */
const INGEST_ROLES: ReadonlyArray<Role> = ["publisher", "admin"]

/** The body limit of a request to `url`. */
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
  /** Undefined: the body is counted against `limit` and dropped as it arrives, never held. */
  held: Held | undefined,
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
      if (held === undefined) return
      const refused = overBudget(budget, held, chunk.length)
      if (refused !== undefined) return stop(refused)
      take(budget, held, chunk.length)
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(held === undefined ? EMPTY : Buffer.concat(chunks, bytes)))
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

const EMPTY = Buffer.alloc(0)

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
    // Past a 400 the body was read whole; after any other refusal the rest of it is not read, so
    // the connection cannot carry another request.
    {
      status: e.status,
      headers:
        e.status === 400
          ? {}
          : e.status === 503
            ? { connection: "close", "retry-after": "1" }
            : { connection: "close" },
    },
  )

const unauthorized = (message: string) =>
  new BodyRejected({ reason: "unauthorized", status: 401, tag: "Unauthorized", message })

const forbidden = (message: string) =>
  new BodyRejected({ reason: "forbidden", status: 403, tag: "Forbidden", message })

/** Whether the sender of `request` may send it a body: the same checks and answers as the API's. */
const authorize = (
  gate: BodyGate,
  request: HttpServerRequest.HttpServerRequest,
): Effect.Effect<void, BodyRejected> =>
  authenticate(gate.jwt, bearerTokenOf(request.headers.authorization)).pipe(
    Effect.mapError((e) => unauthorized(e.message)),
    Effect.flatMap((user) =>
      isIngest(request.url)
        ? Effect.asVoid(Effect.mapError(checkRole(user, INGEST_ROLES), (e) => forbidden(e.message)))
        : Effect.void,
    ),
  )

/** `app` with every request body bounded as described above. */
export const limitBodies = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest>,
  limits: BodyLimits,
  stats: GatewayStatsImpl,
  gate: BodyGate,
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> => {
  const budget: Budget = {
    used: 0,
    limit: limits.budgetBytes,
    perAddressLimit: limits.budgetPerAddressBytes,
    byAddress: new Map(),
  }
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
    const incoming = NodeHttpServerRequest.toIncomingMessage(request)
    // A GET or HEAD body means nothing to any endpoint (and a web Request cannot carry one):
    // counted against the limit and dropped as it arrives, never held.
    const dropped = request.method === "GET" || request.method === "HEAD"
    const held: Held | undefined = dropped ? undefined : { bytes: 0, key: gate.addressKeyOf(incoming) }
    const admit: Effect.Effect<void, BodyRejected> =
      held === undefined
        ? Effect.void
        : Effect.flatMap(authorize(gate, request), () => {
            const refused = declared === undefined ? undefined : overBudget(budget, held, Number(declared))
            return refused === undefined ? Effect.void : Effect.fail(refused)
          })
    return admit.pipe(
      Effect.flatMap(() => {
        // `Expect: 100-continue`: the client is invited to send its body only now (Server.ts).
        if (request.headers.expect?.toLowerCase() === "100-continue") {
          NodeHttpServerRequest.toServerResponse(request).writeContinue()
        }
        return readBounded(incoming, limit, budget, held)
      }),
      Effect.flatMap((buffer) => {
        if (held === undefined) return Effect.succeed(undefined)
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
          if (held !== undefined) giveBack(budget, held)
        }),
      ),
    )
  })
}
