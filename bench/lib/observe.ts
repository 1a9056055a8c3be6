/**
 * Pieces shared by the scenarios that watch a few "observer" connections while something else
 * happens to the server (G: a reconnect storm, H: an attacker): observers that parse every frame
 * for delivery latency, a server's /metrics read, and the environment that lets one load host
 * open thousands of connections to quotecast.
 */
import { Duration, Effect } from "effect"
import { type LatencySummary, LoadStats } from "../../load/lib/index.js"
import { makeBenchPool } from "./clients.js"
import { loadConfigFor, ramp, type Scenario } from "./scenario.js"
import type { BenchServer } from "./server.js"

/**
 * quotecast's per-address limits raised for the benchmark: every load connection comes from
 * 127.0.0.1-8 (the defaults would refuse most of them; what they do is tested in test/).
 */
export const LOAD_HOST_ENV: Record<string, string> = {
  WS_MAX_CONNECTIONS: "50000",
  WS_MAX_CONNECTIONS_PER_ADDRESS: "50000",
  WS_CONNECT_RATE_PER_ADDRESS: "100000",
  WS_CONNECT_BURST_PER_ADDRESS: "100000",
  MAX_ANONYMOUS_SESSIONS_PER_ADDRESS: "100000",
}

export const round1 = (n: number): number => Math.round(n * 10) / 10
export const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10

/** Opens `n` observers (each subscribed to its `subscriptions` codes), every frame parsed. */
export const openObservers = (
  scenario: Scenario,
  server: BenchServer,
  codes: ReadonlyArray<string>,
  n: number,
) =>
  Effect.gen(function* () {
    const stats = new LoadStats()
    const config = { ...loadConfigFor({ ...scenario, connections: n }, server.wsUrl, codes), sample: 1 }
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => makeBenchPool("quotecast", config, stats)),
      (p) => p.closeAll(Duration.seconds(5)),
    )
    yield* ramp(pool, stats, n)
    return { pool, stats }
  })

/** Delivery latency over a window of `sec` seconds. */
export const latencyOver = (stats: LoadStats, sec: number) =>
  Effect.gen(function* () {
    stats.latency.reset()
    stats.startWindow(Date.now())
    yield* Effect.sleep(Duration.seconds(sec))
    stats.endWindow(Date.now())
    const summary: LatencySummary = stats.latency.summary()
    stats.latency.reset()
    return summary
  })

/** One metric of a quotecast server (summed over labels), undefined when unavailable. */
export const readMetric = (server: BenchServer, name: string) =>
  Effect.tryPromise(async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, {
      signal: AbortSignal.timeout(15_000),
    })
    const lines = (await res.text())
      .split("\n")
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    return lines.length === 0 ? undefined : lines.reduce((s, l) => s + Number(l.split(" ").at(-1)), 0)
  }).pipe(Effect.orElseSucceed(() => undefined))
