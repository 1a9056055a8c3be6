/**
 * `@quotecast/client` as a user gets it: built (`npm run build:sdk`), packed (`npm pack`), and
 * installed from the tarball into a fresh project in a temp directory outside the repository
 * (its `effect` from the npm registry or npm's cache). There it is type-checked as a TypeScript
 * consumer would, then used against a live gateway from a plain Node script and from a page in
 * Debian's Chromium (the browser bundle through an import map, no bundler): subscribe, receive a
 * batch, and restore the session after the server drops the socket.
 *
 * Both runs share fixture/scenario.mjs; the test reads what it emitted, decoded with Schemas.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { dirname, extname, join, resolve, sep } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { chromium } from "playwright-core"
import { Registry } from "../../src/connection/Registry.js"
import { ServerSingle } from "../../src/protocol/server.js"
import {
  ingest,
  priceEvent,
  type RunningGateway,
  signToken,
  startGateway,
  waitFor,
} from "../support/gateway.js"
import { captureOutput } from "../support/output.js"

const run = promisify(execFile)
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const fixture = resolve(root, "test/sdk-package/fixture")
const PACKAGE = resolve(root, "packages/client")

const executablePath = [process.env.CHROMIUM_PATH, "/usr/bin/chromium"].find(
  (p): p is string => p !== undefined && p !== "" && existsSync(p),
)
const LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

/** Three stocks: their updates queued together leave the gateway as one `batch`. */
const CODES = ["005930", "000660", "035720"] as const

/** What fixture/scenario.mjs emits. */
const Line = Schema.Union(
  Schema.Struct({
    kind: Schema.Literal("frame"),
    type: Schema.String,
    sequences: Schema.Array(Schema.NullOr(Schema.Number)),
  }),
  Schema.Struct({ kind: Schema.Literal("message"), message: ServerSingle }),
  Schema.Struct({
    kind: Schema.Literal("event"),
    name: Schema.String,
    detail: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  }),
  Schema.Struct({ kind: Schema.Literal("closed") }),
)
type Line = typeof Line.Type
const decodeLines = Schema.decodeUnknownSync(Schema.Array(Line), { onExcessProperty: "error" })

/** The installed package's manifest, as far as a consumer's resolution reads it. */
const InstalledManifest = Schema.Struct({
  name: Schema.Literal("@quotecast/client"),
  version: Schema.String,
  exports: Schema.Record({
    key: Schema.String,
    value: Schema.Union(Schema.String, Schema.Struct({ types: Schema.String, import: Schema.String })),
  }),
})

/** `npm pack --json`: the tarball's name and the files in it. */
const PackResult = Schema.Array(
  Schema.Struct({ filename: Schema.String, files: Schema.Array(Schema.Struct({ path: Schema.String })) }),
)

/** One use of the SDK (Node script or page): what it emitted so far, and how to end it. */
interface SdkRun {
  readonly lines: () => Promise<ReadonlyArray<Line>>
  readonly close: () => Promise<void>
}

const messagesOf = (lines: ReadonlyArray<Line>) =>
  lines.flatMap((l) => (l.kind === "message" ? [l.message] : []))
const eventsOf = (lines: ReadonlyArray<Line>, name: string) =>
  lines.flatMap((l) => (l.kind === "event" && l.name === name ? [l.detail] : []))

const until = async (sdk: SdkRun, what: string, cond: (lines: ReadonlyArray<Line>) => boolean) =>
  // A bound for a hung run, not a claim about speed.
  waitFor(async () => cond(await sdk.lines()), 20_000, what)

const pricesDelivered = (lines: ReadonlyArray<Line>, prices: ReadonlyArray<number>) =>
  prices.every((price) => messagesOf(lines).some((m) => m.type === "price_update" && m.price === price))

/**
 * Subscribe, a batch, a socket the server drops, the restore, live again, close: the same steps
 * for the Node script and the page. `prices`: what to publish before and after the drop.
 */
