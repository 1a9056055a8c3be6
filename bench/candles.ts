/**
 * What candles cost at scenario B's load (issue 14, point 6), each part against a baseline
 * measured in the same run:
 *
 * 1. Bar building: CPU per trade event into `CandleBook` (every trade into 5 intervals, bars
 *    closing as time passes, one drain per 250 ms of market time), against the pipeline's cheapest
 *    observer on the same events (`MarketState.applyAll`). Events: scenario B's 200 codes at
 *    2,000 trades/s of market time, as price_updates with cumulative volume.
 * 2. Delivery: scenario B exactly as `npm run bench` runs it (bench/lib/scenario.ts: the quotecast
 *    bench server, 1,000 connections x 20 stocks over 200 codes, 2,000 trade ticks/s on those
 *    codes, 3 s of warm-up, a 15 s window), against the same with 10% of the connections also
 *    subscribed to `--candle-series` (5) of their stocks' `1m` candles. The variants alternate for
 *    `--rounds` (2) rounds in one run, each with its own server. Reported per variant: msg/s
 *    delivered, price p99, server CPU and CPU per delivered message, the `candle_update` rate
 *    and its p99 (from the update's `timestamp`), the client's CPU and the load average.
 *
 *   npx tsx bench/candles.ts [--events 600000] [--rounds 2] [--candle-series 5] [--out bench/results]
 *
 * The report is printed and written to <out>/candles-<timestamp>.md.
 *
 * Bounded: part 1 stops after its events or 20 s per measurement; each delivery run ends with
 * scenario B's timeline (ramp at most 45 s, subscriptions 15 s, warm-up, window) and is cut at
 * window + warm-up + 150 s whatever happens.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { loadavg as loadavg1 } from "node:os"
import { join } from "node:path"
import { Effect, Option } from "effect"
import { CandleBook } from "../src/candles/CandleBook.js"
import { makeUniverse } from "../src/market/Universe.js"
import { makeMarketState } from "../src/pipeline/MarketState.js"
import { nowIso } from "../src/protocol/encode.js"
import type { MarketEvent } from "../src/protocol/server.js"
import { benchCodeList } from "./lib/codes.js"
import { offeredMsgPerSec, type RunResult, runOne, type Scenario } from "./lib/scenario.js"
import { scenarios } from "./lib/scenarios.js"

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const EVENTS = arg("events", 600_000)
/** Where the report is also written, as candles-<timestamp>.md (`--out`, default bench/results). */
const OUT_DIR = (() => {
  const i = process.argv.indexOf("--out")
  return i >= 0 ? (process.argv[i + 1] ?? "bench/results") : "bench/results"
})()
const report: Array<string> = []
/** A line of the report: printed, and kept for the result file. */
const say = (line: string) => {
  console.log(line)
  report.push(line)
}
const ROUNDS = Math.min(5, Math.max(1, arg("rounds", 2)))
const CANDLE_SERIES = Math.min(20, Math.max(1, arg("candle-series", 5)))
const CODES = 200
const RATE = 2_000

const universe = makeUniverse(Option.none())
const codes = universe.instruments.slice(0, CODES).map((i) => i.code)

// ---- part 1: bar building ----

const events = (() => {
  const start = Date.parse("2026-12-07T00:00:00.000Z") // Monday 09:00 in Seoul
  const volume = new Map<string, number>()
  const out: Array<MarketEvent> = []
  let seed = 7
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
    return seed / 2_147_483_648
  }
  for (let i = 0; i < EVENTS; i++) {
    const code = codes[Math.floor(rand() * codes.length)] as string
    const v = (volume.get(code) ?? 0) + 1 + Math.floor(rand() * 100)
    volume.set(code, v)
    const price = 10_000 + Math.floor(rand() * 100) * 10
    const at = start + Math.floor((i * 1000) / RATE)
    out.push({
      type: "price_update",
      code,
      name: code,
      price,
      change: 0,
      change_percent: 0,
      volume: v,
      timestamp: nowIso(at),
    })
  }
  return out
})()

const cpuMicros = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

const measure = (label: string, run: (batch: ReadonlyArray<MarketEvent>, at: number) => void) => {
  // Groups of 2,000 events: one second of market time, as the pipeline hands them to observers.
  const started = cpuMicros()
  const deadline = Date.now() + 20_000
  let done = 0
  for (let i = 0; i < events.length && Date.now() < deadline; i += RATE) {
    const batch = events.slice(i, i + RATE)
    const last = batch[batch.length - 1]
    run(batch, last !== undefined && "timestamp" in last ? Date.parse(last.timestamp) : 0)
    done += batch.length
  }
  const us = (cpuMicros() - started) / done
  return {
    label,
    events: done,
    usPerEvent: us,
    eventsPerCoreSecond: 1e6 / us,
    coreShareAtB: (us * RATE) / 1e6,
  }
}

