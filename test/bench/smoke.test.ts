/**
 * The benchmark's smoke run: the tiny scenario against every server (each a child process),
 * so `npm run bench` cannot rot. It asserts only that every server ran and numbers came back;
 * never timing thresholds (this machine is shared, and figures belong in bench/results/).
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { runBench } from "../../bench/lib/bench.js"
import { smokeScenario } from "../../bench/lib/scenarios.js"

describe("npm run bench (smoke)", () => {
  it("runs every server under the smoke scenario and reports numbers", { timeout: 90_000 }, async () => {
    const results = await Effect.runPromise(
      runBench({ scenarios: [smokeScenario], cluster: false, outDir: undefined, log: () => {} }),
    )
    const [scenario] = results.scenarios
    const runs = scenario?.rounds.flatMap((round) => round.runs) ?? []
    expect(runs.map((r) => r.kind)).toEqual(["quotecast", "ws", "ws-fiber", "socketio"])
    for (const run of runs) {
      expect(run.status, `${run.server}: ${run.note ?? ""}`).toBe("ok")
      expect(run.connections.established).toBe(smokeScenario.connections)
      // Each server's own feed reports how many ticks it produced (and skipped) in the window.
      expect(run.feedTicksPerSec).toBeGreaterThan(0)
      expect(run.msgPerSec).toBeGreaterThan(0)
      expect(run.framesPerSec).toBeGreaterThan(0)
      expect(run.latencyMs.count).toBeGreaterThan(0)
      expect(Number.isFinite(run.latencyMs.p99)).toBe(true)
      expect(run.serverRssMb).toBeGreaterThan(0)
      // RSS and live memory are also read after the window, feed stopped, after a full GC.
      expect(run.rssPerConnAfterGcKb).not.toBeNull()
      expect(run.livePerConnAfterGcKb).not.toBeNull()
      // And what opening a connection and answering its subscriptions cost the server.
      expect(run.setupCpuUsPerConn).toBeGreaterThanOrEqual(0)
    }
  })
})
