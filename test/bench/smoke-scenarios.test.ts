/**
 * The benchmark's own-measurement scenarios at tiny sizes, so their code paths cannot rot:
 * G (a reconnect storm beside observers, quotecast and the bare ws server) and H (observers
 * without and with one attacker). Asserts only that they ran and reported numbers; the
 * figures belong in bench/results/, never in npm test.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { type AttackRun, attackCustom } from "../../bench/lib/attack.js"
import { runBench } from "../../bench/lib/bench.js"
import { smokeAttackSpec, smokeStormSpec } from "../../bench/lib/scenarios.js"
import { type StormRun, stormCustom } from "../../bench/lib/storm.js"

describe("npm run bench (smoke): scenarios G and H", () => {
  it("G: every client of a small storm is restored (quotecast) or reconnected (bare ws), with figures", {
    timeout: 120_000,
  }, async () => {
    const results = await Effect.runPromise(
      runBench({
        scenarios: [],
        custom: [stormCustom(smokeStormSpec)],
        cluster: false,
        outDir: undefined,
        log: () => {},
      }),
    )
    const round = results.scenarios[0]?.rounds[0]
    const runs = (round?.data ?? []) as ReadonlyArray<StormRun>
    expect(runs.map((r) => r.kind)).toEqual(["quotecast", "ws"])
    for (const run of runs) {
      expect(run.status, `${run.server}: ${run.note ?? ""}`).toBe("ok")
      expect(run.primed).toBe(smokeStormSpec.scenario.connections)
      expect(run.restored).toBe(smokeStormSpec.scenario.connections)
      expect(run.stormMs).toBeGreaterThanOrEqual(0)
      expect(run.cpuUsPerRestore).toBeGreaterThanOrEqual(0)
      expect(run.observers.during.count).toBeGreaterThan(0)
      // Every client restored, none gave up; its restore time is read from every client.
      expect(run.gaveUp).toBe(0)
      expect(run.maxAttempts).toBeGreaterThanOrEqual(1)
      expect(run.restoreMs.p99).toBeGreaterThanOrEqual(run.restoreMs.p50)
    }
    const q = runs[0] as StormRun
    expect(q.partial).toBe(0)
    // quotecast's admission metrics are read back: with SETUP_CONCURRENCY=4, setups waited.
    expect(q.admission?.quotecast_setups_in_flight_peak).toBeLessThanOrEqual(4)
    expect(round?.table?.rows).toHaveLength(2)
  })

  it("H: observers' delivery and pong latency without and with the attacker, what it was sent, and an alert storm", {
    timeout: 120_000,
  }, async () => {
    const results = await Effect.runPromise(
      runBench({
        scenarios: [],
        custom: [attackCustom(smokeAttackSpec)],
        cluster: false,
        outDir: undefined,
        log: () => {},
      }),
    )
    const round = results.scenarios[0]?.rounds[0]
    const [run] = (round?.data ?? []) as ReadonlyArray<AttackRun>
    expect(run?.status, run?.note).toBe("ok")
    expect(run?.without.delivery.count).toBeGreaterThan(0)
    expect(run?.with.delivery.count).toBeGreaterThan(0)
    expect(run?.without.pong.count).toBeGreaterThan(0)
    expect(run?.with.pong.count).toBeGreaterThan(0)
    expect(run?.attacker.framesSent).toBeGreaterThan(0)
    expect(run?.attacker.largestAnswerBytes).toBeGreaterThan(0)
    // Then one user's alerts fire at once beside the same observers.
    expect(run?.alerts?.created).toBe(smokeAttackSpec.alertsPerUser)
    expect(run?.alerts?.storm.delivery.count).toBeGreaterThan(0)
    expect(results.scenarios[0]?.checks.length).toBe(4)
  })
})
