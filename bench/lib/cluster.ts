/**
 * Scenario F: two quotecast instances over Redis at scenario B's load. Instance 1 runs the
 * benchmark feed; instance 2 has none (BENCH_FEED=off) and gets every event through Redis.
 * Half of the connections go to each, in the same run, so the difference between the two
 * halves' p99 is what the Redis hop adds, under identical conditions.
 *
 * Needs `redis-server` on PATH (started here on a free loopback port, no persistence) and
 * quotecast's cluster mode (REDIS_URL set). When either is missing the scenario is reported as
 * not measured, with the reason.
 */
import { spawn } from "node:child_process"
import { connect, createServer } from "node:net"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Clock, Data, Duration, Effect, type Scope } from "effect"
import { LoadStats } from "../../load/lib/index.js"
import { makeBenchPool } from "./clients.js"
import { benchCodeList } from "./codes.js"
import {
  failedResult,
  loadConfigFor,
  offeredMsgPerSec,
  type RunResult,
  ramp,
  resultOf,
  type Scenario,
  serverEnv,
} from "./scenario.js"
import { startServer } from "./server.js"

export class RedisStartError extends Data.TaggedError("RedisStartError")<{ readonly reason: string }> {}

export const clusterScenario: Scenario = {
  id: "F",
  title: "Cluster: two instances over Redis, scenario B's load (500 connections on each)",
  connections: 1_000,
  subscriptions: 20,
  codes: 200,
  feedRate: 2_000,
  compression: false,
  servers: [{ kind: "quotecast" }],
  warmupSec: 3,
  windowSec: 15,
  rssKillBytes: 3 * 1024 ** 3,
  targets: "p99 added by the Redis hop (instance 2 p99 - instance 1 p99) <= 10 ms",
}

const freePort = Effect.async<number, RedisStartError>((resume) => {
  const srv = createServer()
  srv.once("error", (e) => resume(Effect.fail(new RedisStartError({ reason: String(e) }))))
  srv.listen(0, "127.0.0.1", () => {
    const a = srv.address()
    const port = typeof a === "object" && a !== null ? a.port : 0
    srv.close(() => resume(Effect.succeed(port)))
  })
})

/** A throwaway redis-server (no persistence), stopped with the scope. */
const startRedis: Effect.Effect<string, RedisStartError, Scope.Scope> = Effect.gen(function* () {
  const port = yield* freePort
  const child = yield* Effect.acquireRelease(
    Effect.try({
      try: () =>
        spawn(
          "redis-server",
          ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
          {
            stdio: "ignore",
          },
        ),
      catch: (e) => new RedisStartError({ reason: String(e) }),
    }),
    (c) => Effect.sync(() => c.kill("SIGKILL")),
  )
  yield* Effect.async<void, RedisStartError>((resume) => {
    child.once("error", (e) =>
      resume(Effect.fail(new RedisStartError({ reason: `redis-server: ${e.message}` }))),
    )
    child.once("spawn", () => resume(Effect.void))
  })
  // Wait for it to accept connections.
  yield* Effect.async<void, RedisStartError>((resume) => {
    const attempt = (left: number) => {
      const s = connect(port, "127.0.0.1")
      s.once("connect", () => {
        s.destroy()
        resume(Effect.void)
      })
      s.once("error", () => {
        s.destroy()
        if (left <= 0)
          resume(Effect.fail(new RedisStartError({ reason: "redis-server did not accept connections" })))
        else setTimeout(() => attempt(left - 1), 100)
      })
    }
    attempt(50)
  })
  return `redis://127.0.0.1:${port}`
})

