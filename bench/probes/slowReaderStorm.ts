/**
 * Probe: a storm of clients that subscribe and then never read, against a gateway fed at a high
 * rate; reports the server's RSS before, at the peak, and a settle time after the storm's clients
 * have all gone (issue 12, point 5), with where the memory is (V8 heap, Buffers, allocator).
 *
 *   npx tsx bench/probes/slowReaderStorm.ts --clients 600 --feed-rate 2000 --hold 20 --settle 60
 *   npx tsx bench/probes/slowReaderStorm.ts --clients 4800 --feed-rate 2000 --settle 120 \
 *     --env OUTBOUND_BUDGET_BYTES=268435456
 *   npx tsx bench/probes/slowReaderStorm.ts --server-dir /tmp/old-checkout ...   (the code before a change)
 *   PROBE_HEAP_SITES=1 npx tsx bench/probes/slowReaderStorm.ts ...   (live heap by allocation site at its high)
 *   npx tsx bench/probes/slowReaderStorm.ts ... --env MALLOC_MMAP_THRESHOLD_=65536   (a glibc setting)
 *   npx tsx bench/probes/slowReaderStorm.ts ... --node-arg --cpu-prof --node-arg --cpu-prof-dir=/tmp/prof
 *
 * It starts its own server process (`node --expose-gc --import tsx src/main.ts` on 127.0.0.1,
 * FEED=simulator) with `memoryReporter.ts` preloaded, and stops it by its PID when done
 * (SIGTERM, then SIGKILL). Bounded: at most --clients connections (<= 9,000), opened in batches
 * of 200, held --hold seconds, then closed; the whole run has a deadline. The non-reading
 * clients are raw TCP sockets that complete the upgrade, send one `subscribe` and pause: the
 * kernel's buffers fill and then the server's. One ordinary `ws` client reads throughout; its
 * message count and longest silence during the storm are reported too.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync, rmSync } from "node:fs"
import { createServer, type Socket, connect as tcpConnect } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import WebSocket from "ws"
import { SERVER_NODE_FLAGS } from "../../scripts/nodeFlags.js"
import { INSTRUMENT_ROWS } from "../../src/market/data/instruments.js"

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
/** Where the server's code is (default: this checkout), e.g. a worktree of the code before a change. */
const serverDir = (() => {
  const i = process.argv.indexOf("--server-dir")
  return i >= 0 ? (process.argv[i + 1] ?? ".") : "."
})()
/** More Node options for the server (`--node-arg --cpu-prof`): those NODE_OPTIONS does not allow. */
const nodeArgs = process.argv.flatMap((a, i) => (a === "--node-arg" ? [process.argv[i + 1] ?? ""] : []))
const extraEnv: Record<string, string> = {}
process.argv.forEach((a, i) => {
  if (a !== "--env") return
  const [k, ...v] = (process.argv[i + 1] ?? "").split("=")
  if (k !== undefined && k !== "") extraEnv[k] = v.join("=")
})

const CLIENTS = Math.min(9000, arg("clients", 600))
const FEED_RATE = arg("feed-rate", 2000)
const HOLD_S = arg("hold", 20)
const SETTLE_S = arg("settle", 60)
const SUBS = arg("subs", 100)
const WARM_S = arg("warm", 8)
const BATCH = 200
const DEADLINE = Date.now() + (WARM_S + HOLD_S + SETTLE_S + 180) * 1000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const codes = INSTRUMENT_ROWS.map((r) => r[0])

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address()
      s.close(() => resolve(typeof addr === "object" && addr !== null ? addr.port : 0))
    })
  })

const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m === null ? 0 : Math.round(Number(m[1]) / 102.4) / 10
}

/** The size of glibc's main heap (`[heap]`, grown by brk) in MB: its extent, resident or not. */
const brkExtentOf = (pid: number): number => {
  const line = readFileSync(`/proc/${pid}/maps`, "utf8")
    .split("\n")
    .find((l) => l.endsWith("[heap]"))
  const m = line === undefined ? null : /^([0-9a-f]+)-([0-9a-f]+)/.exec(line)
  return m === null
    ? 0
    : Math.round((Number.parseInt(m[2] as string, 16) - Number.parseInt(m[1] as string, 16)) / 104857.6) / 10
}

