/**
 * Preloaded into a bench server by `perConnHeap.ts` (`--import`): after each "gc" command of the
 * harness (once the server's own handler ran the GC), writes a heap snapshot to
 * PROBE_SNAPSHOT_DIR/<n>.heapsnapshot and V8's heap space statistics to <n>.spaces.json.
 * Plain JavaScript: it loads before tsx.
 */
import { writeFileSync } from "node:fs"
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8"

const dir = process.env.PROBE_SNAPSHOT_DIR
let gcs = 0
process.on("message", (m) => {
  if (dir === undefined || typeof m !== "object" || m === null || m.cmd !== "gc") return
  const n = ++gcs
  setImmediate(() => {
    writeFileSync(`${dir}/${n}.spaces.json`, JSON.stringify(getHeapSpaceStatistics()))
    if (process.env.PROBE_NO_SNAPSHOT !== "1") writeHeapSnapshot(`${dir}/${n}.heapsnapshot`)
    process.send?.({ ok: "snapshot" })
  })
})
