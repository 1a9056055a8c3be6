/**
 * The descriptions of the two APIs on this port: the AsyncAPI document of the WebSocket protocol
 * at `GET /asyncapi.json` (built from the protocol Schemas once, when the server starts), and the
 * OpenAPI page at `/docs`, built on its first request (`apiDocsPage.ts`) and gzipped:
 * `HttpApiSwagger` answers it as one uncompressed HTML page (1.9 MB, Swagger UI inlined), and
 * neither the platform nor Node compresses responses.
 */
import { gzip } from "node:zlib"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer } from "effect"
import { asyncApiDocument } from "../protocol/asyncapi.js"
import { acceptsGzip, asset, serve } from "./staticAsset.js"

export const ASYNCAPI_PATH = "/asyncapi.json"
const DOCS_PATH = "/docs"

const AsyncApiLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    const document = asset("application/json", JSON.stringify(asyncApiDocument()))
    yield* router.get(ASYNCAPI_PATH, serve(document))
  }),
)

/**
 * `make`'s promise, made on the first call and shared by every later one; a failure is not kept,
 * so the call after it tries again.
 */
const onceRetrying = <A>(make: () => Promise<A>): (() => Promise<A>) => {
  let pending: Promise<A> | undefined
  return () => {
    if (pending === undefined) {
      const started = make()
      pending = started
      started.catch(() => {
        pending = undefined
      })
    }
    return pending
  }
}

/**
 * `/docs` loads Swagger UI (`apiDocsPage.ts`, a chunk of its own in the compiled server) and builds
 * its page when first asked for, once; a failed load is not kept, the next request tries again.
 */
const DocsLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    const api = yield* HttpApi.Api
    const load = onceRetrying(() =>
      import("./apiDocsPage.js").then((page) => Effect.runPromise(page.docsApp(api, DOCS_PATH))),
    )
    yield* router.get(
      DOCS_PATH,
      Effect.tryPromise(load).pipe(
        Effect.matchEffect({
          onSuccess: (app) => app,
          onFailure: (error) =>
            Effect.as(
              Effect.logError("could not load the /docs page", error.cause),
              HttpServerResponse.text("the API documentation could not be loaded", { status: 503 }),
            ),
        }),
      ),
    )
  }),
)

/**
 * The page is the same bytes on every request (HttpApiSwagger builds its response once), so it is
 * compressed once, and off the event loop (zlib's thread pool): level 9 over 1.9 MB takes about
 * 0.1 s of CPU, a stall for every connection if done inline.
 */
const gzippers = new WeakMap<Uint8Array, () => Promise<Uint8Array>>()
const gzipOnce = (body: Uint8Array): Promise<Uint8Array> => {
  let gzipper = gzippers.get(body)
  if (gzipper === undefined) {
    gzipper = onceRetrying(
      () =>
        new Promise<Uint8Array>((resolve, reject) =>
          gzip(body, { level: 9 }, (error, out) => (error === null ? resolve(out) : reject(error))),
        ),
    )
    gzippers.set(body, gzipper)
  }
  return gzipper()
}

const compressDocs = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    if (request.method !== "GET" || request.url.split("?")[0] !== DOCS_PATH) return app
    return Effect.flatMap(app, (response) => {
      const body = response.body
      if (response.status !== 200 || body._tag !== "Uint8Array") return Effect.succeed(response)
      const plain = HttpServerResponse.setHeader(response, "vary", "accept-encoding")
      if (!acceptsGzip(request)) return Effect.succeed(plain)
      return Effect.tryPromise(() => gzipOnce(body.body)).pipe(
        Effect.map((gzipped) =>
          HttpServerResponse.uint8Array(gzipped, {
            status: response.status,
            contentType: body.contentType,
            headers: { ...plain.headers, "content-encoding": "gzip" },
          }),
        ),
        Effect.catchAll((error) =>
          Effect.as(Effect.logWarning("could not compress /docs; served uncompressed", error.cause), plain),
        ),
      )
    })
  })

export const ApiDocsLive = Layer.mergeAll(AsyncApiLive, DocsLive, HttpApiBuilder.middleware(compressDocs))
