/**
 * The OpenAPI page at `/docs`, built by `HttpApiSwagger` on its first request rather than when the
 * server starts (`apiDocs.ts` imports this module only then). The page inlines Swagger UI: its
 * module, the page and its bytes come to about 7 MB of heap, which at startup also sized V8's
 * first old-generation limit for a heap that large (docs/performance.md, scenario C). The compiled
 * server keeps this module in a chunk of its own (scripts/build.ts, code splitting).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import { type Context, Effect, Layer } from "effect"

/**
 * `HttpApiSwagger.layer` on a router of its own (`Effect.provide` builds a fresh one), as an app
 * that answers `path`. The page's response is made once, here, so every request gets the same bytes.
 */
export const docsApp = (
  api: Context.Tag.Service<HttpApi.Api>,
  path: `/${string}`,
): Effect.Effect<HttpApp.Default<unknown, HttpRouter.HttpRouter.DefaultServices>> =>
  Effect.flatMap(HttpApiBuilder.Router.router, HttpRouter.toHttpApp).pipe(
    Effect.provide(HttpApiSwagger.layer({ path }).pipe(Layer.provideMerge(HttpApiBuilder.Router.Live))),
    Effect.provideService(HttpApi.Api, api),
  )
