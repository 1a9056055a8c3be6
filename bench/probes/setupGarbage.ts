/**
 * Ad-hoc probe (not part of `npm run bench`): how much of what a connection's setup allocates
 * survives a scavenge, and how much of that is garbage by the end of the ramp (promoted, then
 * freed by the full GC, leaving holes in old-space pages that stay committed: scenario C's RSS).
 * Starts quotecast as the benchmark does (bench/servers/quotecast.ts, bench admission limits),
 * ramps CLIENTS (default 2,000) connections at 1,000/s, each subscribing to 20 of 200 codes, twice:
 * once keeping the samples of objects freed by full GCs (`setupGarbageProfiler.mjs`), once not.
 * The difference is the promoted garbage, per connection, by allocating function.
 *
 *   node --import tsx bench/probes/setupGarbage.ts
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Schema } from "effect"
import { benchCodeList } from "../lib/codes.js"
import { BENCH_ADMISSION } from "../lib/server.js"
import { listeningPort, rampSubscribers } from "./ramp.js"

const clients = Number(process.env.CLIENTS ?? 2000)
const codes = benchCodeList(200)
const profiler = new URL("./setupGarbageProfiler.mjs", import.meta.url).pathname
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly columnNumber: number }
  readonly selfSize: number
  readonly children?: ReadonlyArray<ProfileNode> | undefined
}
const ProfileNodeSchema: Schema.Schema<ProfileNode> = Schema.Struct({
  callFrame: Schema.Struct({ functionName: Schema.String, url: Schema.String, columnNumber: Schema.Number }),
  selfSize: Schema.Number,
  children: Schema.optional(Schema.Array(Schema.suspend(() => ProfileNodeSchema))),
})
const Profile = Schema.Struct({ head: ProfileNodeSchema })

/** Bytes sampled per function (name, file, column of the transpiled module), and the total. */
const bySite = (file: string): { total: number; sites: Map<string, number> } => {
  const profile = Schema.decodeUnknownSync(Profile)(JSON.parse(readFileSync(file, "utf8")))
  const sites = new Map<string, number>()
  let total = 0
  const walk = (n: ProfileNode): void => {
    if (n.selfSize > 0) {
      const f = n.callFrame
      const site = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${f.columnNumber + 1}`
      sites.set(site, (sites.get(site) ?? 0) + n.selfSize)
      total += n.selfSize
    }
    for (const c of n.children ?? []) walk(c)
  }
  walk(profile.head)
  return { total, sites }
}

const rampOnce = async (keepMajor: boolean): Promise<string> => {
  const file = join(tmpdir(), `setup-garbage-${process.pid}-${keepMajor ? "major" : "live"}.json`)
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--import", profiler, "--import", "tsx", "bench/servers/quotecast.ts"],
    {
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: "0",
        FEED: "none",
        LOG_LEVEL: "warning",
        BENCH_CODES: "200",
        BENCH_FEED_RATE: "1",
        ...BENCH_ADMISSION,
        PROBE_PROFILE_FILE: file,
        PROBE_KEEP_MAJOR: keepMajor ? "1" : "0",
      },
      stdio: ["ignore", "pipe", "inherit", "ipc"],
    },
  )
  try {
    const port = await listeningPort(child)
    const gc = () =>
      new Promise<void>((resolve) => {
        child.once("message", () => resolve())
        child.send({ cmd: "gc" })
      })
    await gc()
    const ramp = await rampSubscribers(port, clients, codes, "connected")
    await gc()
    await sleep(1000)
    for (const ws of ramp.sockets) ws.terminate()
    if (ramp.subscribed < clients) throw new Error(`only ${ramp.subscribed} of ${clients} subscribed`)
    return file
  } finally {
    child.kill()
  }
}

const kb = (bytes: number) => (bytes / clients / 1024).toFixed(1)
const major = bySite(await rampOnce(true))
const live = bySite(await rampOnce(false))
console.log(`${clients} connections x 20 subscriptions, per connection:`)
console.log(
  `  survived a scavenge: ${kb(major.total)} KB; still live after the full GC: ${kb(live.total)} KB`,
)
console.log(`  promoted, then freed: ${kb(major.total - live.total)} KB. Largest by allocating function:`)
const rows = [...major.sites].map(([site, bytes]) => [site, bytes - (live.sites.get(site) ?? 0)] as const)
for (const [site, bytes] of rows.sort((a, b) => b[1] - a[1]).slice(0, 12))
  console.log(`  ${kb(bytes).padStart(6)} KB  ${site}`)
