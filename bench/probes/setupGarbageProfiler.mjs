/**
 * Preloaded into the server by `setupGarbage.ts` (`--import`): V8's sampling heap profiler runs
 * from the harness's first "gc" command (before the ramp) to its second (after it), keeping the
 * samples of objects freed by full GCs as well when PROBE_KEEP_MAJOR=1. The profile goes to
 * PROBE_PROFILE_FILE. Plain JavaScript: it loads before tsx.
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"

const file = process.env.PROBE_PROFILE_FILE
const keepMajor = process.env.PROBE_KEEP_MAJOR === "1"
const session = new Session()
session.connect()
let gcs = 0
process.on("message", (m) => {
  if (file === undefined || typeof m !== "object" || m === null || m.cmd !== "gc") return
  gcs++
  // After the server's own handler: the sampling starts after the first GC and ends after the second.
  if (gcs === 1)
    setImmediate(() =>
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: keepMajor,
        includeObjectsCollectedByMinorGC: false,
      }),
    )
  else if (gcs === 2)
    setImmediate(() =>
      session.post("HeapProfiler.stopSampling", (err, r) => {
        if (err === null) writeFileSync(file, JSON.stringify(r.profile))
      }),
    )
})
