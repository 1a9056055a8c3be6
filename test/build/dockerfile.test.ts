/**
 * The Dockerfile (issue 13 point 3): one stage that builds the server and keeps production
 * dependencies only, running compiled JavaScript. This machine has no Docker engine, so the image
 * is checked in two ways: its instructions are read and checked, and its steps are carried out in a
 * directory outside the repository (the COPY lines copy, the RUN commands run with `sh -c`, the CMD
 * starts the gateway), which proves the build works from what the image copies and that the
 * compiled server needs no dev dependency (tsx, esbuild, TypeScript) at runtime.
 */
import { existsSync, readdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { SERVER_ENTRY } from "../../scripts/buildStamp.mjs"
import { SERVER_NODE_FLAGS } from "../../scripts/nodeFlags.js"
import {
  copyFromRepo,
  execForm,
  type Instruction,
  parseDockerfile,
  readRepoFile,
  repoRoot,
  run,
  type Started,
  startGateway,
  tempDir,
} from "./support.js"

const instructions = parseDockerfile(readRepoFile("Dockerfile"))
const all = (keyword: string) => instructions.filter((i) => i.keyword === keyword)
const one = (keyword: string): Instruction => {
  const found = all(keyword)
  expect(found, `one ${keyword}`).toHaveLength(1)
  return found[0] as Instruction
}
/** `KEY=value` pairs of the ENV instructions (values without spaces or quotes, as this file writes them). */
const envOf = (list: ReadonlyArray<Instruction>): Record<string, string> =>
  Object.fromEntries(
    list.flatMap((i) => i.args.split(" ").map((pair) => pair.split("=", 2) as [string, string])),
  )
const pkg: { devDependencies: Record<string, string>; dependencies: Record<string, string> } = JSON.parse(
  readRepoFile("package.json"),
)
const dockerignore = readRepoFile(".dockerignore")
  .split("\n")
  .filter((l) => l.trim() !== "" && !l.startsWith("#"))

describe("Dockerfile, read", () => {
  it("is one stage from Node 20 that installs, builds and prunes dev dependencies in one RUN", () => {
    expect(one("FROM").args).toMatch(/^node:20\S*$/)
    const runs = all("RUN")
    expect(runs).toHaveLength(1)
    const steps = (runs[0] as Instruction).args.split("&&").map((s) => s.trim())
    const at = (re: RegExp) => steps.findIndex((s) => re.test(s))
    const [install, build, prune] = [
      at(/^npm ci\b/),
      at(/^npm run build(:server)?\b/),
      at(/^npm prune --omit=dev\b/),
    ]
    expect(
      [install, build, prune].every((i) => i >= 0),
      steps.join(" && "),
    ).toBe(true)
    expect(install).toBeLessThan(build)
    expect(build).toBeLessThan(prune)
    // npm ci must see the dev dependencies: NODE_ENV=production only after the RUN.
    const runIndex = instructions.indexOf(runs[0] as Instruction)
    const envIndex = instructions.findIndex(
      (i) => i.keyword === "ENV" && /\bNODE_ENV=production\b/.test(i.args),
    )
    expect(envIndex).toBeGreaterThan(runIndex)
  })

  it("runs node with the gateway's V8 flags on the compiled entry, as user node, with a health check and SIGTERM", () => {
    expect(execForm(one("CMD").args)).toEqual(["node", ...SERVER_NODE_FLAGS, SERVER_ENTRY])
    expect(one("USER").args).toBe("node")
    expect(one("HEALTHCHECK").args).toMatch(/^CMD .*\/health/)
    expect(one("STOPSIGNAL").args).toBe("SIGTERM")
    expect(instructions.map((i) => i.args).join("\n")).not.toMatch(/\btsx\b/)
  })

  it("copies only what the build context holds (nothing .dockerignore excludes)", () => {
    const sources = all("COPY").flatMap((c) => c.args.split(" ").slice(0, -1))
    expect(sources.length).toBeGreaterThan(0)
    for (const source of sources) {
      expect(dockerignore, source).not.toContain(source)
      expect(existsSync(join(repoRoot, source)), source).toBe(true)
    }
    // A local build must not reach the image, which builds its own.
    expect(dockerignore).toContain("dist")
    expect(dockerignore).toContain("node_modules")
  })
})

describe("Dockerfile, carried out outside Docker", () => {
  const dir = tempDir("quotecast-image-")
  let gateway: Started | undefined
  afterAll(async () => {
    await gateway?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it("builds from the copied files, keeps no dev dependency, and serves /health and the dashboard", async () => {
    const workdir = join(dir, one("WORKDIR").args)
    for (const copy of all("COPY")) {
      const parts = copy.args.split(" ")
      copyFromRepo(workdir, parts.slice(0, -1), parts.at(-1) as string)
    }
    const command = one("RUN").args
    // The RUN line runs on this machine: it may touch nothing outside the work directory.
    expect(command).not.toMatch(/(^|\s)\//)
    // The environment the RUN sees: the ENV lines above it.
    const runAt = instructions.indexOf(one("RUN"))
    await run(command, workdir, envOf(instructions.slice(0, runAt).filter((i) => i.keyword === "ENV")))

    // Pruned: no dev dependency installed (unless a production one needs it too).
    const installed = (name: string) => existsSync(join(workdir, "node_modules", name))
    for (const name of ["tsx", "esbuild", "typescript", "vitest", "@biomejs/biome"]) {
      expect(name in pkg.devDependencies, name).toBe(true)
      expect(installed(name), `${name} left in node_modules`).toBe(false)
    }
    expect(readdirSync(workdir).sort()).toEqual(["dist", "node_modules", "package-lock.json", "package.json"])

    const [node, ...args] = execForm(one("CMD").args) ?? []
    expect(node).toBe("node")
    const env = envOf(all("ENV"))
    expect(env.NODE_ENV).toBe("production")
    // The image's environment, but loopback and a free port on this machine.
    gateway = await startGateway(
      process.execPath,
      args,
      workdir,
      { ...env, HOST: "127.0.0.1", PORT: "0" },
      60_000,
    )
    const base = `http://127.0.0.1:${gateway.port}`
    expect((await fetch(`${base}/health`)).status).toBe(200)
    const script = await fetch(`${base}/assets/dashboard.js`)
    expect(script.status).toBe(200)
    expect(script.headers.get("content-type")).toMatch(/javascript/)
    expect((await script.text()).length).toBeGreaterThan(10_000)
    expect((await fetch(`${base}/`)).status).toBe(200)
    expect(gateway.output()).toMatch(/dashboard bundle loaded from the build/)
    expect(await gateway.stop()).toBe(0)
  }, 600_000)
})
