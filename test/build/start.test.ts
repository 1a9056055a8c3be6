/**
 * `npm start` (issue 13 point 3) in a copy of the repository outside it: with no build it builds
 * first and runs the compiled server; with a current build it starts at once; a changed source
 * (content, not just a newer mtime) makes it build again.
 */
import { appendFileSync, readFileSync, rmSync, symlinkSync, utimesSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { STAMP } from "../../scripts/buildStamp.mjs"
import { SERVER_NODE_FLAGS } from "../../scripts/nodeFlags.js"
import { copyFromRepo, repoRoot, type Started, startGateway, tempDir } from "./support.js"

const dir = tempDir("quotecast-start-")
copyFromRepo(dir, ["package.json", "package-lock.json", "tsconfig.json"], "./")
for (const folder of ["scripts", "src", "dashboard"]) copyFromRepo(dir, [folder], folder)
symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"))

let running: Started | undefined
const npmStart = async (): Promise<Started> => {
  running = await startGateway("npm", ["start"], dir, {}, 180_000)
  return running
}
const stopped = async (gateway: Started): Promise<string> => {
  await gateway.stop()
  return gateway.output()
}
const digest = () => JSON.parse(readFileSync(join(dir, STAMP), "utf8")).digest

afterAll(async () => {
  await running?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe("npm start", () => {
  it("runs node with the gateway's V8 flags (scripts/nodeFlags.ts)", () => {
    const pkg: { scripts: Record<string, string> } = JSON.parse(
      readFileSync(join(repoRoot, "package.json"), "utf8"),
    )
    expect(pkg.scripts.start).toBe(["node", ...SERVER_NODE_FLAGS, "scripts/start.mjs"].join(" "))
  })

  it("builds when there is no build, then runs the compiled server with the prebuilt dashboard and /docs", async () => {
    const gateway = await npmStart()
    const base = `http://127.0.0.1:${gateway.port}`
    expect((await fetch(`${base}/health`)).status).toBe(200)
    expect((await fetch(`${base}/assets/dashboard.js`)).status).toBe(200)
    // Swagger UI is a chunk of its own (scripts/build.ts), loaded on the first request for /docs.
    const docs = await fetch(`${base}/docs`)
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain("swagger")
    const output = await stopped(gateway)
    expect(output).toMatch(/quotecast: no build; building/)
    expect(output).toMatch(/dashboard bundle loaded from the build/)
  }, 300_000)

  it("does not build again while the sources are unchanged, even when their mtimes change", async () => {
    const now = new Date()
    utimesSync(join(dir, "src/main.ts"), now, now)
    const output = await stopped(await npmStart())
    expect(output).toMatch(/quotecast listening/)
    expect(output).not.toMatch(/building/)
  }, 300_000)

  it("builds again when a source's content changes", async () => {
    const before = digest()
    appendFileSync(join(dir, "dashboard/styles/footer.css"), "\n/* start.test marker */\n")
    const output = await stopped(await npmStart())
    expect(output).toMatch(/quotecast: sources changed since the last build; building/)
    expect(digest()).not.toBe(before)
    expect(readFileSync(join(dir, "dist/public/dashboard.css"), "utf8")).toMatch(/start\.test marker/)
  }, 300_000)
})
