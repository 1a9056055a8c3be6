/**
 * `npm run build:sdk`: builds the installable client SDK, packages/client (`@quotecast/client`),
 * from src/client and src/protocol:
 * - dist/client, dist/protocol: ESM JavaScript and .d.ts files (tsc, packages/client/tsconfig.json);
 *   `effect` stays an ordinary import, resolved from the package's dependency.
 * - dist/browser/quotecast-client.js: the plain facade (`QuotecastClient` and its error classes)
 *   as one minified ESM file with `effect` inside, for a `<script type="module">` without a bundler.
 * It prints the browser bundle's size (minified, gzipped) and what makes it up. The package's
 * `effect` range must equal the root's: the SDK is typed and tested against that one.
 */
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import * as Command from "@effect/platform/Command"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Data, Effect, Schema } from "effect"

class SdkBuildError extends Data.TaggedError("SdkBuildError")<{ readonly message: string }> {}

const at = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url))
const PACKAGE = at("packages/client")
const DIST = at("packages/client/dist")
const BROWSER = `${DIST}/browser/quotecast-client.js`

/** What the browser bundle exports: the facade and what its Promises reject with. */
const BROWSER_EXPORTS = {
  "../client/QuotecastClient.js": ["QuotecastClient"],
  "../client/errors.js": [
    "ConnectFailed",
    "ConnectionLost",
    "NotConnected",
    "RequestTimeout",
    "SessionTakenOver",
    "TokenRefreshFailed",
    "TokenRejected",
    "WebSocketUnavailable",
  ],
} as const

/** The entry, as re-exports from dist/browser: bundled by esbuild, and as is the bundle's .d.ts. */
const exportLines = Object.entries(BROWSER_EXPORTS)
  .map(([from, names]) => `export { ${names.join(", ")} } from "${from}"\n`)
  .join("")

const Manifest = Schema.Struct({
  dependencies: Schema.Struct({ effect: Schema.String }),
})

const readManifest = (path: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path)
    return yield* Schema.decodeUnknown(Schema.parseJson(Manifest))(text).pipe(
      Effect.mapError((e) => new SdkBuildError({ message: `${path}: ${e.message}` })),
    )
  })

/** Metafile inputs grouped into what a reader can act on; the biggest groups first. */
const composition = (inputs: Record<string, { readonly bytesInOutput: number }>) => {
  const groups = new Map<string, number>()
  for (const [file, { bytesInOutput }] of Object.entries(inputs)) {
    const effect = /node_modules\/effect\/dist\/esm\/(.+)\.js$/.exec(file)?.[1]
    const group =
      effect === undefined
        ? (/node_modules\/(@[^/]+\/[^/]+|[^/]+)\//.exec(file)?.[1] ?? "SDK (src/client, src/protocol)")
        : /^(Schema|SchemaAST|ParseResult|Arbitrary|Pretty|JSONSchema|FastCheck)$/.test(effect)
          ? "effect: Schema, SchemaAST, ParseResult, Arbitrary, Pretty"
          : "effect: runtime and data types (the rest of effect)"
    groups.set(group, (groups.get(group) ?? 0) + bytesInOutput)
  }
  return [...groups].sort((a, b) => b[1] - a[1])
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`

const program = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const root = yield* readManifest(at("package.json"))
  const sdk = yield* readManifest(`${PACKAGE}/package.json`)
  if (sdk.dependencies.effect !== root.dependencies.effect)
    return yield* new SdkBuildError({
      message: `packages/client/package.json has effect ${sdk.dependencies.effect}, the root has ${root.dependencies.effect}: make them equal`,
    })

  yield* fs.remove(DIST, { recursive: true }).pipe(Effect.catchTag("SystemError", () => Effect.void))
  const tsc = Command.make(process.execPath, at("node_modules/typescript/bin/tsc"), "-p", PACKAGE).pipe(
    Command.workingDirectory(at("")),
    Command.stdout("inherit"),
    Command.stderr("inherit"),
  )
  const code = yield* Command.exitCode(tsc)
  if (code !== 0) return yield* new SdkBuildError({ message: `tsc exited with ${code}` })

  yield* fs.makeDirectory(`${DIST}/browser`, { recursive: true })
  const esbuild = yield* Effect.promise(() => import("esbuild"))
  const result = yield* Effect.tryPromise({
    try: () =>
      esbuild.build({
        stdin: { contents: exportLines, resolveDir: `${DIST}/browser`, sourcefile: "browser.js" },
        bundle: true,
        minify: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        outfile: BROWSER,
        metafile: true,
        legalComments: "none",
        // A failure's messages are in the error this script reports.
        logLevel: "silent",
      }),
    catch: (e) => new SdkBuildError({ message: `esbuild: ${e instanceof Error ? e.message : String(e)}` }),
  })
  // Its types are the facade's own declarations.
  yield* fs.writeFileString(`${DIST}/browser/quotecast-client.d.ts`, exportLines)

  const bundle = yield* fs.readFile(BROWSER)
  const gzipped = gzipSync(bundle, { level: 9 }).length
  yield* Console.log(`built ${DIST} (ESM + .d.ts)`)
  yield* Console.log(
    `browser bundle ${BROWSER}: ${kb(bundle.length)} minified, ${kb(gzipped)} gzipped (level 9)`,
  )
  const output = Object.values(result.metafile.outputs)[0]
  for (const [group, bytes] of composition(output?.inputs ?? {}))
    yield* Console.log(`  ${kb(bytes).padStart(9)} minified  ${group}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(NodeContext.layer)))
