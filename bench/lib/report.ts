/**
 * Results as tables: one per scenario, one row per server, the ratios quotecast / baseline, and
 * the scenario's targets checked against what was measured (benchmark figures, not assertions).
 */
import type { RunResult, Scenario } from "./scenario.js"

/** A target checked against what was measured: whether it held (undefined: not measurable). */
export interface Check {
  readonly target: string
  readonly met: boolean | undefined
  readonly detail: string
}

/** A scenario's own table (G, H), in place of the throughput table. */
export interface CustomRows {
  readonly header: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

/** Every server of the scenario once, one after another, compared with each other. */
export interface Round {
  readonly runs: ReadonlyArray<RunResult>
  readonly checks: ReadonlyArray<Check>
  readonly notes: ReadonlyArray<string>
  /** Scenarios with their own measurements (G, H): their table, and their results for the JSON. */
  readonly table?: CustomRows
  readonly data?: unknown
}

export interface ScenarioResult {
  readonly scenario: Scenario
  /** One round by default; `--rounds N` repeats the scenario (see `combineRounds`). */
  readonly rounds: ReadonlyArray<Round>
  /** The targets over all rounds (for one round, that round's checks). */
  readonly checks: ReadonlyArray<Check>
}

export interface BenchResults {
  readonly startedAt: string
  readonly elapsedSec: number
  readonly machine: {
    readonly cpus: number
    readonly cpuModel: string
    readonly memoryGb: number
    readonly node: string
    readonly loadAverageAtStart: ReadonlyArray<number>
  }
  readonly caveats: ReadonlyArray<string>
  readonly scenarios: ReadonlyArray<ScenarioResult>
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US")
const ms = (n: number): string => (n >= 100 ? fmt(n) : n.toFixed(1))
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : "-")

const HEADER = [
  "server",
  "conns",
  "offered msg/s",
  "feed ticks/s",
  "delivered msg/s",
  "frames/s",
  "msg/frame",
  "p50 ms",
  "p99 ms",
  "p999 ms",
  "server CPU %",
  "RSS MB (peak)",
  "RSS/conn KB",
  "after GC KB",
  "live KB",
  "setup CPU µs/conn",
  "stale conns",
  "quotecast/this msg/s",
  "quotecast/this p99",
  "note",
]

const row = (r: RunResult, q: RunResult | undefined, label: string): ReadonlyArray<string> => [
  label,
  `${fmt(r.connections.established)}/${fmt(r.connections.target)}`,
  fmt(r.offeredMsgPerSec),
  r.feedTicksPerSec > 0 || r.feedSkippedPerSec > 0 ? fmt(r.feedTicksPerSec) : "-",
  fmt(r.msgPerSec),
  fmt(r.framesPerSec),
  r.msgPerFrame.toFixed(1),
  ms(r.latencyMs.p50),
  ms(r.latencyMs.p99),
  ms(r.latencyMs.p999),
  r.serverCpuPercent.toFixed(0),
  `${r.serverRssMb.toFixed(0)} (${r.serverRssPeakMb.toFixed(0)})`,
  r.rssPerConnKb.toFixed(1),
  r.rssPerConnAfterGcKb === null ? "-" : r.rssPerConnAfterGcKb.toFixed(1),
  r.livePerConnAfterGcKb === null ? "-" : r.livePerConnAfterGcKb.toFixed(1),
  r.setupCpuUsPerConn === null ? "-" : fmt(r.setupCpuUsPerConn),
  fmt(r.staleConnections),
  q === undefined || q === r ? "" : ratio(q.msgPerSec, r.msgPerSec),
  q === undefined || q === r ? "" : ratio(q.latencyMs.p99, r.latencyMs.p99),
  [
    r.status === "ok" ? "" : r.status,
    r.note ?? "",
    r.connections.dropped > 0 ? `${r.connections.dropped} dropped` : "",
  ]
    .filter((s) => s !== "")
    .join("; "),
]

const quotecastRun = (round: Round): RunResult | undefined => round.runs.find((r) => r.kind === "quotecast")

/** Every run of the scenario as table cells, each compared with the quotecast run of its own round. */
const rowsOf = (s: ScenarioResult): Array<ReadonlyArray<string>> =>
  s.rounds.flatMap((round, i) => {
    if (round.table !== undefined)
      return round.table.rows.map((r) =>
        s.rounds.length > 1 ? [`${r[0] ?? ""} (round ${i + 1})`, ...r.slice(1)] : r,
      )
    const q = quotecastRun(round)
    return round.runs.map((r) => row(r, q, s.rounds.length > 1 ? `${r.server} (round ${i + 1})` : r.server))
  })

const notesOf = (s: ScenarioResult): Array<string> =>
  s.rounds.flatMap((round, i) => round.notes.map((n) => (s.rounds.length > 1 ? `round ${i + 1}: ${n}` : n)))

const headerOf = (s: ScenarioResult): ReadonlyArray<string> => s.rounds[0]?.table?.header ?? HEADER

export const markdownTable = (s: ScenarioResult): string =>
  [
    `| ${headerOf(s).join(" | ")} |`,
    `| ${headerOf(s)
      .map(() => "---")
      .join(" | ")} |`,
    ...rowsOf(s).map((r) => `| ${r.join(" | ")} |`),
  ].join("\n")

const checksText = (s: ScenarioResult): Array<string> =>
  s.checks.map(
    (c) => `- ${c.met === undefined ? "NOT MEASURED" : c.met ? "MET" : "NOT MET"}: ${c.target} (${c.detail})`,
  )

/** Plain-text table for the terminal. */
export const textTable = (s: ScenarioResult): string => {
  const header = headerOf(s)
  const rows = [header, ...rowsOf(s)]
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) =>
    r
      .map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
  return [
    `Scenario ${s.scenario.id}: ${s.scenario.title}`,
    ...rows.map(line),
    ...checksText(s),
    ...notesOf(s).map((n) => `  note: ${n}`),
  ].join("\n")
}

