/**
 * Probe: the server's CPU per frame written with `connection/wire.ts` to clients that keep up,
 * by frame size: how much writing a large frame in pieces (`wire.ts`, PIECE) costs on the
 * normal path.
 *
 *   npx tsx bench/probes/frameWriteCost.ts --clients 500 --seconds 20 --sizes 1000,12000,40000
 *   npx tsx bench/probes/frameWriteCost.ts --server-dir /tmp/old-checkout ...   (the code before a change)
 *
 * One process: a `ws` server on 127.0.0.1 that writes one frame of each size in turn to every
 * connection per 30 ms pass (a pass skips a socket that still holds unsent bytes, as the flusher
 * does), and a child process holding --clients `ws` clients that read everything. Reports the
 * server process's CPU time (user + system) per frame written. Bounded: --clients <= 2,000,
 * --seconds <= 120 per size.
 */
import { fork } from "node:child_process"
import { readFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import WebSocket, { WebSocketServer } from "ws"

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? def) : def
}
const CLIENTS = Math.min(2000, Number(arg("clients", "500")))
const SECONDS = Math.min(120, Number(arg("seconds", "20")))
const SIZES = arg("sizes", "1000,12000,40000").split(",").map(Number)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The child: --clients readers on --port, until its parent disconnects. */
const runClients = async (port: number) => {
  const open: Array<WebSocket> = []
  for (let i = 0; i < CLIENTS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    ws.on("message", () => {})
    ws.on("error", () => {})
    await new Promise((r) => ws.once("open", r))
    open.push(ws)
  }
  process.send?.("ready")
  process.on("disconnect", () => process.exit(0))
}

interface Wire {
  readonly writeText: (ws: WebSocket, text: string) => number
}

const main = async () => {
  const dir = resolve(arg("server-dir", "."))
  const wire = (await import(pathToFileURL(join(dir, "src/connection/wire.ts")).href)) as Wire
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  await new Promise((r) => wss.once("listening", r))
  const conns: Array<WebSocket> = []
  wss.on("connection", (ws) => conns.push(ws))
  const port = (wss.address() as AddressInfo).port
  const child = fork(process.argv[1] as string, ["--child", String(port), "--clients", String(CLIENTS)], {
    execArgv: ["--import", "tsx"],
  })
  try {
    await new Promise<void>((r, j) => {
      child.once("message", () => r())
      child.once("exit", (c) => j(new Error(`clients exited: ${c}`)))
    })
    console.log(
      `wire.ts from ${dir}; ${conns.length} reading clients; load average ${readFileSync("/proc/loadavg", "utf8").trim()}`,
    )
    for (const size of SIZES) {
      const text = JSON.stringify({ type: "batch", pad: "x".repeat(Math.max(0, size - 30)) })
      let frames = 0
      let skipped = 0
      const end = Date.now() + SECONDS * 1000
      const cpu0 = process.cpuUsage()
      const t0 = Date.now()
      while (Date.now() < end) {
        const passStart = Date.now()
        for (const ws of conns) {
          const sock = (ws as unknown as { _socket: { writableLength: number } })._socket
          if (sock.writableLength > 0) {
            skipped++
            continue
          }
          wire.writeText(ws, text)
          frames++
        }
        await sleep(Math.max(0, 30 - (Date.now() - passStart)))
      }
      const cpu = process.cpuUsage(cpu0)
      const ms = (cpu.user + cpu.system) / 1000
      console.log(
        JSON.stringify({
          frameBytes: text.length,
          frames,
          skippedBehind: skipped,
          wallMs: Date.now() - t0,
          cpuMs: Math.round(ms),
          usPerFrame: Math.round((ms * 1000 * 100) / frames) / 100,
          userUsPerFrame: Math.round((cpu.user * 100) / frames) / 100,
          sysUsPerFrame: Math.round((cpu.system * 100) / frames) / 100,
        }),
      )
      await sleep(1000)
    }
  } finally {
    child.kill("SIGTERM")
    wss.close()
  }
}

const childAt = process.argv.indexOf("--child")
if (childAt >= 0) void runClients(Number(process.argv[childAt + 1]))
else
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
