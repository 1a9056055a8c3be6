/**
 * The facade must load in a browser: no `ws`, no `node:` modules anywhere in its import graph.
 * Checked twice: a static walk of the relative imports, and an esbuild bundle for the browser.
 */
import { readFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { WebSocketServer, WebSocket as WsWebSocket } from "ws"
import { ReadyState, type WebSocketConstructor } from "../../src/client/socket.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const entry = resolve(root, "src/client/index.ts")

/** Bare module specifiers reachable from `file` through relative imports (type-only imports skipped). */
const externalImports = (file: string, seen = new Set<string>()): Set<string> => {
  const out = new Set<string>()
  if (seen.has(file)) return out
  seen.add(file)
  const source = readFileSync(file, "utf8")
  for (const match of source.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"/gm)) {
    const [, typeOnly, spec] = match
    if (typeOnly !== undefined || spec === undefined) continue
    if (spec.startsWith(".")) {
      for (const dep of externalImports(resolve(dirname(file), spec.replace(/\.js$/, ".ts")), seen))
        out.add(dep)
    } else {
      out.add(spec)
    }
  }
  return out
}

describe("browser build", () => {
  it("imports nothing but effect at runtime", () => {
    const external = [...externalImports(entry)]
    expect(external.every((spec) => spec === "effect")).toBe(true)
  })

  it.live("bundles for the browser with esbuild", () =>
    Effect.gen(function* () {
      const esbuild = yield* Effect.promise(() => import("esbuild"))
      const result = yield* Effect.promise(() =>
        esbuild.build({
          entryPoints: [entry],
          bundle: true,
          platform: "browser",
          format: "esm",
          write: false,
          logLevel: "silent",
        }),
      )
      expect(result.errors).toEqual([])
      const code = result.outputFiles[0]?.text ?? ""
      expect(code).toContain("QuotecastClient")
      expect(code).not.toMatch(/from\s*"(ws|node:[a-z]+)"/)
    }),
  )

  it("accepts both the DOM and the ws WebSocket constructors, and each opens a socket through WebSocketLike", async () => {
    // Compile-time: these assignments are what the option type promises.
    const dom: WebSocketConstructor | undefined = typeof WebSocket === "function" ? WebSocket : undefined
    const node: WebSocketConstructor = WsWebSocket
    // Run-time: used only through the SDK's surface, each reaches `open` and sends a frame.
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    const received: Array<string> = []
    server.on("connection", (s) => s.on("message", (data) => received.push(String(data))))
    await new Promise((resolve) => server.once("listening", resolve))
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const constructors = dom === undefined ? [node] : [dom, node]
      for (const [i, Ctor] of constructors.entries()) {
        const socket = new Ctor(url)
        await new Promise<void>((resolve, reject) => {
          socket.onopen = () => resolve()
          socket.onerror = () => reject(new Error(`constructor ${i} failed to open`))
        })
        expect(socket.readyState).toBe(ReadyState.open)
        socket.send(`hello ${i}`)
        await vi.waitFor(() => expect(received).toContain(`hello ${i}`))
        socket.close()
      }
      // Node >= 22 has the DOM's constructor too: then both were exercised.
      expect(received).toHaveLength(constructors.length)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
