/**
 * `npm run load -- --help` through a pipe, as CI logs and `| less` see it: every option the
 * command knows is listed with a description and its default, and no colour code is printed;
 * nor by `npm run bench -- --help`.
 */
import { spawn } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { captureOutput } from "../support/output.js"

const root = new URL("../../", import.meta.url)

const help = (env: Record<string, string> = {}, script = "load/main.ts") =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, "--help"], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    const seen = captureOutput(child)
    child.once("error", reject)
    child.once("exit", (code) => resolve({ code, stdout: seen.stdout, stderr: seen.stderr }))
  })

describe("load runner --help", () => {
  it("lists every option with a description and its default, without colour codes, in a pipe", async () => {
    const { code, stdout, stderr } = await help({ FORCE_COLOR: "1" })
    expect(code, stderr).toBe(0)
    expect(stdout).not.toContain("\u001b")
    // The usage line is generated from the command's options: the list to check against.
    const usage = /^\$ load (.*)$/m.exec(stdout)?.[1] ?? ""
    const names = [...usage.matchAll(/\[(--[a-z0-9-]+)/g)].map((m) => m[1] as string)
    expect(names.length).toBeGreaterThanOrEqual(18)
    const sections = stdout.split(/\n(?=--[a-z])/)
    for (const name of names) {
      const section = sections.find((s) => s.startsWith(`${name} `) || s.startsWith(`${name}\n`))
      expect(section, name).toBeDefined()
      // Past the type line that @effect/cli writes ("An integer."), a sentence of ours ending in the default.
      expect(section, name).toMatch(/\n {2}[A-Z][^\n]{15,} \(default: [^)\n]+\)\.\n/)
    }
  }, 60_000)
})

describe("benchmark --help", () => {
  it("prints no colour codes in a pipe", async () => {
    const { code, stdout, stderr } = await help({ FORCE_COLOR: "1" }, "bench/run.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("--scenarios")
    expect(stdout).not.toContain("\u001b")
  }, 60_000)
})
