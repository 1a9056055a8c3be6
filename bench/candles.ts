/**
 * What candles cost at scenario B's load (issue 14, point 6), each part against a baseline
 * measured in the same run:
 *
 * 1. Bar building: CPU per trade event into `CandleBook` (every trade into 5 intervals, bars
 *    closing as time passes, one drain per 250 ms of market time), against the pipeline's cheapest
 *    observer on the same events (`MarketState.applyAll`). Events: scenario B's 200 codes at
 *    2,000 trades/s of market time, as price_updates with cumulative volume.
 * 2. Delivery: a gateway process (src/main.ts, embedded, FEED=simulator FEED_RATE=2000
 *    FEED_BOOKS=off) with 1,000 connections x 20 stock subscriptions over 200 codes; then the
 *    same with 10% of the connections also subscribed to 20 `code:1m` candle series. Client-side
 *    messages/s and price latency p99, server CPU over the window.
 *
 *   flock /work/brief/bench.lock npx tsx bench/candles.ts [--events 600000] [--window 10] [--connections 1000]
 *
 * Bounded: part 1 stops after its events or 20 s per measurement; part 2 after ramp (60 s at
 * most), 3 s of warm-up and `--window` seconds per variant, then the server is stopped.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { Option } from "effect"
import WebSocket from "ws"
import { CandleBook } from "../src/candles/CandleBook.js"
import { makeUniverse } from "../src/market/Universe.js"
import { makeMarketState } from "../src/pipeline/MarketState.js"
import { nowIso } from "../src/protocol/encode.js"
import type { MarketEvent } from "../src/protocol/server.js"

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const EVENTS = arg("events", 600_000)
const WINDOW_S = arg("window", 10)
const CONNECTIONS = arg("connections", 1_000)
const CODES = 200
const RATE = 2_000
const SUBS = 20

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

interface Delivery {
  readonly label: string
  readonly msgPerSec: number
  readonly candleMsgPerSec: number
  readonly p99Ms: number
  readonly serverCpuPercent: number
}

const procCpuTicks = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
  return Number(fields[11]) + Number(fields[12]) // utime + stime, in clock ticks (100/s)
}

const startServer = (): Promise<{ child: ChildProcess; port: number }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: "0",
        FEED: "simulator",
        FEED_RATE: String(RATE),
        FEED_BOOKS: "off",
        LOG_LEVEL: "info",
        WS_MAX_CONNECTIONS_PER_ADDRESS: "100000",
        WS_CONNECT_RATE_PER_ADDRESS: "100000",
        WS_CONNECT_BURST_PER_ADDRESS: "100000",
        TCP_MAX_CONNECTIONS_PER_ADDRESS: "100000",
        WS_MAX_CONNECTIONS: "100000",
        // The ramp runs while the simulator trades: a setup may wait long on a busy machine.
        ADMISSION_WAIT_MS: "60000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let out = ""
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out.slice(-2000)}`)), 60_000)
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /quotecast listening.*port=(\d+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ child, port: Number(m[1]) })
      }
    })
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString()
    })
  })

interface Run {
  readonly messages: () => number
  readonly candles: () => number
  readonly latencies: Array<number>
  readonly sockets: Array<WebSocket>
}

const deliver = async (port: number, candleShare: number): Promise<Run> => {
  let messages = 0
  let candleMessages = 0
  let frames = 0
  const latencies: Array<number> = []
  const sockets: Array<WebSocket> = []
  const open = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`)
      sockets.push(ws)
      const mine = Array.from({ length: SUBS }, (_, k) => codes[(i * 7 + k * 11) % CODES] as string)
      ws.on("open", () => {
        ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: mine }))
        if (i < CONNECTIONS * candleShare)
          ws.send(
            JSON.stringify({
              type: "subscribe",
              subscription_type: "candle",
              targets: mine.map((c) => `${c}:1m`),
            }),
          )
        resolve()
      })
      ws.on("error", reject)
      ws.on("message", (data: Buffer) => {
        frames++
        const text = data.toString()
        const batch = /^\{"type":"batch","batch_size":(\d+)/.exec(text)
        messages += batch === null ? 1 : Number(batch[1])
        candleMessages += text.split('"type":"candle_update"').length - 1
        // One frame in 50 parsed for price latency.
        if (frames % 50 !== 0) return
        const now = Date.now()
        for (const m of text.matchAll(/"type":"price_update"[^}]*?"timestamp":"([^"]+)"/g))
          latencies.push(now - Date.parse(m[1] as string))
      })
    })
  for (let i = 0; i < CONNECTIONS; i += 50)
    await Promise.all(Array.from({ length: Math.min(50, CONNECTIONS - i) }, (_, k) => open(i + k)))
  await new Promise((r) => setTimeout(r, 3_000))
  messages = 0
  candleMessages = 0
  latencies.length = 0
  return { messages: () => messages, candles: () => candleMessages, latencies, sockets }
}

const measureWindow = async (pid: number, label: string, run: Run): Promise<Delivery> => {
  const t0 = Date.now()
  const c0 = procCpuTicks(pid)
  await new Promise((r) => setTimeout(r, WINDOW_S * 1000))
  const seconds = (Date.now() - t0) / 1000
  const cpu = ((procCpuTicks(pid) - c0) / 100 / seconds) * 100
  const sorted = [...run.latencies].sort((a, b) => a - b)
  const result = {
    label,
    msgPerSec: Math.round(run.messages() / seconds),
    candleMsgPerSec: Math.round(run.candles() / seconds),
    p99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? Number.NaN,
    serverCpuPercent: Math.round(cpu),
  }
  for (const ws of run.sockets) ws.terminate()
  await new Promise((r) => setTimeout(r, 2_000))
  return result
}

const main = async () => {
  const p1 = part1()
  console.log("## Bar building (in-process, one core)\n")
  console.log(
    "| observer | events | µs per event | events per core-second | share of a core at 2,000 trades/s |",
  )
  console.log("| --- | --- | --- | --- | --- |")
  for (const r of [p1.baseline, p1.building])
    console.log(
      `| ${r.label} | ${r.events} | ${r.usPerEvent.toFixed(2)} | ${Math.round(r.eventsPerCoreSecond)} | ${(r.coreShareAtB * 100).toFixed(2)}% |`,
    )
  console.log(
    `\ncandle_update events published per second of market time: ${Math.round(p1.candleEventsPerSecond)}\n`,
  )

  const { child, port } = await startServer()
  try {
    const pid = child.pid
    if (pid === undefined) throw new Error("no server pid")
    const results: Array<Delivery> = []
    for (const [label, share] of [
      ["no candle subscriptions", 0],
      ["10% of connections on 20 candle series", 0.1],
      ["no candle subscriptions (again)", 0],
    ] as const) {
      const run = await deliver(port, share)
      results.push(await measureWindow(pid, label, run))
    }
    console.log(
      `## Delivery: ${CONNECTIONS} connections x ${SUBS} stocks over ${CODES} codes, simulator at ${RATE} trades/s\n`,
    )
    console.log(
      "| variant | msg/s received | of them candle_update | price p99 (ms, 1 frame in 50) | server CPU % |",
    )
    console.log("| --- | --- | --- | --- | --- |")
    for (const r of results)
      console.log(
        `| ${r.label} | ${r.msgPerSec} | ${r.candleMsgPerSec} | ${r.p99Ms} | ${r.serverCpuPercent} |`,
      )
  } finally {
    child.kill("SIGTERM")
  }
}

void main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
