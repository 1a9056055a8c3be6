/**
 * Why a request body was refused before an endpoint saw it, and the answer that says so: a JSON
 * error in the shape of the API's own (`_tag`, `message`), with the status and headers each needs.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Data } from "effect"

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

export const busy = (limit: number) =>
  new BodyRejected({
    reason: "body_budget",
    status: 503,
    tag: "ServerBusy",
    message: `Request bodies in flight have reached ${limit} bytes; retry shortly`,
  })

export const addressBusy = (limit: number) =>
  new BodyRejected({
    reason: "body_budget_per_address",
    status: 503,
    tag: "ServerBusy",
    message: `Request bodies in flight from your address have reached ${limit} bytes; retry shortly`,
  })

export const tooLarge = (limit: number) =>
  new BodyRejected({
    reason: "body_too_large",
    status: 413,
    tag: "PayloadTooLarge",
    message: `Request body exceeds ${limit} bytes`,
  })

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

export const unauthorized = (message: string) =>
  new BodyRejected({ reason: "unauthorized", status: 401, tag: "Unauthorized", message })

export const forbidden = (message: string) =>
  new BodyRejected({ reason: "forbidden", status: 403, tag: "Forbidden", message })