interface Sample {
  readonly label: string
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  readonly rollup: Record<string, number>
  readonly mappings: Record<string, number>
}
const lastSample = (file: string, label?: string): Sample | undefined => {
  if (!existsSync(file)) return undefined
  const lines = readFileSync(file, "utf8").trim().split("\n")
  for (let i = lines.length - 1; i >= 0; i--) {
    const s = JSON.parse(lines[i] as string) as Sample
    if (label === undefined ? s.label !== "heap-sites" : s.label === label) return s
  }
  return undefined
}
const brief = (s: Sample | undefined) =>
  s === undefined
    ? "n/a"
    : `rss ${s.rss} MB = heap ${s.heapTotal} (used ${s.heapUsed}), external ${s.external} (arrayBuffers ${s.arrayBuffers}); ` +
      `anon ${s.rollup.Anonymous} MB: brk heap ${s.mappings.brkHeap}, 64MB arenas ${s.mappings.anon64MbArenas}, other anon ${s.mappings.anonOther}`

/** A masked client text frame (RFC 6455 5.3). */
const clientFrame = (text: string): Buffer => {
  const payload = Buffer.from(text)
  const len = payload.length
  const head = len < 126 ? 2 : 4
  const frame = Buffer.alloc(head + 4 + len)
  frame[0] = 0x81
  if (len < 126) frame[1] = 0x80 | len
  else {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(len, 2)
  }
  const mask = randomBytes(4)
  mask.copy(frame, head)
  for (let i = 0; i < len; i++) frame[head + 4 + i] = (payload[i] as number) ^ (mask[i & 3] as number)
  return frame
}

