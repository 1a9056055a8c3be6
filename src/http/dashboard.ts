/**
 * Serves the live dashboard at `/`: the browser application in the top-level `dashboard/` folder
 * (its page, its stylesheets and its script, an ordinary client of the public WebSocket API
 * through the SDK, `src/client`).
 *
 * The compiled server (`npm run build`, scripts/build.ts) finds the page, the stylesheet and the
 * bundled script prebuilt in `public/` beside its entry file and serves them as they are: no
 * bundler in production. Run from the TypeScript sources (tsx: the tests, development), there is no
 * such folder, and the script is bundled with esbuild once per process, when the page or the script
 * is first asked for (a request for the script waits for it). That output
 * is also kept on disk under `node_modules/.cache/` with a hash of every input file, so later starts
 * (the test suite's many gateways, cluster instances spawned together) reuse it instead of spending
 * a second or two of CPU each on an identical build.
 */
import { createHash } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Schema } from "effect"
import {
  DASHBOARD_ENTRY,
  DASHBOARD_PAGE,
  DASHBOARD_TSCONFIGS,
  dashboardBuildOptions,
  joinStyles,
} from "./dashboardFiles.js"
import { type Asset, asset, serve } from "./staticAsset.js"

/** Where `npm run build` puts the prebuilt files: `dist/public/`, beside the compiled `dist/main.js`. */
const prebuiltDir = fileURLToPath(new URL("./public/", import.meta.url))
const prebuilt = existsSync(join(prebuiltDir, "dashboard.js"))

const root = fileURLToPath(new URL("../../", import.meta.url))
const cacheFile = join(root, "node_modules/.cache/quotecast-dashboard/bundle.json")

const CacheEntry = Schema.Struct({
  /** esbuild version and options: a different toolchain never reuses an old bundle. */
  key: Schema.String,
  /** A hash of every input esbuild read (from its metafile), by path relative to the repository root. */
  inputs: Schema.Record({ key: Schema.String, value: Schema.String }),
  code: Schema.String,
})
type CacheEntry = typeof CacheEntry.Type
const decodeCache = Schema.decodeUnknownOption(Schema.parseJson(CacheEntry))

/**
 * A content hash, not size and mtime: package managers may give every installed file the same
 * mtime, so an upgraded dependency could otherwise look unchanged. Hashing the ~600 inputs takes
 * tens of milliseconds; the build it saves takes one to two seconds of CPU.
 */
const hashOf = async (file: string): Promise<string> =>
  createHash("sha256")
    .update(await readFile(join(root, file)))
    .digest("base64url")

const readCache = async (key: string): Promise<string | undefined> => {
  const cached = decodeCache(await readFile(cacheFile, "utf8").catch(() => ""))
  if (Option.isNone(cached) || cached.value.key !== key) return undefined
  const fresh = await Promise.all(
    Object.entries(cached.value.inputs).map(([file, was]) =>
      hashOf(file).then(
        (now) => now === was,
        () => false,
      ),
    ),
  )
  return fresh.every(Boolean) ? cached.value.code : undefined
}

/** Renamed into place, so a concurrent reader (another gateway starting) never sees half a file. */
const writeCache = async (entry: CacheEntry): Promise<void> => {
  const tmp = `${cacheFile}.${process.pid}.tmp`
  await mkdir(dirname(cacheFile), { recursive: true })
  await writeFile(tmp, JSON.stringify(entry))
  await rename(tmp, cacheFile)
}

/** Stores a fresh build for later starts; any failure here only means the next start builds again. */
const keep = async (key: string, code: string, metafileInputs: ReadonlyArray<string>, startedAt: number) => {
  if (metafileInputs.length === 0) return // nothing to check a cached copy against
  try {
    const files = [...metafileInputs, ...DASHBOARD_TSCONFIGS]
    const inputs = Object.fromEntries(
      await Promise.all(files.map(async (f) => [f, await hashOf(f)] as const)),
    )
    // A file saved while esbuild ran may not be what it read: serve this build, but do not keep it.
    const mtimes = await Promise.all(files.map((f) => stat(join(root, f)).then((s) => s.mtimeMs)))
    if (mtimes.every((m) => m < startedAt)) await writeCache({ key, inputs, code })
  } catch {
    // Best effort: a read-only install (or a missing tsconfig.json) just builds at every start.
  }
}

