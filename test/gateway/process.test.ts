/**
 * The gateway as `npm start` runs it, in its own process: a bad configuration value stops startup
 * with exit code 1 and one line on stderr naming the variable, its value and what it accepts; and
 * SIGTERM (docs/protocol.md "Connection lifecycle" 8) stops accepting, closes every connection with 1012 and exits 0
 * within a few seconds.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { spawnGateway, TestClient } from "../support/gateway.js"
import { captureOutput } from "../support/output.js"

const start = (env: Record<string, string>): ChildProcess =>
  spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { ...process.env, HOST: "127.0.0.1", FEED: "none", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))

const nonEmptyLines = (text: string) => text.split("\n").filter((l) => l.trim().length > 0)

describe("configuration", () => {
  for (const [name, value, accepts] of [
    ["PORT", "abc", "expected an integer value"],
    ["RATE_LIMIT", "-5", "must be a positive integer"],
    ["BATCH_INTERVAL_MS", "0", "must be a positive integer"],
    ["OUTBOUND_ANSWER_SHARE_PERCENT", "101", "must be an integer from 1 to 100"],
    ["FEED", "nasdaq", "must be one of simulator, none"],
    ["HOST", "not_a_host", "must be an IP address or a host name (0.0.0.0, ::, 127.0.0.1, localhost)"],
    [
      "REDIS_URL",
      "notaurl",
      "must be a redis:// or rediss:// URL with a host (redis://[user:password@]host[:port][/db])",
    ],
  ] as const) {
    it(`${name}=${value} stops startup with exit code 1 and one clean line naming the variable, the value and what it accepts`, async () => {
      const child = start({ PORT: "0", [name]: value })
      const seen = captureOutput(child)
      const code = await exited(child)
      expect(code).toBe(1)
      expect(nonEmptyLines(seen.stderr)).toEqual([
        `quotecast: invalid configuration: ${name}=${value}: ${accepts}`,
      ])
      expect(seen.stderr).not.toContain("cause")
      expect(seen.stderr).not.toMatch(/^\s+at /m)
      expect(seen.stdout).toBe("")
    }, 20_000)
  }

  it("several bad values give one line each", async () => {
    const child = start({ PORT: "abc", RATE_LIMIT: "-5", FEED: "nasdaq" })
    const seen = captureOutput(child)
    expect(await exited(child)).toBe(1)
    expect(nonEmptyLines(seen.stderr)).toEqual([
      "quotecast: invalid configuration: PORT=abc: expected an integer value",
      "quotecast: invalid configuration: RATE_LIMIT=-5: must be a positive integer",
      "quotecast: invalid configuration: FEED=nasdaq: must be one of simulator, none",
    ])
  }, 20_000)

  it("a too-short JWT_SECRET is named by its length, never shown", async () => {
    const child = start({ PORT: "0", JWT_SECRET: "hunter2-short" })
    const seen = captureOutput(child)
    expect(await exited(child)).toBe(1)
    const [line, ...more] = nonEmptyLines(seen.stderr)
    expect(more).toEqual([])
    expect(line).toContain("JWT_SECRET=(hidden, 13 bytes): must be at least 32 bytes long")
    expect(line).not.toContain("hunter2")
  }, 20_000)
})

describe("a start that cannot listen or reach Redis", () => {
  const stopsWithOneLine = async (env: Record<string, string>, line: RegExp) => {
    const child = start(env)
    const seen = captureOutput(child)
    expect(await exited(child)).toBe(1)
    const lines = nonEmptyLines(seen.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(line)
    expect(seen.stderr + seen.stdout).not.toContain("cause=")
    expect(seen.stderr).not.toMatch(/^\s+at /m)
  }

  it("a port already in use stops startup with one line naming HOST, PORT and why", async () => {
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const address = taken.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      await stopsWithOneLine(
        { PORT: String(port) },
        new RegExp(
          `^quotecast: cannot start: listening on HOST=127\\.0\\.0\\.1 PORT=${port} failed: .*EADDRINUSE`,
        ),
      )
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()))
    }
  }, 20_000)

  it("a Redis that does not answer stops cluster startup with one line naming REDIS_URL", async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    await stopsWithOneLine(
      { PORT: "0", REDIS_URL: "redis://127.0.0.1:1" },
      /^quotecast: cannot start: REDIS_URL=redis:\/\/127\.0\.0\.1:1: Redis unavailable: /,
    )
  }, 30_000)
})

describe("SIGTERM", () => {
  it("stops accepting, closes connections with 1012, and exits 0", async () => {
    // Port 0: a random fixed port can be taken by another spec's server in the same run.
    const gw = await spawnGateway({}, 40_000)
    const client = await TestClient.open(gw.wsUrl)
    await client.nextOfType("connected")
    gw.child.kill("SIGTERM")
    expect((await client.closed).code).toBe(1012)
    expect(await gw.exited).toBe(0)
    expect(gw.output()).toMatch(/connection closed.*code=1012/)
  }, 60_000)
})
