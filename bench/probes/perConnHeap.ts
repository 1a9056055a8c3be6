/**
 * Ad-hoc probe (not part of `npm run bench`): what a server holds per idle connection, by kind of
 * object, from heap snapshots taken after a full GC before and after a ramp (scenario C's shape:
 * CLIENTS connections, default 2,000, each subscribing to 20 of 200 codes). Runs each server of
 * SERVERS (default `quotecast,ws-fiber`) as the benchmark starts it, and prints, per connection,
 * the self size added by each (node type, name) of the snapshot, largest first, side by side.
 *
 * It also prints each server's RSS per connection 5 s after the second GC (as scenario C reads
 * it) and V8's heap spaces then.
 *
 *   node --import tsx bench/probes/perConnHeap.ts
 *   CLIENTS=10000 PROBE_NO_SNAPSHOT=1 PROBE_SETTLE_MS=0 PROBE_NODE_ARGS="--trace-gc --trace-gc-verbose" \
 *     PROBE_LOG=/tmp/gc node --import tsx bench/probes/perConnHeap.ts   # when V8 collects, and why
 *
 * PROBE_SETTLE_MS (default 5000): wait after the server listens before the first GC (the benchmark
 * waits none); PROBE_NO_SNAPSHOT=1: GCs and heap spaces only; PROBE_LOG: the servers' stdout goes
 * to <PROBE_LOG>.<server>.
 */
import { spawn } from "node:child_process"
import { appendFileSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { benchCodeList } from "../lib/codes.js"
import { BENCH_ADMISSION } from "../lib/server.js"
import { listeningPort, rampSubscribers } from "./ramp.js"

const clients = Number(process.env.CLIENTS ?? 2000)
const servers = (process.env.SERVERS ?? "quotecast,ws-fiber").split(",")
const codes = benchCodeList(200)
const preload = new URL("./heapSnapshotter.mjs", import.meta.url).pathname
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const entries: Record<string, { readonly entry: string; readonly env: Record<string, string> }> = {
  quotecast: { entry: "bench/servers/quotecast.ts", env: { LOG_LEVEL: "warning", ...BENCH_ADMISSION } },
  "ws-fiber": { entry: "bench/servers/ws.ts", env: { BENCH_FIBER: "on" } },
}

/** Self size and count per "type name" of a V8 heap snapshot. */
const histogram = (file: string): Map<string, { size: number; count: number }> => {
  const snap: {
    snapshot: { meta: { node_fields: Array<string>; node_types: Array<Array<string> | string> } }
    nodes: Array<number>
    strings: Array<string>
  } = JSON.parse(readFileSync(file, "utf8"))
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0] as Array<string>
  const width = fields.length
  const fType = fields.indexOf("type")
  const fName = fields.indexOf("name")
  const fSize = fields.indexOf("self_size")
  const out = new Map<string, { size: number; count: number }>()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + fType] as number] ?? "?"
    let name = snap.strings[snap.nodes[i + fName] as number] ?? "?"
    if (type === "string" || type === "concatenated string" || type === "sliced string") name = ""
    if (name.length > 60) name = `${name.slice(0, 60)}…`
    const key = `${type} ${name}`
    const e = out.get(key) ?? { size: 0, count: 0 }
    e.size += snap.nodes[i + fSize] as number
    e.count++
    out.set(key, e)
  }
  return out
}

/** Resident set of a process, bytes (from /proc). */
const rssOf = (pid: number | undefined): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return Number(m?.[1] ?? 0) * 1024
}

