/**
 * Helpers of the build tests: a Dockerfile read into its instructions, a copy of the repository's
 * sources in a directory outside it, and a gateway process started by a command (npm start, or
 * the image's CMD) and watched through its log and its /health endpoint.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { fileURLToPath } from "node:url"
import { captureOutput } from "../support/output.js"

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

export interface Instruction {
  readonly keyword: string
  /** The arguments as written (continuation lines joined), flags such as `--mount=...` removed. */
  readonly args: string
  readonly flags: ReadonlyArray<string>
}

/** Dockerfile syntax as far as this project uses it: comments, `\` continuations, `--flag` options. */
export const parseDockerfile = (text: string): ReadonlyArray<Instruction> => {
  const logical: Array<string> = []
  let current = ""
  for (const line of text.split("\n")) {
    if (current === "" && /^\s*(#|$)/.test(line)) continue
    if (/\\\s*$/.test(line)) {
      current += `${line.replace(/\\\s*$/, "")} `
      continue
    }
    logical.push(current + line)
    current = ""
  }
  return logical.map((raw) => {
    const m = /^\s*(\w+)\s+(.*)$/s.exec(raw)
    if (m === null) throw new Error(`not an instruction: ${raw}`)
    let args = (m[2] ?? "").trim()
    const flags: Array<string> = []
    for (let f = /^--\S+\s+/.exec(args); f !== null; f = /^--\S+\s+/.exec(args)) {
      flags.push(f[0].trim())
      args = args.slice(f[0].length)
    }
    return { keyword: (m[1] ?? "").toUpperCase(), args: args.replace(/\s+/g, " ").trim(), flags }
  })
}

/** An exec-form argument list (`["node", "dist/main.js"]`), or undefined for the shell form. */
export const execForm = (args: string): ReadonlyArray<string> | undefined => {
  if (!args.startsWith("[")) return undefined
  const parsed: unknown = JSON.parse(args)
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) {
    throw new Error(`not an exec form: ${args}`)
  }
  return parsed
}

/** A fresh directory under the system's temporary directory, outside the repository. */
export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix))

/**
 * A COPY instruction's effect, with Docker's rules: a folder's contents go to the destination; a
 * file goes into the destination when it ends in `/` or there are several sources, else becomes it.
 */
export const copyFromRepo = (dir: string, sources: ReadonlyArray<string>, dest: string): void => {
  const into = dest.endsWith("/") || sources.length > 1
  for (const source of sources) {
    const from = join(repoRoot, source)
    const target = statSync(from).isDirectory() || !into ? join(dir, dest) : join(dir, dest, basename(source))
    cpSync(from, target, { recursive: true })
  }
}

export const readRepoFile = (path: string): string => readFileSync(join(repoRoot, path), "utf8")

export interface Started {
  readonly child: ChildProcess
  readonly output: () => string
  readonly port: number
  readonly exited: Promise<number | null>
  /** SIGTERM to the process group (npm, its shell and node), then the exit code of the command. */
  readonly stop: () => Promise<number | null>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs a command that starts the gateway with PORT=0 and waits (bounded) for its "listening" line;
 * the command is its own process group so stop() reaches the gateway under npm.
 */
export const startGateway = async (
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Started> => {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", FEED: "none", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  })
  const seen = captureOutput(child)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const stop = () => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGTERM")
    return exited
  }
  const end = Date.now() + timeoutMs
  for (;;) {
    const m = /quotecast listening.*port=(\d+)/.exec(seen.all)
    if (m) return { child, output: () => seen.all, port: Number(m[1]), exited, stop }
    if (child.exitCode !== null) throw new Error(`${command} ${args.join(" ")} exited: ${seen.all}`)
    if (Date.now() > end) {
      await stop()
      throw new Error(`${command} ${args.join(" ")} did not start: ${seen.all}`)
    }
    await sleep(100)
  }
}

/**
 * Runs a shell command to its end with this process's environment less NODE_ENV (vitest sets it;
 * a Dockerfile's RUN sees only the image's ENV lines) plus `env`; rejects with its output on failure.
 */
export const run = (command: string, cwd: string, env: Record<string, string> = {}): Promise<string> =>
  new Promise((resolve, reject) => {
    const inherited = Object.entries(process.env).filter(([k]) => k !== "NODE_ENV")
    const child = spawn("sh", ["-c", command], {
      cwd,
      env: { ...Object.fromEntries(inherited), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    const seen = captureOutput(child)
    child.once("error", reject)
    child.once("exit", (code) =>
      code === 0 ? resolve(seen.all) : reject(new Error(`\`${command}\` exited with ${code}:\n${seen.all}`)),
    )
  })