const exercise = async (
  gw: RunningGateway,
  sdk: SdkRun,
  prices: { readonly batch: readonly [number, number, number]; readonly after: readonly [number, number] },
) => {
  await until(sdk, "subscribed", (lines) => messagesOf(lines).some((m) => m.type === "subscribed"))
  const first = await sdk.lines()
  const connected = messagesOf(first).find((m) => m.type === "connected")
  if (connected?.type !== "connected") throw new Error("no connected message before subscribed")

  // Three stocks' updates published at once: queued together, sent as one batch.
  const published = await ingest(
    gw,
    CODES.map((code, i) => priceEvent(code, prices.batch[i] ?? 0)),
  )
  expect(published.status).toBe(202)
  await until(sdk, "the published prices", (lines) => pricesDelivered(lines, prices.batch))
  const beforeDrop = await sdk.lines()
  const frames = beforeDrop.flatMap((l) => (l.kind === "frame" ? [l] : []))
  expect(frames.some((f) => f.type === "batch" && f.sequences.length >= 2)).toBe(true)
  // Every message of every frame (a batch unpacked) was delivered, one by one, in order.
  const delivered = messagesOf(beforeDrop).map((m) => m.sequence)
  expect(delivered).toEqual(frames.flatMap((f) => f.sequences))

  // The server drops the socket: no close frame, as when a network path dies.
  const registry = await gw.runtime.runPromise(Registry)
  const conn = registry.byId.get(connected.connection_id)
  expect(conn).toBeDefined()
  conn?.ws.terminate()
  await until(sdk, "reconnected", (lines) => messagesOf(lines).some((m) => m.type === "reconnected"))
  const restored = messagesOf(await sdk.lines()).find((m) => m.type === "reconnected")
  if (restored?.type !== "reconnected") throw new Error("unreachable: waited for reconnected")
  expect(restored.session_id).toBe(connected.session_id)
  expect([...(restored.restored_subscriptions.stock ?? [])].sort()).toEqual([...CODES].sort())

  // Live again on the restored session.
  expect(
    (await ingest(gw, [priceEvent(CODES[0], prices.after[0]), priceEvent(CODES[1], prices.after[1])])).status,
  ).toBe(202)
  await until(sdk, "the prices published after the restore", (lines) => pricesDelivered(lines, prices.after))

  await sdk.close()
  await until(sdk, "the client closed", (lines) => lines.some((l) => l.kind === "closed"))
  const lines = await sdk.lines()
  const disconnects = eventsOf(lines, "disconnect")
  expect(disconnects).toHaveLength(1)
  expect(disconnects[0]).toMatchObject({ code: 1006, willReconnect: true })
  // One session numbered 1, 2, 3, ... across the restore: nothing lost, nothing reported missing.
  const sequences = messagesOf(lines).map((m) => m.sequence)
  expect(sequences).toEqual(sequences.map((_, i) => i + 1))
  expect(eventsOf(lines, "gap")).toEqual([])
  expect(eventsOf(lines, "restore_failed")).toEqual([])
  expect(eventsOf(lines, "invalid_message")).toEqual([])
  expect(eventsOf(lines, "ready")).toEqual([
    { sessionId: connected.session_id },
    { sessionId: connected.session_id },
  ])
  expect(eventsOf(lines, "close")).toEqual([{ error: null }])
}

