/**
 * Preloaded into the server process by `slowReaderStorm.ts` (`--import`): once a second it appends
 * one JSON line to PROBE_MEMORY_FILE with where the process's memory is, so the probe can tell the
 * V8 heap, Buffers outside it (`external`/`arrayBuffers`) and what the allocator holds apart.
 * SIGUSR2 runs a full GC first (the server is started with --expose-gc), to separate garbage
 * from memory still held.
 */
import { appendFileSync, closeSync, openSync, readFileSync, readSync } from "node:fs"
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
 * /proc/self/smaps read into one reused Buffer: it is megabytes at a storm's peak (3,600
 * mappings, 2.6 MB), and read as a string every second it was old-generation garbage of the
 * process being measured (a string that size is allocated straight in V8's large-object space).
 */
let smapsBuf = Buffer.allocUnsafeSlow(4 << 20)
const readSmaps = (): number => {
  const fd = openSync("/proc/self/smaps", "r")
  try {
    let n = 0
    for (;;) {
      if (n === smapsBuf.length) {
        const bigger = Buffer.allocUnsafeSlow(smapsBuf.length * 2)
        smapsBuf.copy(bigger)
        smapsBuf = bigger
      }
      const r = readSync(fd, smapsBuf, n, smapsBuf.length - n, null)
      if (r === 0) return n
      n += r
    }
  } finally {
    closeSync(fd)
  }
}

const RSS_FIELD = Buffer.from("Rss:")
const HEAP_NAME = Buffer.from("[heap]")

/**
 * Resident memory of the glibc main arena (`[heap]`, the brk heap) and of other anonymous
 * mappings by size class: thread arenas are 64 MB reservations, V8's pages 256 KB-aligned chunks.
 * Parsed from the bytes: a mapping's header line starts with its address (lowercase hex), its
 * fields with a capitalised name.
 */
const mappings = (): Record<string, number> => {
  const kb: Record<string, number> = { brkHeap: 0, anon64MbArenas: 0, anonOther: 0 }
  const n = readSmaps()
  const buf = smapsBuf
  let current: string | undefined
  for (let pos = 0; pos < n; ) {
    let eol = buf.indexOf(10, pos)
    if (eol < 0 || eol > n) eol = n
    const c = buf[pos] as number
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) {
      // "start-end perms offset dev inode [name]": the name is what follows the inode.
      const dash = buf.indexOf(0x2d, pos)
      const space = buf.indexOf(0x20, dash)
      const size =
        Number.parseInt(buf.toString("latin1", dash + 1, space), 16) -
        Number.parseInt(buf.toString("latin1", pos, dash), 16)
      let fields = 0
      let at = space
      while (fields < 4 && at < eol) {
        while (at < eol && buf[at] === 0x20) at++
        while (at < eol && buf[at] !== 0x20) at++
        fields++
      }
      while (at < eol && buf[at] === 0x20) at++
      const named = at < eol
      current =
        named && eol - at === HEAP_NAME.length && buf.compare(HEAP_NAME, 0, HEAP_NAME.length, at, eol) === 0
          ? "brkHeap"
          : named
            ? undefined
            : size === 65536 * 1024
              ? "anon64MbArenas"
              : "anonOther"
    } else if (
      current !== undefined &&
      buf.compare(RSS_FIELD, 0, RSS_FIELD.length, pos, pos + RSS_FIELD.length) === 0
    ) {
      let v = 0
      for (let i = pos + RSS_FIELD.length; i < eol; i++) {
        const d = buf[i] as number
        if (d >= 0x30 && d <= 0x39) v = v * 10 + (d - 0x30)
      }
      kb[current] = (kb[current] ?? 0) + v
    }
    pos = eol + 1
  }
  const out: Record<string, number> = {}
  for (const k of Object.keys(kb)) out[k] = Math.round(((kb[k] as number) / 1024) * 10) / 10
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
