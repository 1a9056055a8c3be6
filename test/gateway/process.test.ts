/**
 * The gateway as `npm start` runs it, in its own process: configuration errors stop startup
 * with a message naming the variable, and SIGTERM (PROTOCOL.md lifecycle 7) stops accepting,
 * closes every connection with 1012 and exits 0 within a few seconds.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { TestClient, waitFor } from "../support/gateway.js"

const start = (env: Record<string, string>): ChildProcess =>
  spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { ...process.env, HOST: "127.0.0.1", FEED: "none", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })

const output = (child: ChildProcess) => {
  let text = ""
  child.stdout?.on("data", (d) => {
    text += d
  })
  child.stderr?.on("data", (d) => {
    text += d
  })
  return () => text
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))

describe("configuration", () => {
  for (const [name, value, says] of [
    ["PORT", "abc", "PORT"],
    ["BATCH_INTERVAL_MS", "-5", "BATCH_INTERVAL_MS must be a positive integer"],
    ["FEED", "nasdaq", "FEED must be one of simulator, none"],
  ] as const) {
    it(`${name}=${value} stops startup with a message naming the variable`, async () => {
      const child = start({ PORT: "0", [name]: value })
      const text = output(child)
      const code = await exited(child)
      expect(code).not.toBe(0)
      expect(text()).toContain(says)
    }, 20_000)
  }
})

describe("SIGTERM", () => {
  it("stops accepting, closes connections with 1012, and exits 0", async () => {
    const port = 20000 + Math.floor(Math.random() * 20000)
    const child = start({ PORT: String(port) })
    const text = output(child)
    await waitFor(() => text().includes("quotecast listening"), 15_000, "the gateway to listen")
    const client = await TestClient.open(`ws://127.0.0.1:${port}/v1/ws`)
    await client.nextOfType("connected")
    const exit = exited(child)
    child.kill("SIGTERM")
    expect((await client.closed).code).toBe(1012)
    expect(await exit).toBe(0)
    expect(text()).toMatch(/connection closed.*code=1012/)
  }, 30_000)
})
