/**
 * The benchmark's target checks (reported, never asserted in npm test): what counts as met.
 */
import { describe, expect, it } from "vitest"
import { checksFor } from "../../bench/lib/checks.js"
import { failedResult, type RunResult } from "../../bench/lib/scenario.js"
import { scenarios } from "../../bench/lib/scenarios.js"

const scenario = (id: string) => {
  const s = scenarios.find((x) => x.id === id)
  if (s === undefined) throw new Error(`no scenario ${id}`)
  return s
}

/** A quotecast run of scenario `id` with every connection up, and `overrides`. */
const run = (id: string, overrides: Partial<RunResult>): RunResult => {
  const s = scenario(id)
  const base = failedResult(s, "quotecast", "quotecast", "")
  return {
    ...base,
    status: "ok",
    note: undefined,
    connections: { ...base.connections, established: s.connections },
    ...overrides,
  }
}

const verdict = (id: string, r: RunResult, target: RegExp) =>
  checksFor(scenario(id), [r]).find((c) => target.test(c.target))?.met

describe("bench checks", () => {
  it("E: 1 GB is 1,000 of the tables' MB (10^6 bytes each)", () => {
    expect(verdict("E", run("E", { serverRssPeakMb: 990 }), /RSS < 1 GB/)).toBe(true)
    expect(verdict("E", run("E", { serverRssPeakMb: 1014 }), /RSS < 1 GB/)).toBe(false)
  })

  it("D: memory per connection is the live memory after the load, not RSS", () => {
    const d = (rssAfterGc: number | null, live: number | null) =>
      verdict(
        "D",
        run("D", { rssPerConnKb: 150, rssPerConnAfterGcKb: rssAfterGc, livePerConnAfterGcKb: live }),
        /64 KB/,
      )
    // V8's committed old space after a load shows in RSS but is no connection's memory.
    expect(d(80, 12)).toBe(true)
    // zlib state per connection is external memory: it counts.
    expect(d(900, 230)).toBe(false)
    // Below the memory before any connection: nothing measurable is kept, which is met.
    expect(d(-0.5, -0.3)).toBe(true)
    // Not measured (the GC did not answer) is not met.
    expect(d(50, null)).toBe(false)
  })
})