const run = async (kind: string) => {
  const spec = entries[kind]
  if (spec === undefined) throw new Error(`unknown server ${kind}`)
  const dir = mkdtempSync(join(tmpdir(), `perconn-${kind}-`))
  // PROBE_NODE_ARGS: extra flags for the servers (e.g. --trace-gc); their output goes to PROBE_LOG.
  const extra = (process.env.PROBE_NODE_ARGS ?? "").split(" ").filter((a) => a !== "")
  const child = spawn(
    process.execPath,
    ["--expose-gc", ...extra, "--import", preload, "--import", "tsx", spec.entry],
    {
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: "0",
        FEED: "none",
        BENCH_CODES: "200",
        BENCH_FEED_RATE: "1",
        PROBE_SNAPSHOT_DIR: dir,
        ...spec.env,
      },
      stdio: ["ignore", "pipe", "inherit", "ipc"],
    },
  )
  try {
    const log = process.env.PROBE_LOG
    const port = await listeningPort(child, (d) => {
      if (log !== undefined) appendFileSync(`${log}.${kind}`, d)
    })
    const gc = () =>
      new Promise<void>((resolve) => {
        const on = (m: unknown) => {
          if (typeof m === "object" && m !== null && "ok" in m && m.ok === "snapshot") {
            child.off("message", on)
            resolve()
          }
        }
        child.on("message", on)
        child.send({ cmd: "gc" })
      })
    // Startup work that finishes in the background (the dashboard bundle when run from the
    // sources) is not per-connection memory: let it land before the first snapshot.
    await sleep(Number(process.env.PROBE_SETTLE_MS ?? 5000))
    await gc()
    await sleep(300)
    const rss0 = rssOf(child.pid)
    // As the benchmark's load client: no permessage-deflate offer, subscribe once open.
    const ramp = await rampSubscribers(port, clients, codes, "open", {
      perMessageDeflate: false,
      skipUTF8Validation: true,
    })
    await gc()
    // As scenario C reads it: RSS 5 s after the full GC (2 s of warm-up, a 3 s window).
    await sleep(5000)
    console.log(`${kind}: RSS ${((rssOf(child.pid) - rss0) / clients / 1024).toFixed(1)} KB per connection`)
    const spaces = (n: number) =>
      JSON.parse(readFileSync(join(dir, `${n}.spaces.json`), "utf8")) as Array<{
        space_name: string
        space_size: number
        space_used_size: number
      }>
    for (const s of spaces(2))
      console.log(
        `${kind} ${s.space_name}: size ${(s.space_size / 1048576).toFixed(1)} MB, used ${(s.space_used_size / 1048576).toFixed(1)} MB`,
      )
    for (const ws of ramp.sockets) ws.terminate()
    if (ramp.subscribed < clients) throw new Error(`only ${ramp.subscribed} of ${clients} subscribed`)
    if (process.env.PROBE_NO_SNAPSHOT === "1") return { before: new Map(), after: new Map() }
    return { before: histogram(join(dir, "1.heapsnapshot")), after: histogram(join(dir, "2.heapsnapshot")) }
  } finally {
    child.kill()
  }
}

const results = new Map<string, Map<string, { size: number; count: number }>>()
for (const kind of servers) {
  const { before, after } = await run(kind)
  const diff = new Map<string, { size: number; count: number }>()
  for (const [k, v] of after) {
    const b = before.get(k) ?? { size: 0, count: 0 }
    diff.set(k, { size: (v.size - b.size) / clients, count: (v.count - b.count) / clients })
  }
  results.set(kind, diff)
  let total = 0
  for (const v of diff.values()) total += v.size
  console.log(`${kind}: ${total.toFixed(0)} bytes of heap (snapshot self sizes) per connection`)
}
const keys = new Set<string>()
for (const d of results.values()) for (const k of d.keys()) keys.add(k)
const rows = [...keys].map((k) => ({
  k,
  v: servers.map((s) => results.get(s)?.get(k) ?? { size: 0, count: 0 }),
}))
rows.sort(
  (a, b) => Math.max(...b.v.map((x) => Math.abs(x.size))) - Math.max(...a.v.map((x) => Math.abs(x.size))),
)
console.log(`bytes (objects) per connection: ${servers.join(" | ")}`)
for (const r of rows.slice(0, Number(process.env.ROWS ?? 60)))
  console.log(
    `${r.v.map((x) => `${x.size.toFixed(0).padStart(6)} (${x.count.toFixed(2)})`).join("  ")}  ${r.k}`,
  )