/** Where the script came from: dist/public/, the on-disk cache, or a build in this process. */
type Origin = "prebuilt" | "cache" | "esbuild"

type BuildResult =
  | { readonly _tag: "Built"; readonly asset: Asset; readonly millis: number; readonly origin: Origin }
  | { readonly _tag: "Failed"; readonly message: string; readonly millis: number }

const build = async (): Promise<BuildResult> => {
  const started = performance.now()
  const startedAt = Date.now()
  const done = (code: string, origin: Origin): BuildResult => ({
    _tag: "Built",
    asset: asset("text/javascript; charset=utf-8", code),
    millis: performance.now() - started,
    origin,
  })
  try {
    if (prebuilt) return done(await readFile(join(prebuiltDir, "dashboard.js"), "utf8"), "prebuilt")
    // Imported here so a broken esbuild install costs the dashboard, not the gateway's startup.
    const esbuild = await import("esbuild")
    const key = `esbuild ${esbuild.version} ${JSON.stringify(dashboardBuildOptions)}`
    const cached = await readCache(key)
    if (cached !== undefined) return done(cached, "cache")
    const result = await esbuild.build({
      ...dashboardBuildOptions,
      entryPoints: [DASHBOARD_ENTRY],
      absWorkingDir: root,
      metafile: true,
      write: false,
      logLevel: "silent",
    })
    const code = result.outputFiles?.[0]?.text
    if (code === undefined) throw new Error("esbuild produced no output")
    await keep(key, code, Object.keys(result.metafile?.inputs ?? {}), startedAt)
    return done(code, "esbuild")
  } catch (error) {
    return {
      _tag: "Failed",
      message: error instanceof Error ? error.message : String(error),
      millis: performance.now() - started,
    }
  }
}

/** Never rejects; the same Promise for every caller in this process. */
let bundle: Promise<BuildResult> | undefined
const bundleOnce = (): Promise<BuildResult> => {
  bundle ??= build()
  return bundle
}

const LOADED: Record<Origin, string> = {
  prebuilt: "dashboard bundle loaded from the build",
  cache: "dashboard bundle loaded from cache",
  esbuild: "dashboard bundle built",
}

const readIn = (dir: string) => (file: string) => readFileSync(join(dir, file), "utf8")

/** Logs where the script came from (or that it failed), once per process: the first load reports it. */
let reported = false
const report = (result: BuildResult): Effect.Effect<void> => {
  if (reported) return Effect.void
  reported = true
  return result._tag === "Failed"
    ? Effect.logError("dashboard bundle failed; / will not work").pipe(
        Effect.annotateLogs({ error: result.message }),
      )
    : Effect.logInfo(LOADED[result.origin]).pipe(
        Effect.annotateLogs({
          build_ms: Math.round(result.millis),
          bytes: result.asset.body.length,
          gzip_bytes: result.asset.gzip.length,
        }),
      )
}

export const DashboardLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    const { page, css } = yield* Effect.sync(() =>
      prebuilt
        ? { page: readIn(prebuiltDir)("index.html"), css: readIn(prebuiltDir)("dashboard.css") }
        : { page: readIn(root)(DASHBOARD_PAGE), css: joinStyles(readIn(root)) },
    )
    const stylesheet = asset("text/css; charset=utf-8", css)

    // The script is loaded (read, or bundled from the sources) when the page is first asked for,
    // not at startup: a gateway nobody opens the dashboard of does not hold it (the script and its
    // gzip copy, and from the sources esbuild's module and service, a few MB), and what a
    // connection costs is not blurred by a load finishing while the first clients connect.
    yield* router.get(
      "/",
      Effect.zipRight(
        Effect.sync(() => {
          void bundleOnce()
        }),
        HttpServerResponse.html(page),
      ),
    )
    yield* router.get("/assets/dashboard.css", serve(stylesheet))
    yield* router.get(
      "/assets/dashboard.js",
      Effect.flatMap(Effect.promise(bundleOnce), (result) =>
        Effect.zipRight(
          report(result),
          result._tag === "Built"
            ? serve(result.asset)
            : Effect.succeed(
                HttpServerResponse.text(`dashboard bundle failed to build: ${result.message}`, {
                  status: 500,
                }),
              ),
        ),
      ),
    )
  }),
)
