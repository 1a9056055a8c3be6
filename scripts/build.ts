/**
 * `npm run build:server` (and `npm run build`): compiles the gateway and pre-builds the dashboard
 * into dist/, then writes the build stamp that `npm start` checks (scripts/buildStamp.mjs).
 *
 *   dist/main.js              the server, one ESM bundle
 *   dist/chunks/              what it imports only when first needed (Swagger UI for `/docs`)
 *   dist/public/              the dashboard's page, stylesheet and script, served as they are
 *   dist/build.json           the stamp: every input file and one hash over them
 *
 * The server is bundled with esbuild rather than emitted file by file with tsc: Node then loads one
 * file instead of ~950 modules of effect and @effect/platform, which is most of the startup time
 * (docs/dependencies.md, "Build"). Packages stay external only where bundling cannot work: native
 * addons (bufferutil and ws's other optional one) and esbuild (the dashboard's fallback when run
 * from sources, never loaded by the compiled server). Types are not checked here: `npm run typecheck`.
 */

import { readFileSync } from "node:fs"
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"
import {
  DASHBOARD_ENTRY,
  DASHBOARD_PAGE,
  DASHBOARD_STYLES,
  DASHBOARD_TSCONFIGS,
  dashboardBuildOptions,
  joinStyles,
} from "../src/http/dashboardFiles.js"
import { DIST, digestOf, PUBLIC_DIR, SERVER_ENTRY, STAMP } from "./buildStamp.mjs"

const root = fileURLToPath(new URL("../", import.meta.url))
const at = (file: string) => join(root, file)

/** Modules the server bundle leaves to node_modules at runtime (see the header). */
export const SERVER_EXTERNAL = ["bufferutil", "utf-8-validate", "esbuild"]

/**
 * Read by the build but not listed in esbuild's metafile: the configuration, the lockfiles (a
 * dependency upgrade), this script and the stamp's code (a change to how the build is made).
 */
const fixedInputs = [
  "package.json",
  "package-lock.json",
  "node_modules/.package-lock.json",
  ...DASHBOARD_TSCONFIGS,
  "scripts/build.ts",
  "scripts/buildStamp.mjs",
  DASHBOARD_PAGE,
  ...DASHBOARD_STYLES,
]

const started = Date.now()
const t0 = performance.now()
// The old stamp goes first: a build that fails half-way leaves dist/ stale, never "current".
await rm(at(STAMP), { force: true })

const [server, dashboard] = await Promise.all([
  esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: "src/main.ts" },
    outdir: DIST,
    // A dynamic import() becomes a chunk loaded when it runs, not code in main.js's heap from the
    // start (src/http/apiDocsPage.ts). Hashed names: a gateway still running an older main.js loads
    // its own chunk, never a newer one.
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: SERVER_EXTERNAL,
    // The CommonJS packages in the bundle (ws, ioredis) call require() for Node's modules.
    banner: {
      js: 'import { createRequire as __createRequire } from "node:module";const require = __createRequire(import.meta.url);',
    },
    // No source map: the bundle is not minified and keeps every name, so a stack trace reads as it
    // is; a map doubled the build time, and loading it (--enable-source-maps) slowed every start.
    // Effect's spans and the logger's annotations name functions; keep the names as written.
    keepNames: true,
    metafile: true,
    write: false,
    logLevel: "warning",
  }),
  esbuild.build({
    ...dashboardBuildOptions,
    absWorkingDir: root,
    entryPoints: [DASHBOARD_ENTRY],
    outfile: join(PUBLIC_DIR, "dashboard.js"),
    metafile: true,
    write: false,
    logLevel: "warning",
  }),
])

/**
 * Written beside and renamed into place: a gateway starting from dist/ while another `npm start`
 * rebuilds it reads the old file or the new one, never half of one.
 */
const put = async (file: string, contents: string | Uint8Array) => {
  await mkdir(dirname(file), { recursive: true })
  await writeFile(`${file}.${process.pid}.tmp`, contents)
  await rename(`${file}.${process.pid}.tmp`, file)
}
// Chunks before the entry that imports them: a gateway starting meanwhile finds its chunk.
const entryPath = at(SERVER_ENTRY)
const outputs = [...server.outputFiles, ...dashboard.outputFiles].sort(
  (a, b) => Number(a.path === entryPath) - Number(b.path === entryPath),
)
for (const output of outputs) await put(output.path, output.contents)
/** The server's chunks, relative to the root; the stamp lists them so `npm start` sees one missing. */
const chunks = server.outputFiles
  .map((o) => relative(root, o.path))
  .filter((f) => f !== SERVER_ENTRY)
  .sort()
const read = (file: string) => readFileSync(at(file), "utf8")
await put(at(join(PUBLIC_DIR, "index.html")), read(DASHBOARD_PAGE))
await put(at(join(PUBLIC_DIR, "dashboard.css")), joinStyles(read))

const present = await Promise.all(
  fixedInputs.map((f) =>
    stat(at(f)).then(
      () => f,
      () => undefined, // node_modules/.package-lock.json is npm's; another installer may not write it
    ),
  ),
)
const inputs = [
  ...new Set([
    ...present.filter((f) => f !== undefined),
    ...Object.keys(server.metafile.inputs),
    ...Object.keys(dashboard.metafile.inputs),
  ]),
]
  .map((f) => relative(root, at(f)))
  .sort()

// A file saved while esbuild ran may not be what it read: keep the build, but leave it unstamped
// so the next `npm start` builds again.
const mtimes = await Promise.all(inputs.map((f) => stat(at(f)).then((s) => s.mtimeMs)))
const changed = inputs.filter((_, i) => (mtimes[i] ?? Number.POSITIVE_INFINITY) >= started)
if (changed.length > 0) {
  console.error(`build: ${changed.join(", ")} changed during the build; ${DIST}/ left unstamped (stale)`)
  process.exitCode = 1
} else {
  await put(at(STAMP), `${JSON.stringify({ digest: digestOf(root, inputs), inputs, chunks }, null, 1)}\n`)
  const kb = (file: string) => Math.round((server.metafile.outputs[file]?.bytes ?? 0) / 1024)
  console.error(
    `build: ${SERVER_ENTRY} (${kb(SERVER_ENTRY)} KB) and ${PUBLIC_DIR}/ from ${inputs.length} files in ${Math.round(performance.now() - t0)} ms`,
  )
}