const part1 = () => {
  const state = makeMarketState(universe)
  const baseline = measure("baseline: MarketState.applyAll", (batch) => state.applyAll(batch))
  const book = new CandleBook("krx", 30_000)
  let published = 0
  const building = measure("CandleBook: observe + sweep + drain every 250 ms", (batch, at) => {
    // Four passes per second of market time, as CANDLE_UPDATE_INTERVAL_MS=250 gives.
    for (let q = 0; q < 4; q++) {
      book.observe(batch.slice((q * batch.length) / 4, ((q + 1) * batch.length) / 4), at, true)
      book.sweep(at - 750 + q * 250)
      const d = book.drain()
      for (const b of d.closed) JSON.stringify(b.update(true, at))
      for (const b of d.current) JSON.stringify(b.update(false, at))
      published += d.closed.length + d.current.length
    }
  })
  return { baseline, building, candleEventsPerSecond: (published * RATE) / building.events }
}

// ---- part 2: delivery ----

const scenarioB = scenarios.find((s) => s.id === "B")
if (scenarioB === undefined) throw new Error("scenario B is not defined")
const withCandles: Scenario = {
  ...scenarioB,
  title: `${scenarioB.title}, 10% of connections also on ${CANDLE_SERIES} candle series (1m)`,
  candles: { every: 10, series: CANDLE_SERIES, interval: "1m" },
}

const loadavg = () =>
  loadavg1()
    .map((l) => l.toFixed(2))
    .join(" ")

const deliveryRow = (label: string, r: RunResult, load: string) => {
  const cpuUsPerMsg = r.msgPerSec > 0 ? (r.serverCpuPercent / 100) * (1e6 / r.msgPerSec) : Number.NaN
  const c = r.candles
  return `| ${label} | ${r.status === "ok" ? "" : `${r.status}: ${r.note ?? ""} `}${r.connections.established} | ${r.msgPerSec} | ${r.latencyMs.p99} | ${r.serverCpuPercent}% | ${cpuUsPerMsg.toFixed(2)} | ${c === undefined ? "-" : `${c.updatesPerSec} (${c.connections} conns x ${c.targets / Math.max(1, c.connections)})`} | ${c === undefined ? "-" : c.latencyMs.p99} | ${r.client.cpuPercent}% | ${load} |`
}

const part2 = async () => {
  const codes = benchCodeList(scenarioB.codes)
  const rows: Array<string> = []
  for (let round = 1; round <= ROUNDS; round++)
    for (const [label, scenario] of [
      ["B", scenarioB],
      ["B + 10% on candles", withCandles],
    ] as const) {
      const before = loadavg()
      const r = await Effect.runPromise(
        runOne(scenario, { kind: "quotecast" }, codes, (line) => console.error(line)),
      )
      rows.push(deliveryRow(`${label} (round ${round})`, r, `${before} / ${loadavg()}`))
    }
  say(`## Delivery: ${scenarioB.title} (offered ${offeredMsgPerSec(scenarioB)} msg/s)\n`)
  say(
    "| variant | connections | msg/s delivered | price p99 (ms) | server CPU | server CPU µs per delivered msg | candle_update/s | candle_update p99 (ms) | client CPU | load average before / after |",
  )
  say("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for (const row of rows) say(row)
}

const startedAt = new Date().toISOString()
const startLoad = loadavg()

const main = async () => {
  const p1 = part1()
  say("## Bar building (in-process, one core)\n")
  say("| observer | events | µs per event | events per core-second | share of a core at 2,000 trades/s |")
  say("| --- | --- | --- | --- | --- |")
  for (const r of [p1.baseline, p1.building])
    say(
      `| ${r.label} | ${r.events} | ${r.usPerEvent.toFixed(2)} | ${Math.round(r.eventsPerCoreSecond)} | ${(r.coreShareAtB * 100).toFixed(2)}% |`,
    )
  say(`\ncandle_update events published per second of market time: ${Math.round(p1.candleEventsPerSecond)}\n`)

  await part2()
  const stamp = startedAt.replace(/[:.]/g, "-")
  const file = join(OUT_DIR, `candles-${stamp}.md`)
  mkdirSync(OUT_DIR, { recursive: true })
  const command = `npx tsx bench/candles.ts ${process.argv.slice(2).join(" ")}`.trim()
  writeFileSync(
    file,
    [
      `# Candles at scenario B's load, ${startedAt}`,
      "",
      `\`${command}\`, load average at start ${startLoad}`,
      "",
      ...report,
      "",
    ].join("\n"),
  )
  console.error(`results: ${file}`)
}

void main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