describe("@quotecast/client from its packed tarball", () => {
  let project: string
  let gw: RunningGateway
  let packed: typeof PackResult.Type

  beforeAll(async () => {
    await run(process.execPath, ["--import", "tsx", "scripts/buildSdk.ts"], { cwd: root })
    project = mkdtempSync(join(tmpdir(), "quotecast-sdk-"))
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", project], { cwd: PACKAGE })
    packed = Schema.decodeUnknownSync(Schema.parseJson(PackResult))(stdout)
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "sdk-consumer", private: true, type: "module" }),
    )
    // ws: the Node script's WebSocket on Node 20 (Node 22+ has a global one).
    await run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${packed[0]?.filename ?? ""}`, "ws@8"],
      { cwd: project },
    )
    for (const file of ["scenario.mjs", "node-client.mjs", "effect-client.mjs", "index.html"])
      copyFileSync(join(fixture, file), join(project, file))
    gw = await startGateway()
  }, 300_000)

  afterAll(async () => {
    await gw?.stop()
    if (project !== undefined) rmSync(project, { recursive: true, force: true })
  })

  it("is a tarball of built files only, installed outside the repository", () => {
    expect(project.startsWith(root + sep)).toBe(false)
    const files = (packed[0]?.files ?? []).map((f) => f.path).sort()
    expect(files).toEqual(
      expect.arrayContaining(["package.json", "dist/client/index.js", "dist/client/index.d.ts"]),
    )
    expect(files.every((f) => f === "package.json" || f === "README.md" || f.startsWith("dist/"))).toBe(true)
    expect(files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toBe(false)

    const installed = join(project, "node_modules/@quotecast/client")
    const manifest = Schema.decodeUnknownSync(Schema.parseJson(InstalledManifest))(
      readFileSync(join(installed, "package.json"), "utf8"),
    )
    expect(manifest.version).toBe("0.1.0")
    // Every entry the exports map names exists, with its types beside it.
    for (const target of Object.values(manifest.exports)) {
      const paths = typeof target === "string" ? [target] : [target.import, target.types]
      for (const path of paths) expect(existsSync(join(installed, path))).toBe(true)
    }
    expect(manifest.exports["./browser"]).toEqual({
      types: "./dist/browser/quotecast-client.d.ts",
      import: "./dist/browser/quotecast-client.js",
    })
    // effect came with it, from the registry: the SDK's one runtime dependency.
    expect(existsSync(join(project, "node_modules/effect/package.json"))).toBe(true)
  })

  it("type-checks a TypeScript consumer against its .d.ts, and rejects a wrong use", async () => {
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2022", "DOM"],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
        files: ["consumer.ts", "misuse.ts"],
      }),
    )
    writeFileSync(
      join(project, "consumer.ts"),
      [
        `import { Client, QuotecastClient, type ServerMessageOf } from "@quotecast/client"`,
        `import { QuotecastClient as BrowserClient } from "@quotecast/client/browser"`,
        `import { Effect } from "effect"`,
        `const client: QuotecastClient = new BrowserClient({ url: "ws://127.0.0.1:8000/v1/ws" })`,
        `client.on("price_update", (m: ServerMessageOf<"price_update">) => console.log(m.code, m.price.toFixed(0)))`,
        `export const program = Effect.scoped(Effect.gen(function* () {`,
        `  const c = yield* Client.connect({ url: "ws://127.0.0.1:8000/v1/ws" })`,
        `  yield* c.subscribe("stock", ["005930"])`,
        `}))`,
      ].join("\n"),
    )
    writeFileSync(
      join(project, "misuse.ts"),
      [
        `import { QuotecastClient } from "@quotecast/client"`,
        `const client = new QuotecastClient({ url: "ws://127.0.0.1:8000/v1/ws" })`,
        `client.on("price_update", (m) => m.no_such_field)`,
        `client.subscribe("no_such_type", ["005930"])`,
      ].join("\n"),
    )
    const tsc = resolve(root, "node_modules/typescript/bin/tsc")
    const result = await run(process.execPath, [tsc, "-p", project], { cwd: project }).then(
      () => "",
      (e: { readonly stdout?: string }) => e.stdout ?? String(e),
    )
    // Exactly the two wrong uses fail; the consumer compiles, so its types resolved (not `any`).
    const errors = result.split("\n").filter((l) => /error TS\d+/.test(l))
    expect(errors).toHaveLength(2)
    expect(errors[0]).toMatch(/^misuse\.ts\(3,.*error TS2339: Property 'no_such_field' does not exist/)
    expect(errors[1]).toMatch(/^misuse\.ts\(4,.*error TS2345: Argument of type '"no_such_type"'/)
  }, 120_000)

  it("works from a plain Node script: subscribes, gets a batch, restores after a dropped socket", async () => {
    let child: ChildProcess | undefined
    try {
      const spawned = spawn(process.execPath, ["node-client.mjs"], {
        cwd: project,
        env: {
          ...process.env,
          QUOTECAST_URL: gw.wsUrl,
          QUOTECAST_TOKEN: await signToken({ sub: "sdk-node" }),
          QUOTECAST_CODES: CODES.join(","),
        },
        stdio: ["pipe", "pipe", "pipe"],
      })
      child = spawned
      const seen = captureOutput(spawned)
      const exited = new Promise<number | null>((done) => spawned.once("exit", done))
      const sdk: SdkRun = {
        lines: async () => {
          if (spawned.exitCode !== null && spawned.exitCode !== 0)
            throw new Error(`node-client.mjs exited with ${spawned.exitCode}: ${seen.stderr}`)
          return decodeLines(
            seen.stdout
              .split("\n")
              .filter((l) => l !== "")
              .map((l) => JSON.parse(l)),
          )
        },
        close: async () => {
          spawned.stdin.end()
        },
      }
      await exercise(gw, sdk, { batch: [73100, 145100, 42050], after: [73200, 145200] })
      expect(await exited).toBe(0)
      expect(seen.stderr).toBe("")
    } finally {
      if (child?.exitCode === null) child.kill("SIGKILL")
    }
  }, 120_000)

  it("works through its Effect API with the effect the consumer installed", async () => {
    const { stdout } = await run(process.execPath, ["effect-client.mjs"], {
      cwd: project,
      env: {
        ...process.env,
        QUOTECAST_URL: gw.wsUrl,
        QUOTECAST_TOKEN: await signToken({ sub: "sdk-effect" }),
        QUOTECAST_CODES: CODES.join(","),
      },
    })
    const messages = Schema.decodeUnknownSync(Schema.parseJson(Schema.Array(ServerSingle)))(stdout)
    expect(messages[0]?.type).toBe("connected")
    expect(messages.at(-1)).toMatchObject({ type: "subscribed", subscription_type: "stock" })
    expect(messages.map((m) => m.sequence)).toEqual(messages.map((_, i) => i + 1))
  }, 60_000)

  it.skipIf(executablePath === undefined)(
    "works from a page in Chromium with the browser bundle (no bundler): the same steps",
    async () => {
      if (executablePath === undefined) throw new Error("unreachable: skipped without Chromium")
      const server = await serveProject(project)
      const browser = await chromium.launch({ executablePath, args: LAUNCH_ARGS })
      try {
        const page = await browser.newPage()
        const problems: Array<string> = []
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
        page.on("console", (m) => {
          if (m.type() === "error") problems.push(`console error: ${m.text()}`)
        })
        page.on("response", (r) => {
          if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`)
        })
        const hash = new URLSearchParams({
          url: gw.wsUrl,
          token: await signToken({ sub: "sdk-browser" }),
          codes: CODES.join(","),
        })
        const response = await page.goto(`http://127.0.0.1:${server.port}/index.html#${hash}`)
        expect(response?.status()).toBe(200)
        const sdk: SdkRun = {
          lines: async () => {
            if (problems.length > 0) throw new Error(problems.join("; "))
            return decodeLines(await page.evaluate("window.quotecastLog ?? []"))
          },
          close: async () => {
            await page.evaluate("window.quotecastClose()")
          },
        }
        await exercise(gw, sdk, { batch: [73300, 145300, 42100], after: [73400, 145400] })
        expect(problems).toEqual([])
      } finally {
        await browser.close()
        await server.close()
      }
    },
    120_000,
  )
})

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
}

/** The page, its script, and the installed package's files, over HTTP on loopback. */
const serveProject = async (
  project: string,
): Promise<{ readonly port: number; readonly close: () => Promise<void> }> => {
  const allowed = (path: string) =>
    path === "/index.html" || path === "/scenario.mjs" || path.startsWith("/node_modules/@quotecast/client/")
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname
    const file = join(project, path)
    if (!allowed(path) || path.includes("..") || !existsSync(file)) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" })
    res.end(readFileSync(file))
  })
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done))
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error(`not a TCP address: ${address}`)
  return { port: address.port, close: () => new Promise((done) => server.close(() => done())) }
}
