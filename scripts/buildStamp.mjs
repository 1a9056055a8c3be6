/**
 * The build stamp: which files a build read and one hash over their contents, written by
 * `npm run build` (scripts/build.ts) and checked by `npm start` (scripts/start.mjs) before it runs
 * the compiled server. Plain JavaScript so the check costs `npm start` no TypeScript loader.
 *
 * A content hash, not mtimes: npm gives every installed file the same fixed mtime, so an upgraded
 * dependency would look unchanged. Hashing the ~1,000 inputs (9 MB, most of it node_modules) takes
 * about 60 ms.
 */
import { createHash } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"

/** Where the build writes; the stamp is written last, so a build that fails leaves none. */
export const DIST = "dist"
export const STAMP = join(DIST, "build.json")
/** The compiled server's entry and the prebuilt dashboard, relative to the repository root. */
export const SERVER_ENTRY = join(DIST, "main.js")
export const PUBLIC_DIR = join(DIST, "public")
export const OUTPUTS = [
  SERVER_ENTRY,
  ...["index.html", "dashboard.css", "dashboard.js"].map((f) => join(PUBLIC_DIR, f)),
]

/**
 * One hash over every input's path and content, in the given order.
 * @param {string} root
 * @param {ReadonlyArray<string>} inputs paths relative to root
 * @returns {string}
 */
export const digestOf = (root, inputs) => {
  const hash = createHash("sha256")
  for (const file of inputs) {
    hash
      .update(file)
      .update("\0")
      .update(readFileSync(join(root, file)))
      .update("\0")
  }
  return hash.digest("base64url")
}

/**
 * Whether dist/ holds a build of the current sources; when not, why (for the line `npm start` prints).
 * @param {string} root
 * @returns {{ fresh: true } | { fresh: false, reason: string }}
 */
export const checkBuild = (root) => {
  if (!existsSync(join(root, STAMP))) return { fresh: false, reason: "no build" }
  /** @type {unknown} */
  const stamp = JSON.parse(readFileSync(join(root, STAMP), "utf8"))
  if (
    typeof stamp !== "object" ||
    stamp === null ||
    !("digest" in stamp) ||
    typeof stamp.digest !== "string" ||
    !("inputs" in stamp) ||
    !Array.isArray(stamp.inputs) ||
    !stamp.inputs.every((f) => typeof f === "string")
  ) {
    return { fresh: false, reason: `${STAMP} is not a build stamp` }
  }
  // The server's chunks (scripts/build.ts, code splitting); a stamp from before them lists none.
  const chunks = "chunks" in stamp && Array.isArray(stamp.chunks) ? stamp.chunks : []
  const missingOutput = [...OUTPUTS, ...chunks].find(
    (f) => typeof f !== "string" || !existsSync(join(root, f)),
  )
  if (missingOutput !== undefined) return { fresh: false, reason: `${missingOutput} is missing` }
  const missingInput = stamp.inputs.find((f) => !existsSync(join(root, f)))
  if (missingInput !== undefined) return { fresh: false, reason: `${missingInput} was removed` }
  return digestOf(root, stamp.inputs) === stamp.digest
    ? { fresh: true }
    : { fresh: false, reason: "sources changed since the last build" }
}
