/**
 * Preloaded into the server process by `slowReaderStorm.ts` (`--import`): once a second it appends
 * one JSON line to PROBE_MEMORY_FILE with where the process's memory is, so the probe can tell the
 * V8 heap, Buffers outside it (`external`/`arrayBuffers`) and what the allocator holds apart.
 * SIGUSR2 runs a full GC first (the server is started with --expose-gc), to separate garbage
 * from memory still held.
 */
import { appendFileSync, readFileSync } from "node:fs"
import { Session } from "node:inspector"
import { getHeapSpaceStatistics } from "node:v8"

const file = process.env.PROBE_MEMORY_FILE
const mb = (n: number): number => Math.round((n / 1048576) * 10) / 10

/** The kB fields of /proc/self/smaps_rollup (Rss, Anonymous, ...), in MB. */
const rollup = (): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const line of readFileSync("/proc/self/smaps_rollup", "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line)
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = Math.round(Number(m[2]) / 102.4) / 10
  }
  return out
}

/**
 * Resident memory of the glibc main arena (`[heap]`, the brk heap) and of other anonymous
 * mappings by size class: thread arenas are 64 MB reservations, V8's pages 256 KB-aligned chunks.
 */
const mappings = (): Record<string, number> => {
  const out: Record<string, number> = { brkHeap: 0, anon64MbArenas: 0, anonOther: 0 }
  let current: string | undefined
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head !== null) {
      const size = Number.parseInt(head[2] as string, 16) - Number.parseInt(head[1] as string, 16)
      const name = head[3] ?? ""
      current =
        name === "[heap]"
          ? "brkHeap"
          : name !== ""
            ? undefined
            : size === 65536 * 1024
              ? "anon64MbArenas"
              : "anonOther"
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && current !== undefined) out[current] = (out[current] ?? 0) + Number(rss[1]) / 1024
  }
  for (const k of Object.keys(out)) out[k] = Math.round((out[k] as number) * 10) / 10
  return out
}

const sample = (label: string): void => {
  if (file === undefined) return
  const m = process.memoryUsage()
  const spaces: Record<string, number> = {}
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = mb(s.space_size)
  const line = {
    t: Date.now(),
    label,
    rss: mb(m.rss),
    heapTotal: mb(m.heapTotal),
    heapUsed: mb(m.heapUsed),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
    spaces,
    rollup: rollup(),
    mappings: mappings(),
  }
  appendFileSync(file, `${JSON.stringify(line)}\n`)
}

/**
 * With PROBE_HEAP_SITES=1, V8's sampling heap profiler runs, and whenever the heap in use reaches
 * a new high (past 300 MB) the allocation sites of what is still alive are written as a
 * "heap-sites" line: the functions (with their callers) that allocated the live heap at the peak.
 */
interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<SamplingNode>
}
const heapSites = (() => {
  if (process.env.PROBE_HEAP_SITES !== "1" || file === undefined) return undefined
  const session = new Session()
  session.connect()
  session.post("HeapProfiler.startSampling", { samplingInterval: 256 * 1024 })
  let high = 300
  return (heapUsedMb: number): void => {
    if (heapUsedMb < high) return
    high = heapUsedMb * 1.2
    session.post("HeapProfiler.getSamplingProfile", (err, res) => {
      if (err !== null) return
      const sites = new Map<string, number>()
      const frame = (n: SamplingNode) =>
        `${n.callFrame.functionName || "(anon)"}@${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`
      const walk = (n: SamplingNode, path: ReadonlyArray<string>) => {
        const here = [...path, frame(n)].slice(-4)
        if (n.selfSize > 0) {
          const key = here.join(" < ")
          sites.set(key, (sites.get(key) ?? 0) + n.selfSize)
        }
        for (const c of n.children) walk(c, here)
      }
      walk((res as unknown as { profile: { head: SamplingNode } }).profile.head, [])
      const top = Array.from(sites)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
      appendFileSync(
        file,
        `${JSON.stringify({ t: Date.now(), label: "heap-sites", heapUsedMb, sites: top.map(([k, v]) => [k, mb(v)]) })}\n`,
      )
    })
  }
})()

if (file !== undefined) {
  setInterval(() => {
    sample("tick")
    heapSites?.(mb(process.memoryUsage().heapUsed))
  }, 1000).unref()
  process.on("SIGUSR2", () => {
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc !== undefined) gc()
    sample("after-gc")
  })
}
