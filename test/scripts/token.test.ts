/**
 * `npm run token`: the token it prints is one the gateway's own verifier accepts for the user,
 * role, lifetime and rate limit asked for; without a usable JWT_SECRET it prints nothing on
 * stdout, one line on stderr, and exits non-zero.
 */
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { claimsOf, verifierFor } from "../auth/support.js"
import { captureOutput } from "../support/output.js"

const SECRET = "a-development-secret-of-32-bytes-or-more"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** `tsx scripts/token.ts <args>` with JWT_SECRET set to `secret` (undefined: unset). */
const token = (args: ReadonlyArray<string>, secret: string | undefined): Promise<Run> => {
  const { JWT_SECRET: _inherited, ...env } = process.env
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], {
    env: secret === undefined ? env : { ...env, JWT_SECRET: secret },
    stdio: ["ignore", "pipe", "pipe"],
  })
  const seen = captureOutput(child)
  return new Promise((resolve) =>
    child.once("close", (code) => resolve({ code, stdout: seen.stdout, stderr: seen.stderr })),
  )
}

const lines = (text: string) => text.split("\n").filter((l) => l.trim().length > 0)

/** The whole seconds a token minted between `before` and `after` may expire at, in milliseconds. */
const expiryWindow = (before: number, after: number, lifetimeS: number) => ({
  earliest: (Math.floor(before / 1000) + lifetimeS) * 1000,
  latest: (Math.ceil(after / 1000) + lifetimeS) * 1000,
})

describe("npm run token", () => {
  it("prints a token the gateway accepts for the user and role, valid for an hour by default", async () => {
    const before = Date.now()
    const run = await token(["--sub", "alice", "--role", "admin"], SECRET)
    const after = Date.now()
    expect(run.code).toBe(0)
    expect(lines(run.stdout)).toHaveLength(1)
    const verifier = await verifierFor({ JWT_SECRET: SECRET })
    const claims = claimsOf(await verifier.verify(run.stdout.trim()))
    expect(claims).toMatchObject({ userId: "alice", role: "admin", rateLimit: undefined })
    const { earliest, latest } = expiryWindow(before, after, 3600)
    expect(claims.expiresAt).toBeGreaterThanOrEqual(earliest)
    expect(claims.expiresAt).toBeLessThanOrEqual(latest)
  }, 30_000)

  it("carries the lifetime, the publisher role and the rate limit asked for", async () => {
    const before = Date.now()
    const run = await token(
      ["--sub", "bob", "--role", "publisher", "--exp", "30m", "--rate-limit", "50"],
      SECRET,
    )
    const after = Date.now()
    expect(run.code).toBe(0)
    const claims = claimsOf(await (await verifierFor({ JWT_SECRET: SECRET })).verify(run.stdout.trim()))
    expect(claims).toMatchObject({ userId: "bob", role: "publisher", rateLimit: 50 })
    const { earliest, latest } = expiryWindow(before, after, 1800)
    expect(claims.expiresAt).toBeGreaterThanOrEqual(earliest)
    expect(claims.expiresAt).toBeLessThanOrEqual(latest)
  }, 30_000)

  it("without --role gives an ordinary user, and a gateway with another secret refuses the token", async () => {
    const run = await token(["--sub", "carol"], SECRET)
    expect(run.code).toBe(0)
    const claims = claimsOf(await (await verifierFor({ JWT_SECRET: SECRET })).verify(run.stdout.trim()))
    expect(claims).toMatchObject({ userId: "carol", role: undefined })
    const other = await verifierFor({ JWT_SECRET: "another-secret-of-at-least-32-bytes!!" })
    expect(await other.verify(run.stdout.trim())).toMatchObject({ _tag: "Left" })
  }, 30_000)

  for (const [why, secret, says] of [
    ["unset", undefined, "JWT_SECRET is unset"],
    ["shorter than 32 bytes", "too-short", "JWT_SECRET must be at least 32 bytes"],
  ] as const) {
    it(`with JWT_SECRET ${why}: exits non-zero with one line on stderr and nothing on stdout`, async () => {
      const run = await token(["--sub", "alice"], secret)
      expect(run.code).not.toBe(0)
      expect(run.stdout).toBe("")
      expect(lines(run.stderr)).toEqual([expect.stringContaining(says)])
    }, 30_000)
  }

  it("--help lists every option with its default and a description", async () => {
    const run = await token(["--help"], undefined)
    expect(run.code).toBe(0)
    for (const text of [
      "--sub text",
      "the `sub` claim (required, no default)",
      "--role admin | publisher",
      "the `role` claim (default: none",
      "--exp text",
      "(default: 1h)",
      "--rate-limit integer",
      "the `rate_limit` claim (default: none",
    ])
      expect(run.stdout).toContain(text)
    // Captured through a pipe: no colour codes, as with the load runner's help.
    expect(run.stdout).not.toContain("\u001b")
  }, 30_000)
})
