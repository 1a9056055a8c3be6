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
import { Effect } from "effect"
import type { JwtVerifierShape, Role } from "../auth/JwtVerifier.js"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { authenticate, bearerTokenOf, checkRole } from "./auth.js"
import { giveBack, type Held, makeBudget, overBudget } from "./bodyBudget.js"
import { isJson, jsonProblem } from "./bodyJson.js"
import { readBounded, withBody } from "./bodyRead.js"
import { BodyRejected, forbidden, rejectionResponse, tooLarge, unauthorized } from "./bodyRejections.js"

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
  const budget = makeBudget(limits.budgetBytes, limits.budgetPerAddressBytes, (used) => {
    stats.httpBodyBytesHeld = used
  })
  const shape = {
    maxDepth: limits.maxJsonDepth,
    maxArrayItems: limits.maxArrayItems,
    maxObjectMembers: limits.maxObjectMembers,
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
          ? jsonProblem(text, shape, isIngest(request.url))
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
