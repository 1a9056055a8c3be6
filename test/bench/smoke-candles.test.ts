/**
 * The candle subscription of the benchmark's load client (bench/candles.ts): which connections
 * take it and what they ask for, and a tiny scenario whose candle connections are answered and
 * receive `candle_update`s. Asserts only that it ran and counted; figures belong in
 * docs/performance.md, never in npm test.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { type CandleLoad, candleTargets, isCandleConnection } from "../../bench/lib/clients.js"
import { benchCodeList } from "../../bench/lib/codes.js"
import { runOne } from "../../bench/lib/scenario.js"
import { smokeScenario } from "../../bench/lib/scenarios.js"
import { codesFor } from "../../load/lib/index.js"

const load: CandleLoad = { every: 10, series: 5, interval: "1m" }

describe("bench client: candle subscription", () => {
  it("takes one connection in ten, spread over every group of codes", () => {
    const codes = benchCodeList(200)
    const picked = Array.from({ length: 1_000 }, (_, i) => i).filter((i) => isCandleConnection(load, i))
    expect(picked).toHaveLength(100)
    const firstCodes = new Set(picked.map((i) => codesFor(codes, 20, i)[0]))
    expect(firstCodes.size).toBe(10)
    const series = new Set(picked.flatMap((i) => candleTargets(load, codesFor(codes, 20, i), i)))
    expect(series.size).toBe(200)
    for (const i of picked) {
      const own = new Set(codesFor(codes, 20, i))
      const targets = candleTargets(load, codesFor(codes, 20, i), i)
      expect(targets).toHaveLength(5)
      for (const t of targets) {
        const [code, interval] = t.split(":")
        expect(interval).toBe("1m")
        expect(own.has(code as string)).toBe(true)
      }
    }
  })

  it("a small scenario's candle connections are answered and receive candle_update", {
    timeout: 90_000,
  }, async () => {
    const scenario = { ...smokeScenario, candles: { every: 10, series: 2, interval: "1m" } as const }
    const run = await Effect.runPromise(
      runOne(scenario, { kind: "quotecast" }, benchCodeList(scenario.codes), () => {}),
    )
    expect(run.status, run.note).toBe("ok")
    expect(run.connections.established).toBe(scenario.connections)
    expect(run.msgPerSec).toBeGreaterThan(0)
    expect(run.errors).toEqual({})
    expect(run.candles?.connections).toBe(2)
    expect(run.candles?.targets).toBe(4)
    expect(run.candles?.updatesPerSec).toBeGreaterThan(0)
  })
})
