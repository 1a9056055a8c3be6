/**
 * Probe (issue 12 point 3): how much one user's alert storm delays everybody else.
 *
 * Starts a gateway process (simulator on, FEED_RATE 200) from PROBE_ROOT (default: this tree),
 * optionally in cluster mode (PROBE_REDIS=redis://..., under a throwaway prefix). An observer
 * subscribes to a few stocks and pings every 10 ms. For each of PROBE_ROUNDS rounds a fresh user
 * creates PROBE_ALERTS alerts on one stock (all crossed by the same price) and leaves
 * PROBE_SESSIONS saved sessions, keeps one live connection, and then a single ingested price
 * fires every alert. Reported: the observer's pong round trip and price delay (receipt minus
 * the event's timestamp) in the 3 s after each crossing ("storm") and in the 3 s before it
 * ("calm", the control on a shared machine), p50/p99/max over all rounds; alerts seen by the live
 * connection and by each restored session. Bounded: every wait has a deadline.
 *
 *   npx tsx bench/probes/userAlertStorm.ts                         # this tree, embedded
 *   PROBE_ROOT=/tmp/qc-old npx tsx bench/probes/userAlertStorm.ts  # another checkout
 *   PROBE_REDIS=redis://127.0.0.1:6379 npx tsx bench/probes/userAlertStorm.ts
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { Redis } from "ioredis"
import { SignJWT } from "jose"
import WebSocket from "ws"
import { SERVER_NODE_FLAGS } from "../../scripts/nodeFlags.js"
import { INSTRUMENT_ROWS } from "../../src/market/data/instruments.js"

const SECRET = "probe-secret-0123456789-0123456789"
const root = process.env.PROBE_ROOT ?? process.cwd()
const redisUrl = process.env.PROBE_REDIS
const ROUNDS = Number(process.env.PROBE_ROUNDS ?? 3)
const ALERTS = Number(process.env.PROBE_ALERTS ?? 500)
const SESSIONS = Number(process.env.PROBE_SESSIONS ?? 20)
const WINDOW_MS = 3000
const CODES = ["000660", "035420", "051910", "006400", "035720", "068270"]

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const token = (sub: string, role?: string) =>
  new SignJWT(role === undefined ? { sub } : { sub, role })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(SECRET))

type Msg = Record<string, unknown> & { type: string }
const unpack = (data: WebSocket.RawData): Array<Msg> => {
  const m = JSON.parse(data.toString()) as Msg
  return m.type === "batch" ? (m.messages as Array<Msg>) : [m]
}

const open = (url: string): Promise<{ ws: WebSocket; msgs: Array<Msg>; first: Promise<Msg> }> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const msgs: Array<Msg> = []
    let gotFirst: (m: Msg) => void = () => {}
    const first = new Promise<Msg>((r) => {
      gotFirst = r
    })
    ws.on("message", (d) => {
      for (const m of unpack(d)) {
        if (msgs.length === 0) gotFirst(m)
        msgs.push(m)
      }
    })
    ws.once("open", () => resolve({ ws, msgs, first }))
    ws.once("error", reject)
  })

const until = async (cond: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await sleep(20)
  return cond()
}

const pct = (xs: Array<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number)
}

const main = async () => {
  const prefix = `probe:${randomUUID()}:`
  // PROBE_NODE_ARGS: extra node flags for the gateway (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = (process.env.PROBE_NODE_ARGS ?? "").split(" ").filter((a) => a !== "")
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, ...nodeArgs, "--import", "tsx", "src/main.ts"],
    {
      cwd: root,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: "0",
        FEED: "simulator",
        FEED_RATE: "200",
        LOG_LEVEL: "warning",
        JWT_SECRET: SECRET,
        MAX_ALERTS_PER_USER: String(ALERTS),
        MAX_SESSIONS_PER_USER: String(SESSIONS),
        ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl, REDIS_PREFIX: prefix }),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  )
  let out = ""
  child.stdout.on("data", (d) => {
    out += d
  })
  child.stderr.on("data", (d) => {
    out += d
  })
  try {
    // LOG_LEVEL=warning hides the "listening" line: find the port from the process's sockets.
    const port = await new Promise<number>((resolve, reject) => {
      const end = Date.now() + 60_000
      const poll = async () => {
        const { execFileSync } = await import("node:child_process")
        const ss = execFileSync("ss", ["-ltnpH"]).toString()
        const line = ss.split("\n").find((l) => l.includes(`pid=${child.pid},`))
        const m = line === undefined ? null : /127\.0\.0\.1:(\d+)/.exec(line)
        if (m) resolve(Number(m[1]))
        else if (Date.now() > end || child.exitCode !== null) reject(new Error(`no port: ${out}`))
        else setTimeout(poll, 200)
      }
      void poll()
    })
    const http = `http://127.0.0.1:${port}`
    const wsUrl = `ws://127.0.0.1:${port}/v1/ws`

    // The observer: prices of 100 stocks not in the storm, and a ping every 10 ms.
    const obs = await open(wsUrl)
    await obs.first
    const watched = INSTRUMENT_ROWS.map((r) => r[0])
      .filter((c) => !CODES.includes(c))
      .slice(0, 100)
    obs.ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: watched }))
    const pongs: Array<{ at: number; rtt: number }> = []
    const prices: Array<{ at: number; delay: number }> = []
    obs.ws.on("message", (d) => {
      const now = Date.now()
      for (const m of unpack(d)) {
        if (m.type === "pong") pongs.push({ at: now, rtt: now - Number(m.id) })
        else if (m.type === "price_update" && m.snapshot !== true)
          prices.push({ at: now, delay: now - Date.parse(String(m.timestamp)) })
      }
    })
    const pinger = setInterval(
      () => obs.ws.send(JSON.stringify({ type: "ping", id: String(Date.now()) })),
      10,
    )

    const publisher = await token("probe-publisher", "publisher")
    const windows: Array<[number, number]> = []
    const calm: Array<[number, number]> = []
    const results: Array<string> = []
    for (let round = 0; round < ROUNDS; round++) {
      const code = CODES[round % CODES.length] as string
      const user = `storm-${round}-${randomUUID().slice(0, 8)}`
      const t = await token(user)
      // The stock's previous close, from its snapshot.
      const peek = await open(`${wsUrl}`)
      await peek.first
      peek.ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: [code] }))
      await until(() => peek.msgs.some((m) => m.type === "price_update"), 5000)
      const snap = peek.msgs.find((m) => m.type === "price_update") as Msg
      peek.ws.close()
      const prevClose = Number(snap.price) - Number(snap.change)
      const threshold = Math.round(prevClose * 1.15)
      const crossing = Math.round((prevClose * 1.25) / 1000) * 1000

      let created = 0
      let refused = 0
      for (let i = 0; i < ALERTS; i += 25) {
        const res = await Promise.all(
          Array.from({ length: Math.min(25, ALERTS - i) }, (_, j) =>
            fetch(`${http}/v1/alerts`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
              body: JSON.stringify({ code, alert_type: "price_above", threshold: threshold + i + j }),
            }),
          ),
        )
        for (const r of res) {
          if (r.status === 201) created++
          else refused++
          await r.arrayBuffer()
        }
      }
      const saved: Array<string> = []
      for (let i = 0; i < SESSIONS; i++) {
        const c = await open(`${wsUrl}?token=${t}`)
        const connected = await c.first
        saved.push(String(connected.session_id))
        c.ws.send(JSON.stringify({ type: "subscribe", subscription_type: "stock", targets: [code] }))
        await until(() => c.msgs.some((m) => m.type === "subscribed"), 5000)
        c.ws.close()
        await new Promise((r) => c.ws.once("close", r))
      }
      const live = await open(`${wsUrl}?token=${t}`)
      await live.first
      // The control window: the same seconds of the same run, without the storm.
      const calmFrom = Date.now()
      await sleep(WINDOW_MS)
      calm.push([calmFrom, calmFrom + WINDOW_MS])

      const fired = Date.now()
      const res = await fetch(`${http}/v1/ingest`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${publisher}` },
        body: JSON.stringify({ events: [{ type: "price_update", code, price: crossing, volume: 1 }] }),
      })
      await res.arrayBuffer()
      const liveAlerts = () => live.msgs.filter((m) => m.type === "alert").length
      await until(() => liveAlerts() >= created, WINDOW_MS)
      const allLive = Date.now() - fired
      await sleep(Math.max(0, fired + WINDOW_MS - Date.now()))
      windows.push([fired, fired + WINDOW_MS])

      // Every saved session gets every alert once on restore.
      const restored: Array<number> = []
      for (const id of saved) {
        const c = await open(`${wsUrl}?token=${t}&session_id=${id}`)
        await until(() => c.msgs.some((m) => m.type === "reconnected" || m.type === "error"), 5000)
        await sleep(300)
        restored.push(c.msgs.filter((m) => m.type === "alert").length)
        c.ws.close()
      }
      live.ws.close()
      results.push(
        `round ${round}: ${created} alerts created (${refused} refused), ingest answered in ${res.status}, ` +
          `live connection got ${liveAlerts()} alerts (all within ${allLive} ms), ` +
          `restored sessions got [${Math.min(...restored)}..${Math.max(...restored)}] alerts`,
      )
      await sleep(500)
    }
    clearInterval(pinger)
    obs.ws.close()

    const within =
      (ws: Array<[number, number]>) =>
      <T extends { at: number }>(xs: Array<T>) =>
        xs.filter((x) => ws.some(([a, b]) => x.at >= a && x.at <= b))
    const inWindows = within(windows)
    const quiet = within(calm)
    const fmt = (xs: Array<number>) =>
      `n=${xs.length} p50=${pct(xs, 50)} p99=${pct(xs, 99)} max=${Math.max(...xs)} ms`
    for (const r of results) console.log(r)
    if (process.env.PROBE_VERBOSE) {
      // The slowest pongs, with when they came relative to the crossing of their round.
      const offset = (at: number) => {
        const w = windows.find(([from, to]) => at >= from && at <= to)
        return w === undefined ? Number.NaN : at - w[0]
      }
      const worst = [...inWindows(pongs)].sort((x, y) => y.rtt - x.rtt).slice(0, 12)
      console.log(
        `slowest pongs (rtt@ms after crossing): ${worst.map((x) => `${x.rtt}@${offset(x.at)}`).join(" ")}`,
      )
    }
    console.log(`mode: ${redisUrl === undefined ? "embedded" : "cluster (1 instance, Redis)"}, root ${root}`)
    console.log(`storm  pong rtt:    ${fmt(inWindows(pongs).map((x) => x.rtt))}`)
    console.log(`storm  price delay: ${fmt(inWindows(prices).map((x) => x.delay))}`)
    console.log(`calm   pong rtt:    ${fmt(quiet(pongs).map((x) => x.rtt))}  (3 s before each crossing)`)
    console.log(`calm   price delay: ${fmt(quiet(prices).map((x) => x.delay))}`)
  } finally {
    child.kill("SIGTERM")
    await new Promise((r) => {
      if (child.exitCode !== null) r(undefined)
      else child.once("exit", r)
    })
    if (redisUrl !== undefined) {
      const r = new Redis(redisUrl)
      let cursor = "0"
      do {
        const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
        cursor = next
        if (keys.length > 0) await r.unlink(...keys)
      } while (cursor !== "0")
      r.disconnect()
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