export const markdownReport = (results: BenchResults): string =>
  [
    `# quotecast benchmark results`,
    "",
    `Run ${results.startedAt}, ${results.elapsedSec.toFixed(0)} s, \`npm run bench\`. Machine: ${results.machine.cpus} x ${results.machine.cpuModel}, ${results.machine.memoryGb} GB, Node ${results.machine.node}, load average at start ${results.machine.loadAverageAtStart.map((n) => n.toFixed(2)).join(" ")}.`,
    "",
    ...results.caveats.map((c) => `- ${c}`),
    "",
    "Columns: offered msg/s = the scenario's feed rate x subscribers per code; feed ticks/s = trade ticks the server's own feed produced per second over the window (it skips ticks it could not run on time instead of bunching them, so below the scenario's rate means the server fell behind); delivered msg/s and frames/s counted by the load client over the measurement window; latency = client receive time - the event's `timestamp` (sampled 1 frame in 20); server CPU in % of one core over the window; RSS at the end of the window (peak in parentheses); RSS/conn = (RSS at the end of the window - RSS before any connection) / connections; after GC = the same after the window once the server's feed is stopped, its queues drained (1 s) and a full GC run (what it retains per connection, without the load's garbage); live KB = at the same moment, the server's live memory per connection (JS heap in use + external memory such as Buffers and zlib state, minus the same before any connection): what it holds for its connections, without the heap V8 keeps committed after a load; setup CPU = the server's CPU time from before the ramp until every subscription was answered, per connection (opening it, the handshake, and answering its subscribe with snapshots: what a reconnect storm costs per client); stale conns = open connections that received nothing in the window's last 3 s.",
    "",
    ...results.scenarios.flatMap((s) => [
      `## Scenario ${s.scenario.id}: ${s.scenario.title}`,
      "",
      `Targets: ${s.scenario.targets}. Window ${s.scenario.windowSec} s after ${s.scenario.warmupSec} s of warm-up.${s.rounds.length > 1 ? ` ${s.rounds.length} rounds (servers that run one after another start one position later each round); a target is met when it is met in most rounds.` : ""}`,
      "",
      markdownTable(s),
      "",
      ...checksText(s),
      ...notesOf(s).map((n) => `- ${n}`),
      "",
    ]),
  ].join("\n")
