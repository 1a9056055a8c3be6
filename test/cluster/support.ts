/**
 * Cluster-mode test support: gateway instances as separate processes on loopback ports against
 * a real Redis, each test file under its own key prefix (cleaned afterwards), and a private
 * `redis-server` for outage tests.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createServer } from "node:net"
import { Redis } from "ioredis"
import { type GatewayProcess, type Msg, signToken, spawnGateway, waitFor } from "../support/gateway.js"

/** The cluster tests poll with the shared helper. */
export { waitFor }

/** The shared Redis (`.ci/run` starts one when none answers). */
export const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

export const uniquePrefix = () => `test:${randomUUID()}:`

/** Deletes every key under `prefix`. */
export const cleanPrefix = async (url: string, prefix: string): Promise<number> => {
  const r = new Redis(url, { maxRetriesPerRequest: 1 })
  r.on("error", () => {})
  let deleted = 0
  try {
    let cursor = "0"
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) deleted += await r.unlink(...keys)
    } while (cursor !== "0")
  } finally {
    r.disconnect()
  }
  return deleted
}

export const keysUnder = async (url: string, prefix: string): Promise<Array<string>> => {
  const r = new Redis(url)
  r.on("error", () => {})
  try {
    const found: Array<string> = []
    let cursor = "0"
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      found.push(...keys)
    } while (cursor !== "0")
    return found
  } finally {
    r.disconnect()
  }
}

/**
 * Starts `n` instances in parallel. One takes a few seconds to load and connect on an idle
 * machine, far longer on a busy 2-core one, hence the generous limit.
 */
export const STARTUP_LIMIT_MS = 90_000
export const startInstances = async (
  n: number,
  env: Record<string, string>,
): Promise<Array<GatewayProcess>> => {
  const started = await Promise.allSettled(
    Array.from({ length: n }, () => spawnGateway(env, STARTUP_LIMIT_MS)),
  )
  const ok = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []))
  const failed = started.find((r) => r.status === "rejected")
  if (failed !== undefined) {
    // Leave no process behind when the set is incomplete.
    await Promise.all(ok.map((node) => kill(node)))
    throw failed.reason
  }
  return ok
}

export const stopAll = async (nodes: ReadonlyArray<GatewayProcess>) => {
  await Promise.all(nodes.map((n) => n.stop()))
}

export const kill = (node: GatewayProcess) => {
  if (node.child.exitCode === null) node.child.kill("SIGKILL")
  return node.exited
}

export const healthOf = async (gw: { readonly httpUrl: string }): Promise<{ status: number; body: Msg }> => {
  const res = await fetch(`${gw.httpUrl}/health`)
  return { status: res.status, body: (await res.json()) as Msg }
}

export const statsOf = async (gw: { readonly httpUrl: string }): Promise<Msg> =>
  (await (await fetch(`${gw.httpUrl}/v1/ws/stats`)).json()) as Msg

/** A user's alert API on one instance. */
export const alertsApi = async (gw: { readonly httpUrl: string }, userId: string) => {
  const token = await signToken({ sub: userId })
  const auth = { authorization: `Bearer ${token}` }
  return {
    token,
    create: async (body: { code: string; alert_type: string; threshold: number }) => {
      const res = await fetch(`${gw.httpUrl}/v1/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify(body),
      })
      if (res.status !== 201) throw new Error(`create alert: HTTP ${res.status} ${await res.text()}`)
      return (await res.json()) as Msg
    },
    list: async () =>
      (await (await fetch(`${gw.httpUrl}/v1/alerts`, { headers: auth })).json()) as Array<Msg>,
  }
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address()
      const port = typeof a === "object" && a !== null ? a.port : 0
      srv.close(() => resolve(port))
    })
  })

/** A private, non-persistent redis-server on a free loopback port that a test may kill and restart. */
export interface PrivateRedis {
  readonly port: number
  readonly url: string
  /** SIGKILL: the server and all its data are gone. */
  readonly kill: () => Promise<void>
  /** Starts an empty server on the same port again. */
  readonly start: () => Promise<void>
  readonly client: () => Redis
}

export const startPrivateRedis = async (): Promise<PrivateRedis> => {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    )
    child = proc
    await waitFor(
      async () => {
        const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null })
        r.on("error", () => {})
        try {
          await r.connect()
          return (await r.ping()) === "PONG"
        } catch {
          return false
        } finally {
          r.disconnect()
        }
      },
      10_000,
      "redis-server to answer",
    )
  }
  const kill = async () => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once("exit", resolve))
    proc.kill("SIGKILL")
    await exited
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    client: () => {
      const r = new Redis({ port, host: "127.0.0.1" })
      r.on("error", () => {})
      return r
    },
  }
}

/** CLIENT KILL of the connections whose name starts with `namePrefix`; returns how many. */
export const killClients = async (
  redis: Redis,
  namePrefix: string,
  role?: "cmd" | "sub",
): Promise<number> => {
  const list = (await redis.client("LIST")) as string
  let killed = 0
  for (const line of list.split("\n")) {
    const id = /\bid=(\d+)/.exec(line)?.[1]
    const name = /\bname=(\S*)/.exec(line)?.[1] ?? ""
    if (id === undefined || !name.startsWith(namePrefix)) continue
    if (role !== undefined && !name.endsWith(`:${role}`)) continue
    killed += Number(await redis.client("KILL", "ID", id))
  }
  return killed
}

/** The instance that logged taking the feed lead last (and has not logged losing it since). */
export const leaderOf = (nodes: ReadonlyArray<GatewayProcess>): GatewayProcess | undefined =>
  nodes.find((n) => {
    const out = n.output()
    const got = out.lastIndexOf("feed leadership acquired")
    return (
      n.child.exitCode === null &&
      n.child.signalCode === null &&
      got >= 0 &&
      out.lastIndexOf("feed leadership lost") < got
    )
  })