/** Runs F. Never fails: a missing prerequisite is a "failed" result naming it. */
export const runCluster = (log: (line: string) => void): Effect.Effect<ReadonlyArray<RunResult>> => {
  const s = clusterScenario
  const half = s.connections / 2
  const half1: Scenario = { ...s, connections: half }
  return Effect.scoped(
    Effect.gen(function* () {
      const redisUrl = yield* startRedis
      const env = { ...serverEnv(s), REDIS_URL: redisUrl }
      const a = yield* startServer("quotecast", env, "quotecast #1 (feed)")
      const b = yield* startServer("quotecast", { ...env, BENCH_FEED: "off" }, "quotecast #2 (via Redis)")
      const codes = benchCodeList(s.codes)
      const statsA = new LoadStats()
      const statsB = new LoadStats()
      const cfgA = loadConfigFor(half1, a.wsUrl, codes)
      const cfgB = loadConfigFor(half1, b.wsUrl, codes)
      const poolA = yield* Effect.acquireRelease(
        Effect.sync(() => makeBenchPool("quotecast", cfgA, statsA)),
        (p) => p.closeAll("5 seconds"),
      )
      const poolB = yield* Effect.acquireRelease(
        Effect.sync(() => makeBenchPool("quotecast", cfgB, statsB)),
        (p) => p.closeAll("5 seconds"),
      )
      yield* Effect.all([a.command("gc"), b.command("gc")])
      const baseA = a.sample()
      const baseB = b.sample()
      log(`  cluster: ramping ${half} + ${half} connections`)
      // Connection i on each instance gets the codes of connection i (both halves cover all codes).
      yield* ramp(poolA, statsA, half)
      yield* ramp(poolB, statsB, half)
      yield* Effect.sleep("2 seconds")
      yield* Effect.all([a.command("start-feed"), b.command("start-feed")])
      yield* Effect.sleep(Duration.seconds(s.warmupSec))
      const lag = monitorEventLoopDelay({ resolution: 10 })
      lag.enable()
      const cpu0 = process.cpuUsage()
      const feed0 = yield* a.feedCounters
      const a0 = a.sample()
      const b0 = b.sample()
      const t0 = yield* Clock.currentTimeMillis
      statsA.startWindow(t0)
      statsB.startWindow(t0)
      yield* Effect.sleep(Duration.seconds(s.windowSec))
      const t1 = yield* Clock.currentTimeMillis
      statsA.endWindow(t1)
      statsB.endWindow(t1)
      const a1 = a.sample()
      const b1 = b.sample()
      const feed1 = yield* a.feedCounters
      const cpu = process.cpuUsage(cpu0)
      lag.disable()
      const windowSec = (t1 - t0) / 1000
      const client = {
        cpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / windowSec) * 1000) / 10,
        eventLoopLagP99Ms: Math.round(Math.max(0, lag.percentile(99) / 1e6 - 10) * 10) / 10,
        rssMb: Math.round(process.memoryUsage().rss / 1e5) / 10,
      }
      const common = { windowSec, killed: undefined, client }
      const ra = resultOf(half1, { kind: "quotecast" }, a.name, statsA, {
        ...common,
        base: baseA,
        s0: a0,
        s1: a1,
        peak: a1?.rssBytes ?? 0,
        stale: poolA.staleSince(t1 - 3000),
        // The one feed of the cluster runs on instance 1.
        feed: feed0 !== undefined && feed1 !== undefined ? { start: feed0, end: feed1 } : undefined,
      })
      const rb = resultOf(half1, { kind: "quotecast" }, b.name, statsB, {
        ...common,
        base: baseB,
        s0: b0,
        s1: b1,
        peak: b1?.rssBytes ?? 0,
        stale: poolB.staleSince(t1 - 3000),
      })
      log(`  cluster: #1 p99 ${ra.latencyMs.p99} ms, #2 p99 ${rb.latencyMs.p99} ms`)
      return [
        { ...ra, scenario: "F" as const },
        { ...rb, scenario: "F" as const },
      ]
    }),
  ).pipe(
    Effect.timeout(Duration.seconds(180)),
    Effect.catchAll((e) => {
      const reason =
        e._tag === "TimeoutException"
          ? "run timed out"
          : "reason" in e
            ? `${e._tag}: ${String(e.reason).split("\n").slice(0, 3).join(" ").slice(0, 300)}`
            : e._tag
      log(`  cluster: not measured (${reason})`)
      return Effect.succeed([failedResult(s, "quotecast", "quotecast cluster", reason)])
    }),
  )
}

export const clusterChecks = (runs: ReadonlyArray<RunResult>) => {
  const [a, b] = runs
  if (a === undefined || b === undefined || a.status !== "ok" || b.status !== "ok")
    return [
      {
        target: "p99 added by the Redis hop <= 10 ms",
        met: undefined,
        detail: runs[0]?.note ?? "cluster run failed",
      },
    ]
  const added = b.latencyMs.p99 - a.latencyMs.p99
  return [
    {
      target: "p99 added by the Redis hop <= 10 ms",
      met: added <= 10 && b.msgPerSec >= 0.8 * offeredMsgPerSec({ ...clusterScenario, connections: 500 }),
      detail: `#2 p99 ${b.latencyMs.p99.toFixed(1)} ms - #1 p99 ${a.latencyMs.p99.toFixed(1)} ms = ${added.toFixed(1)} ms; #2 delivered ${b.msgPerSec} msg/s`,
    },
  ]
}
