/**
 * A body fixed when the server starts (the dashboard's files, the AsyncAPI document), served with
 * an ETag and, to clients that accept it, gzip-compressed once rather than per request.
 */
import { createHash } from "node:crypto"
import { gzipSync } from "node:zlib"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"

export interface Asset {
  readonly contentType: string
  readonly body: Uint8Array
  readonly gzip: Uint8Array
  readonly etag: string
}

export const asset = (contentType: string, content: Uint8Array | string): Asset => {
  const body = typeof content === "string" ? new TextEncoder().encode(content) : content
  return {
    contentType,
    body,
    gzip: gzipSync(body, { level: 9 }),
    etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
  }
}

export const acceptsGzip = (request: HttpServerRequest.HttpServerRequest): boolean =>
  /\bgzip\b/.test(request.headers["accept-encoding"] ?? "")

/** 304 when the client has this version, else the body (gzipped when accepted). */
export const serve = (file: Asset) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    // no-cache: clients revalidate every load, so a restarted gateway's new version is picked up.
    const headers = { etag: file.etag, "cache-control": "no-cache", vary: "accept-encoding" }
    if (request.headers["if-none-match"] === file.etag) {
      return HttpServerResponse.empty({ status: 304, headers })
    }
    const gzip = acceptsGzip(request)
    return HttpServerResponse.uint8Array(gzip ? file.gzip : file.body, {
      contentType: file.contentType,
      headers: gzip ? { ...headers, "content-encoding": "gzip" } : headers,
    })
  })