/** Opens a WebSocket by hand and stops reading (it subscribes later: `subscribeAll`). */
const nonReader = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const sock = tcpConnect(port, "127.0.0.1")
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error("upgrade timed out"))
    }, 60_000)
    let head = ""
    sock.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    sock.on("connect", () => {
      sock.write(
        `GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      )
    })
    const onData = (d: Buffer) => {
      head += d.toString("latin1")
      if (!head.includes("\r\n\r\n")) return
      sock.off("data", onData)
      clearTimeout(timer)
      if (!head.startsWith("HTTP/1.1 101")) {
        sock.destroy()
        reject(new Error(head.replace(/\r\n/g, " ").slice(0, 300)))
        return
      }
      sock.pause()
      sock.on("error", () => {})
      resolve(sock)
    }
    sock.on("data", onData)
  })

/** Sends one client's subscriptions (it reads nothing, but it can still write). */
const subscribeAll = (sock: Socket, i: number): void => {
  const start = (i * 7) % Math.max(1, codes.length - SUBS)
  const targets = codes.slice(start, start + SUBS)
  // At most 100 targets per frame (the gateway's array limit).
  for (let k = 0; k < targets.length; k += 100)
    sock.write(
      clientFrame(
        JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: targets.slice(k, k + 100) }),
      ),
    )
  sock.write(
    clientFrame(
      JSON.stringify({ type: "subscribe", subscription_type: "market", targets: ["KOSPI", "KOSDAQ"] }),
    ),
  )
}

const metricsText = async (port: number): Promise<string> => {
  try {
    // Bounded: a server that stopped answering must not hold the probe past its deadline.
    return await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(20_000) })
    ).text()
  } catch {
    return ""
  }
}
const pick = (text: string, prefix: string): Array<string> =>
  text.split("\n").filter((l) => l.startsWith(prefix) && !l.startsWith("#"))

const main = async () => {
  const port = await freePort()
  const memFile = join(tmpdir(), `slow-reader-storm-${process.pid}.jsonl`)
  rmSync(memFile, { force: true })
  const env = {
    ...process.env,
    HOST: "127.0.0.1",
    PORT: String(port),
    FEED: "simulator",
    FEED_RATE: String(FEED_RATE),
    LOG_LEVEL: "warning",
    JWT_SECRET: "probe-secret-0123456789-0123456789",
    PROBE_MEMORY_FILE: memFile,
    // Every storm client comes from 127.0.0.1: lift the per-address admission limits.
    WS_MAX_CONNECTIONS: "20000",
    // The storm's upgrades queue behind a busy server: let them wait rather than fail.
    HANDSHAKE_TIMEOUT_MS: "60000",
    // Connected storm clients answer no pings while the rest connect: the heartbeat would close
    // them before the storm starts. The per-connection slow-consumer limits stay at their defaults.
    HEARTBEAT_INTERVAL_MS: "60000",
    // Connection setup admission (reconnect storms): the storm is about memory, not admission.
    SETUP_CONCURRENCY: "1000",
    ADMISSION_WAIT_MS: "120000",
    WS_MAX_CONNECTIONS_PER_ADDRESS: "20000",
    WS_CONNECT_RATE_PER_ADDRESS: "100000",
    WS_CONNECT_BURST_PER_ADDRESS: "100000",
    TCP_MAX_CONNECTIONS_PER_ADDRESS: "20000",
    ...extraEnv,
  }
  const reporter = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "memoryReporter.ts")).href
  const server: ChildProcess = spawn(
    process.execPath,
    [
      "--expose-gc",
      ...SERVER_NODE_FLAGS,
      ...nodeArgs,
      "--import",
      "tsx",
      "--import",
      reporter,
      "src/main.ts",
    ],
    { env, stdio: ["ignore", "ignore", "pipe"], cwd: serverDir },
  )
  let stderr = ""
  server.stderr?.on("data", (d) => {
    if (stderr.length < 20_000) stderr += d
  })
  const pid = server.pid as number
  const stopServer = async () => {
    if (server.exitCode !== null) return
    process.kill(pid, "SIGTERM")
    for (let i = 0; i < 50 && server.exitCode === null; i++) await sleep(100)
    if (server.exitCode === null) process.kill(pid, "SIGKILL")
  }
  const storm: Array<Socket> = []
  let reader: WebSocket | undefined
  try {
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break
      } catch {}
      if (server.exitCode !== null || Date.now() > DEADLINE)
        throw new Error(`server did not start: ${stderr}`)
      await sleep(200)
    }
    // The reading client, for the whole run.
    let readerMessages = 0
    let lastFrame = Date.now()
    let longestSilence = 0
    // Every silence over a second, as [start, length] in ms from the storm's start: when in the
    // storm the reader waited (the subscriptions' burst, or later) says what kept it waiting.
    const silences: Array<[number, number]> = []
    let stormStart = 0
    let readerClosed: number | undefined
    let measuring = false
    reader = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`)
    reader.on("message", (data) => {
      const now = Date.now()
      if (measuring) {
        longestSilence = Math.max(longestSilence, now - lastFrame)
        if (now - lastFrame > 1000) silences.push([lastFrame - stormStart, now - lastFrame])
      }
      lastFrame = now
      const m = JSON.parse(data.toString()) as { type: string; messages?: Array<unknown> }
      if (measuring) readerMessages += m.type === "batch" ? (m.messages?.length ?? 0) : 1
    })
    // The budget's pings (payload "quotecast-budget"): when one was last answered says, at a
    // close, whether the reader was taken for a client that does not answer or one that does not drain.
    const budgetPings: Array<number> = []
    let closedAt = 0
    reader.on("ping", (data) => {
      if (data.toString() === "quotecast-budget") budgetPings.push(Date.now())
    })
    reader.on("close", (code) => {
      readerClosed = code
      closedAt = Date.now()
    })
    await new Promise((r) => reader?.once("open", r))
    for (let k = 0; k < SUBS; k += 100)
      reader.send(
        JSON.stringify({
          type: "subscribe",
          subscription_type: "stock",
          targets: codes.slice(k, Math.min(SUBS, k + 100)),
        }),
      )

    await sleep(WARM_S * 1000)
    process.kill(pid, "SIGUSR2")
    await sleep(1500)
    const before = rssOf(pid)
    const beforeSample = lastSample(memFile, "after-gc")
    console.log(`before: ${before} MB; ${brief(beforeSample)}`)

    let peak = before
    let peakSample: Sample | undefined
    // When the peak was (the server's own sample can lag it by a second, or miss a spike while
    // its event loop is blocked) and how far glibc's brk heap extended then (virtual, from maps).
    let peakAt = Date.now()
    let peakBrkMb = 0
    const sampler = setInterval(() => {
      try {
        const r = rssOf(pid)
        if (r > peak) {
          peak = r
          peakAt = Date.now()
          peakSample = lastSample(memFile)
          peakBrkMb = brkExtentOf(pid)
        }
      } catch {}
    }, 250)

    // All the storm's clients connect first (idle, cheap), then subscribe at once: the storm
    // starts together rather than spread over a ramp that a busy server slows down.
    const rampStart = Date.now()
    let failed = 0
    let firstFailure = ""
    for (let i = 0; i < CLIENTS && Date.now() < DEADLINE; i += BATCH) {
      const n = Math.min(BATCH, CLIENTS - i)
      const opened = await Promise.allSettled(Array.from({ length: n }, () => nonReader(port)))
      for (const o of opened) {
        if (o.status === "fulfilled") storm.push(o.value)
        else {
          failed++
          firstFailure ||= String(o.reason)
        }
      }
    }
    measuring = true
    lastFrame = Date.now()
    stormStart = Date.now()
    storm.forEach((sock, i) => {
      subscribeAll(sock, i)
    })
    console.log(
      `storm: ${storm.length} non-reading clients open (${failed} failed${failed > 0 ? `: ${firstFailure}` : ""}) in ${stormStart - rampStart} ms, then all subscribed at once`,
    )
    // The server's budget over the storm, every 2 s (a scrape waits for the server's turn: its
    // time says how late the server answered).
    const timeline: Array<string> = []
    let sampling = true
    const timelineDone = (async () => {
      while (sampling) {
        const asked = Date.now()
        const text = await metricsText(port)
        // How far the storm's subscribes have been processed.
        const subs = await fetch(`http://127.0.0.1:${port}/v1/ws/stats`, {
          signal: AbortSignal.timeout(20_000),
        })
          .then((r) => r.json() as Promise<Record<string, unknown>>)
          .then((stats) => String(stats.total_subscriptions))
          .catch(() => "?")
        const value = (name: string) => {
          const line = pick(text, `${name} `)[0]
          return line === undefined ? "?" : (line.split(" ")[1] ?? "?")
        }
        const mb = (v: string) => (v === "?" ? v : String(Math.round(Number(v) / 1048576)))
        timeline.push(
          `${((asked - stormStart) / 1000).toFixed(0)}s (+${Date.now() - asked} ms): used ${mb(value("quotecast_outbound_budget_used_bytes"))} MB owed (memory ${mb(value("quotecast_outbound_memory_bytes"))} MB), ` +
            `conflations ${value("quotecast_outbound_budget_conflations_total")}, closes ${value("quotecast_outbound_budget_closes_total")}, ` +
            `pings ${value("quotecast_outbound_budget_pings_total")}, subscriptions ${subs}, reader ${readerMessages} msgs`,
        )
        await sleep(2000)
      }
    })()
    await sleep(Math.min(5, HOLD_S) * 1000)
    try {
      const stats = (await (await fetch(`http://127.0.0.1:${port}/v1/ws/stats`)).json()) as Record<
        string,
        unknown
      >
      console.log(
        `  5 s into the storm: ${stats.active_connections} connections, ${stats.total_subscriptions} subscriptions`,
      )
    } catch {}
    await sleep(Math.max(0, HOLD_S - 5) * 1000)
    sampling = false
    await timelineDone
    const atEnd = await metricsText(port)
    measuring = false
    console.log(`timeline:\n  ${timeline.join("\n  ")}`)
    // The silence that ended the storm (or the reader's close) counts too.
    longestSilence = Math.max(longestSilence, (closedAt > 0 ? closedAt : Date.now()) - lastFrame)
    const stillOpen = storm.filter((s) => !s.destroyed && s.readyState === "open").length
    for (const s of storm) s.destroy()
    storm.length = 0
    const stormEnd = Date.now()
    console.log(
      `storm over after ${stormEnd - stormStart} ms: ${stillOpen} of the storm's sockets were still open on the client side`,
    )
    console.log(
      `peak: ${peak} MB at ${Math.round((peakAt - stormStart) / 1000)} s after the storm's clients subscribed ` +
        `(brk heap extent then ${peakBrkMb} MB); the server's last sample before it: ${brief(peakSample)}`,
    )
    const sites = lastSample(memFile, "heap-sites") as unknown as
      | { heapUsedMb: number; sites: Array<[string, number]> }
      | undefined
    if (sites !== undefined) {
      console.log(`  live heap by allocation site at ${sites.heapUsedMb} MB in use (PROBE_HEAP_SITES=1):`)
      for (const [site, size] of sites.sites) console.log(`    ${size} MB  ${site}`)
    }
    console.log(
      `reader: ${readerMessages} messages during the storm, longest silence ${longestSilence} ms, ` +
        `closed: ${readerClosed ?? "no"}`,
    )
    console.log(
      `reader: silences over 1 s (start s after the storm's subscriptions: length s): ${
        silences.map(([at, len]) => `${(at / 1000).toFixed(1)}: ${(len / 1000).toFixed(1)}`).join(", ") ||
        "none"
      }`,
    )
    const lastPing = budgetPings.at(-1)
    console.log(
      `reader: ${budgetPings.length} budget pings answered` +
        (closedAt > 0
          ? `; closed ${closedAt - lastFrame} ms after its last frame` +
            (lastPing === undefined ? "" : `, ${closedAt - lastPing} ms after the last budget ping`)
          : ""),
    )
    for (const l of [
      ...pick(atEnd, "quotecast_connections_closed_total"),
      ...pick(atEnd, "quotecast_slow_consumer"),
      ...pick(atEnd, "quotecast_messages_sent_total"),
      ...pick(atEnd, "quotecast_conflated_total"),
      ...pick(atEnd, "quotecast_outbound_"),
      // How long the server's passes (and so its turns for I/O) took under the storm.
      ...pick(atEnd, "quotecast_flush_pass_ms"),
      ...pick(atEnd, "nodejs_eventloop_lag_max_seconds"),
    ])
      console.log(`  at storm end: ${l}`)

    const settleEnd = stormEnd + SETTLE_S * 1000
    const marks = new Set([10, 30, 45, 60, 90, 120, 300])
    while (Date.now() < settleEnd) {
      await sleep(1000)
      const s = Math.round((Date.now() - stormEnd) / 1000)
      if (marks.has(s)) console.log(`  +${s} s: rss ${rssOf(pid)} MB; ${brief(lastSample(memFile))}`)
    }
    clearInterval(sampler)
    const after = rssOf(pid)
    const afterSample = lastSample(memFile)
    console.log(`after ${SETTLE_S} s: ${after} MB; ${brief(afterSample)}`)
    process.kill(pid, "SIGUSR2")
    await sleep(2000)
    const afterGc = lastSample(memFile, "after-gc")
    console.log(`after a forced full GC: ${brief(afterGc)}`)
    const end = await metricsText(port)
    for (const l of pick(end, "quotecast_outbound_")) console.log(`  at the end: ${l}`)
    console.log(
      JSON.stringify({
        clients: CLIENTS,
        feedRate: FEED_RATE,
        holdS: HOLD_S,
        settleS: SETTLE_S,
        env: extraEnv,
        rssBeforeMb: before,
        rssPeakMb: peak,
        peakAtS: Math.round((peakAt - stormStart) / 1000),
        rssAfterMb: after,
        rssAfterGcMb: afterGc?.rss,
        returnedWithinMb: Math.round((after - before) * 10) / 10,
        readerMessages,
        readerLongestSilenceMs: longestSilence,
        readerClosed: readerClosed ?? null,
      }),
    )
  } finally {
    for (const s of storm) s.destroy()
    reader?.terminate()
    await stopServer()
    rmSync(memFile, { force: true })
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
