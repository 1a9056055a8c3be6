/**
 * The live dashboard at `/`: a static page that uses the public WebSocket API like any client.
 */
import { readFileSync } from "node:fs"
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"

const page = readFileSync(new URL("./dashboard/index.html", import.meta.url), "utf8")

export const DashboardLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    yield* router.get("/", HttpServerResponse.html(page))
  }),
)
