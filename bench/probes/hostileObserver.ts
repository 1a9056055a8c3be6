/**
 * Ad-hoc probe (not part of `npm run bench`): the delay an observer client sees on ping/pong
 * round trips while one attacker sends worst-case frames at its message rate (RATE_LIMIT,
 * 100 a second by default), reconnecting whenever it is closed. The gateway runs in its own
 * process, started from the source tree given as ROOT (default: this checkout), so the same
 * probe measures an older tree too. Bounded: DURATION_S seconds (default 15).
 *
 *   node --import tsx bench/probes/hostileObserver.ts [numbers|nested|keys|none]
 *   ROOT=/path/to/old/checkout node --import tsx bench/probes/hostileObserver.ts numbers
 *
 * Frames: `numbers` a 64 KB subscribe of 32,000 numbers (the issue's); `nested` a valid 64 KB
 * ping whose extra field holds 32,000 numbers in arrays of 100 (within every shape limit, so
 * parsed in full); `keys` a 64 KB ping with 6,500 distinct extra keys; `none` no attacker.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import WebSocket from "ws"
import { SERVER_NODE_FLAGS } from "../../scripts/nodeFlags.js"

const kind = process.argv[2] ?? "numbers"
const root = resolve(process.env.ROOT ?? ".")
const durationS = Number(process.env.DURATION_S ?? 15)
const ratePerS = Number(process.env.ATTACK_RATE ?? 100)
const pingEveryMs = 20
/** ATTACK_DEFLATE=off: the attacker does not negotiate permessage-deflate (its frames arrive uncompressed). */
const attackDeflate = process.env.ATTACK_DEFLATE !== "off"

const SIZE = 64 * 1024
const hundredZeros = `[0${",0".repeat(99)}]`
const frames: Record<string, string> = {
  numbers: `{"type":"subscribe","subscription_type":"stock","targets":[0${",0".repeat((SIZE - 64) / 2)}]}`,
  // 100 rows of 3 arrays of 100 zeros: 4 deep, 100 items at most per array, about 61 KB.
  nested: `{"type":"ping","x":[${Array.from({ length: 100 }, () => `[${hundredZeros},${hundredZeros},${hundredZeros}]`).join(",")}]}`,
  keys: `{"type":"ping",${Array.from({ length: 6500 }, (_, i) => `"k${i}":1`).join(",")}}`,
}

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux). */
const cpuMsOf = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name; in clock ticks (100 a second).
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const startServer = async () => {
  // PROBE_CPU_PROF=<dir>: the gateway writes a CPU profile there when it exits (SIGTERM at the end).
  const prof = process.env.PROBE_CPU_PROF
  const args = prof === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${prof}`]
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...args, "--import", "tsx", "src/main.ts"], {
    cwd: root,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", FEED: "none", LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let text = ""
  child.stdout.on("data", (d) => {
    text += d
  })
  child.stderr.on("data", (d) => {
    text += d
  })
  const end = Date.now() + 30_000
  for (;;) {
    const m = /quotecast listening.*port=(\d+)/.exec(text)
    if (m) return { child, port: Number(m[1]) }
    if (child.exitCode !== null || Date.now() > end) throw new Error(`gateway did not start: ${text}`)
    await sleep(50)
  }
}

const open = (url: string, perMessageDeflate = true) =>
  new Promise<WebSocket>((res, rej) => {
    const ws = new WebSocket(url, { perMessageDeflate })
    ws.once("open", () => res(ws))
    ws.once("error", rej)
  })

const main = async () => {
  const { child, port } = await startServer()
  const url = `ws://127.0.0.1:${port}/v1/ws`
  const frame = frames[kind]
  const rtts: Array<number> = []
  let attackerCloses = 0
  let attackerFrames = 0
  const attackerAnswers = new Map<string, number>()
  let stop = false

  const observer = await open(url)
  observer.on("message", (d) => {
    const m = JSON.parse(d.toString())
    for (const x of m.type === "batch" ? m.messages : [m])
      if (x.type === "pong" && typeof x.id === "number") rtts.push(performance.now() - x.id)
  })

  const attack = async () => {
    while (!stop) {
      const ws = await open(url, attackDeflate)
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString())
        for (const x of m.type === "batch" ? m.messages : [m]) {
          const k = x.type === "error" ? x.code : x.type
          attackerAnswers.set(k, (attackerAnswers.get(k) ?? 0) + 1)
        }
      })
      const closed = new Promise<void>((r) => ws.once("close", () => r()))
      const start = performance.now()
      let n = 0
      while (!stop && ws.readyState === WebSocket.OPEN) {
        // Paced by absolute schedule: `ratePerS` frames a second.
        const due = start + (n * 1000) / ratePerS
        const wait = due - performance.now()
        if (wait > 0) await sleep(wait)
        if (ws.readyState !== WebSocket.OPEN) break
        ws.send(frame as string)
        attackerFrames++
        n++
      }
      if (!stop) attackerCloses++
      ws.terminate()
      await closed
    }
  }

  await sleep(1000)
  const attacking = frame === undefined ? Promise.resolve() : attack()
  const started = performance.now()
  const cpuBefore = cpuMsOf(child.pid as number)
  let sent = 0
  while (performance.now() - started < durationS * 1000) {
    observer.send(JSON.stringify({ type: "ping", id: performance.now() }))
    sent++
    await sleep(pingEveryMs)
  }
  const serverCpuMsPerS = (cpuMsOf(child.pid as number) - cpuBefore) / ((performance.now() - started) / 1000)
  stop = true
  await Promise.race([attacking, sleep(2000)])
  await sleep(500)
  observer.terminate()
  if (process.env.PROBE_CPU_PROF === undefined) child.kill("SIGKILL")
  else {
    child.kill("SIGTERM")
    await new Promise((r) => child.once("exit", r))
  }

  const sorted = [...rtts].sort((a, b) => a - b)
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]?.toFixed(1)
  console.log(
    JSON.stringify({
      root,
      kind,
      frameBytes: frame?.length ?? 0,
      durationS,
      attackRatePerS: frame === undefined ? 0 : ratePerS,
      attackDeflate,
      attackerFrames,
      attackerCloses,
      attackerAnswers: Object.fromEntries(attackerAnswers),
      pings: sent,
      pongs: rtts.length,
      serverCpuMsPerS: Math.round(serverCpuMsPerS),
      rttMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted.at(-1)?.toFixed(1) },
    }),
  )
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
