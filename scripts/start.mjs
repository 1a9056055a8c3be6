/**
 * `npm start`: runs the compiled gateway (dist/main.js), building it first when the build is
 * missing or older than the sources (scripts/buildStamp.mjs), so `npm install && npm start` works
 * on a fresh clone. Plain JavaScript and the gateway in this same process: the check adds tens of
 * milliseconds to a start, not a TypeScript loader or a second Node process.
 * The container image runs `node dist/main.js` directly: it is built once, in the image. Both run
 * node with the V8 flags of scripts/nodeFlags.ts (package.json's `start` script, the CMD).
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath, pathToFileURL } from "node:url"
import { checkBuild, SERVER_ENTRY } from "./buildStamp.mjs"

const root = fileURLToPath(new URL("../", import.meta.url))
const build = checkBuild(root)
if (!build.fresh) {
  console.error(`quotecast: ${build.reason}; building (npm run build:server)`)
  const run = spawnSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    cwd: root,
    stdio: "inherit",
  })
  if (run.status !== 0) {
    console.error(`quotecast: the build failed (${run.error?.message ?? `exit code ${run.status}`})`)
    process.exit(1)
  }
}
await import(pathToFileURL(`${root}${SERVER_ENTRY}`).href)
