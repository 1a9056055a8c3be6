/**
 * The whole benchmark: the chosen scenarios one after another, each server alone on the machine
 * while it is measured; results as terminal tables, JSON and Markdown.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import { Clock, Effect } from "effect"
import { checksFor, combineRounds } from "./checks.js"
import { clusterChecks, clusterScenario, runCluster } from "./cluster.js"
import { benchCodeList } from "./codes.js"
import {
  type BenchResults,
  type Check,
  type CustomRows,
  markdownReport,
  type Round,
  type ScenarioResult,
  textTable,
} from "./report.js"
import { type RunResult, runOne, type Scenario, type ScenarioId } from "./scenario.js"

export const CAVEATS: ReadonlyArray<string> = [
  "One machine, 2 cores shared with other work: the server under test and the load client (this process) run as separate processes on loopback and compete for the same 2 cores. At 10,000 connections the client's own CPU and event-loop delay are part of every figure (see the JSON's `client` fields); the comparison between servers under the same client is the meaningful part, not the absolute numbers.",
  "Servers are measured one at a time, with the same feed (quotecast's seeded SimulatorEngine, one price_update per trade tick, same codes, same 25 ms grouping), the same subscriptions and the same client.",
  "Latency = client receive time - event timestamp (ms resolution, truncated): it includes batching (30 ms), the server's flush pass, the socket, and the client's event-loop delay.",
  "Connections are opened before the feed starts (100 per 100 ms, 1,000/s), then the feed starts, then a warm-up, then the measurement window.",
  "G (reconnect storm) and H (attack) measure their own way and have their own tables: their notes say what each column is. In G the storm's clients run in a process of their own, so that the observers (in this process) do not count the storm clients' event-loop delay as delivery delay; both processes' lag is reported.",
]

const noteFor = (s: Scenario, runs: ReadonlyArray<RunResult>): Array<string> => {
  const notes: Array<string> = []
  for (const r of runs) {
    if (r.client.eventLoopLagP99Ms > 50)
      notes.push(
        `${r.server}: the load client's event-loop lag p99 was ${r.client.eventLoopLagP99Ms} ms (client CPU ${r.client.cpuPercent}%): latency includes client-side delay.`,
      )
    if (r.feedSkippedPerSec > 0)
      notes.push(
        `${r.server}: its feed produced ${r.feedTicksPerSec} of ${s.feedRate} ticks/s and skipped ${r.feedSkippedPerSec}/s it could not run on time (the server was saturated; offered msg/s is the scenario's, not what this feed produced).`,
      )
    if (r.gaps > 0 && r.kind !== "socketio")
      notes.push(`${r.server}: ${r.gaps} sequence gaps seen by the client.`)
    if (r.connections.failed > 0)
      notes.push(
        `${r.server}: ${r.connections.failed} connections failed: ${JSON.stringify(r.connections.connectErrors)}`,
      )
  }
  if (s.id === "C") notes.push("RSS measured after a full GC in each server (`--expose-gc`), feed stopped.")
  return notes
}

/** A scenario with its own measurement and table (G: reconnect storm, H: attack). */
export interface CustomScenario {
  readonly scenario: Scenario
  /** One round: every server once. Never fails. */
  readonly round: (log: (line: string) => void) => Effect.Effect<{
    readonly table: CustomRows
    readonly checks: ReadonlyArray<Check>
    readonly notes: ReadonlyArray<string>
    readonly data: unknown
  }>
}

export interface BenchOptions {
  readonly scenarios: ReadonlyArray<Scenario>
  /** Run after `scenarios`, before the cluster scenario. */
  readonly custom?: ReadonlyArray<CustomScenario>
  readonly cluster: boolean
  /** Rounds per scenario (default 1): every server once per round, in a rotated order. */
  readonly rounds?: number
  /** Directory for `<stamp>.json` / `<stamp>.md` and `latest.*`; undefined: write nothing. */
  readonly outDir: string | undefined
  readonly log: (line: string) => void
}

