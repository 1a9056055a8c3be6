/**
 * Reading a request body within its limit and the budget, and handing the text on to the
 * endpoints as a request of its own.
 */
import type { IncomingMessage } from "node:http"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Data, Effect } from "effect"
import { type Budget, type Held, overBudget, take } from "./bodyBudget.js"
import { type BodyRejected, tooLarge } from "./bodyRejections.js"

/** The client went away (or the socket failed) while its body was being read. */
export class BodyAborted extends Data.TaggedError("BodyAborted")<{ readonly cause: unknown }> {}

/**
 * Reads the whole body, failing at the first chunk past `limit`. The stream is paused and left
 * unread from there; the 413 answer closes the connection.
 */
export const readBounded = (
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
export const withBody = (
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
