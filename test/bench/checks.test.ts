/**
 * The benchmark's target checks (reported, never asserted in npm test): what counts as met.
 */
import { describe, expect, it } from "vitest"
import { rotated } from "../../bench/lib/bench.js"
import { checksFor, combineRounds } from "../../bench/lib/checks.js"
import type { Check } from "../../bench/lib/report.js"
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

  it("C: judged against the floor (bare ws + Effect fiber), live memory and RSS after GC each with its own ratio", () => {
    const c = scenario("C")
    const server = (kind: RunResult["kind"], rssAfterGc: number, live: number): RunResult => ({
      ...run("C", { rssPerConnKb: 99, rssPerConnAfterGcKb: rssAfterGc, livePerConnAfterGcKb: live }),
      kind,
      server: kind,
    })
    const [live, rss] = checksFor(c, [
      server("quotecast", 10.0, 8.8),
      server("ws", 5.6, 3.5),
      server("ws-fiber", 7.5, 7.7),
    ])
    expect(live?.target).toBe("live memory per connection <= 1.15 x bare ws + Effect fiber")
    expect(live?.met).toBe(true)
    expect(live?.detail).toBe("live 8.8 KB vs 7.7 KB: 1.14x; bare ws 3.5 KB live, 5.6 KB RSS")
    expect(rss?.target).toBe("RSS per connection after GC <= 1.3 x bare ws + Effect fiber")
    expect(rss?.met).toBe(false)
    expect(rss?.detail).toBe("RSS after GC 10.0 KB vs 7.5 KB: 1.33x; bare ws 3.5 KB live, 5.6 KB RSS")
    // Over the live ratio, within the RSS one.
    const [over, within] = checksFor(c, [server("quotecast", 9.0, 9.0), server("ws-fiber", 7.5, 7.7)])
    expect(over?.met).toBe(false)
    expect(over?.detail).toBe("live 9.0 KB vs 7.7 KB: 1.17x")
    expect(within?.met).toBe(true)
    // Without the floor run nothing is judged; the under-load RSS is not what is compared.
    const alone = checksFor(c, [server("quotecast", 9.0, 9.0), server("ws", 5.6, 3.5)])
    expect(alone.map((x) => x.met)).toEqual([undefined, undefined])
  })

  describe("over several rounds (--rounds N)", () => {
    const p99 = (met: boolean | undefined, detail: string): Check => ({
      target: "p99 <= 1.2 x bare ws",
      met,
      detail,
    })
    const combined = (...rounds: Array<Check | undefined>) =>
      combineRounds(rounds.map((c) => (c === undefined ? [] : [c])))[0]

    it("a target is met when it is met in most rounds, and the detail shows every round", () => {
      const c = combined(p99(true, "1.02x"), p99(false, "1.55x"), p99(true, "1.16x"))
      expect(c?.met).toBe(true)
      expect(c?.detail).toBe("met in 2 of 3 rounds: round 1 1.02x; round 2 1.55x; round 3 1.16x")
      expect(combined(p99(false, "1.3x"), p99(true, "1.0x"), p99(false, "1.4x"))?.met).toBe(false)
    })

    it("half is not most", () => {
      expect(combined(p99(true, "1.0x"), p99(false, "1.3x"))?.met).toBe(false)
    })

    it("a round where the target was not measured, or not run, counts against it", () => {
      expect(combined(p99(true, "1.0x"), p99(undefined, "no baseline"), p99(false, "1.3x"))?.met).toBe(false)
      const c = combined(p99(true, "1.0x"), undefined, p99(true, "1.1x"))
      expect(c?.met).toBe(true)
      expect(c?.detail).toContain("round 2 not run")
      expect(combined(p99(undefined, "no baseline"), p99(undefined, "no baseline"))?.met).toBeUndefined()
    })

    it("one round is that round's verdict", () => {
      const only = [p99(false, "1.55x")]
      expect(combineRounds([only])).toEqual(only)
    })

    it("each round starts the servers at the next position", () => {
      const servers = ["quotecast", "ws", "socketio"]
      expect([0, 1, 2, 3].map((k) => rotated(servers, k))).toEqual([
        ["quotecast", "ws", "socketio"],
        ["ws", "socketio", "quotecast"],
        ["socketio", "quotecast", "ws"],
        ["quotecast", "ws", "socketio"],
      ])
    })
  })
})