/** Round k's server order: `xs` started at position k, so drift over the run hits every server alike. */
export const rotated = <A>(xs: ReadonlyArray<A>, k: number): ReadonlyArray<A> => {
  const at = xs.length === 0 ? 0 : k % xs.length
  return [...xs.slice(at), ...xs.slice(0, at)]
}

/** Runs `roundOf` `rounds` times and combines the rounds' checks. */
const repeated = (
  scenario: Scenario,
  rounds: number,
  log: (line: string) => void,
  roundOf: (k: number) => Effect.Effect<ReadonlyArray<RunResult>>,
  checks: (runs: ReadonlyArray<RunResult>) => ReadonlyArray<Check>,
): Effect.Effect<ScenarioResult> =>
  Effect.gen(function* () {
    const done: Array<Round> = []
    for (let k = 0; k < rounds; k++) {
      if (rounds > 1) log(`  round ${k + 1} of ${rounds}`)
      const runs = yield* roundOf(k)
      done.push({ runs, checks: checks(runs), notes: noteFor(scenario, runs) })
    }
    const result: ScenarioResult = {
      scenario,
      rounds: done,
      checks: combineRounds(done.map((r) => r.checks)),
    }
    log(textTable(result))
    return result
  })

export const runBench = (opts: BenchOptions): Effect.Effect<BenchResults> =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const loadAverageAtStart = os.loadavg()
    const rounds = Math.max(1, Math.floor(opts.rounds ?? 1))
    const out: Array<ScenarioResult> = []
    for (const scenario of opts.scenarios) {
      opts.log(`Scenario ${scenario.id}: ${scenario.title}`)
      const codes = benchCodeList(scenario.codes)
      out.push(
        yield* repeated(
          scenario,
          rounds,
          opts.log,
          (k) =>
            Effect.forEach(rotated(scenario.servers, k), (spec) => runOne(scenario, spec, codes, opts.log)),
          (runs) => checksFor(scenario, runs),
        ),
      )
    }
    for (const c of opts.custom ?? []) {
      opts.log(`Scenario ${c.scenario.id}: ${c.scenario.title}`)
      const done: Array<Round> = []
      for (let k = 0; k < rounds; k++) {
        if (rounds > 1) opts.log(`  round ${k + 1} of ${rounds}`)
        const r = yield* c.round(opts.log)
        done.push({ runs: [], checks: r.checks, notes: r.notes, table: r.table, data: r.data })
      }
      const result: ScenarioResult = {
        scenario: c.scenario,
        rounds: done,
        checks: combineRounds(done.map((r) => r.checks)),
      }
      opts.log(textTable(result))
      out.push(result)
    }
    if (opts.cluster) {
      opts.log(`Scenario F: ${clusterScenario.title}`)
      out.push(yield* repeated(clusterScenario, rounds, opts.log, () => runCluster(opts.log), clusterChecks))
    }
    const ended = yield* Clock.currentTimeMillis
    const cpus = os.cpus()
    const results: BenchResults = {
      startedAt: new Date(started).toISOString(),
      elapsedSec: (ended - started) / 1000,
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? "unknown",
        memoryGb: Math.round(os.totalmem() / 1024 ** 3),
        node: process.version,
        loadAverageAtStart,
      },
      caveats: CAVEATS,
      scenarios: out,
    }
    if (opts.outDir !== undefined) {
      const stamp = results.startedAt.replace(/[:.]/g, "-")
      mkdirSync(opts.outDir, { recursive: true })
      const json = JSON.stringify(results, null, 2)
      const md = markdownReport(results)
      for (const name of [stamp, "latest"]) {
        writeFileSync(join(opts.outDir, `${name}.json`), json)
        writeFileSync(join(opts.outDir, `${name}.md`), md)
      }
      opts.log(`results: ${join(opts.outDir, `${stamp}.{json,md}`)} (and latest.*)`)
    }
    return results
  })

export type { ScenarioId }
