/**
 * Preloaded into a server (`node --expose-gc --import ./bench/probes/startupHeap.mjs dist/main.js`,
 * or `--import tsx ... src/main.ts`): PROBE_DELAY_MS after it starts (3 s by default; the sources
 * under tsx need about 10 s on a shared machine), one full GC, then one line on stderr with the
 * heap still used and the process's RSS, and the process exits. What a server holds before any
 * client comes.
 */
const delay = Number(process.env.PROBE_DELAY_MS ?? 3000)
const mb = (bytes) => (bytes / 1048576).toFixed(1)
setTimeout(() => {
  if (typeof globalThis.gc !== "function") {
    console.error("startupHeap: run node with --expose-gc")
    process.exit(1)
  }
  globalThis.gc()
  const m = process.memoryUsage()
  console.error(
    `startupHeap: heapUsed ${mb(m.heapUsed)} MB, heapTotal ${mb(m.heapTotal)} MB, external ${mb(m.external)} MB, rss ${mb(m.rss)} MB`,
  )
  process.exit(0)
}, delay)
