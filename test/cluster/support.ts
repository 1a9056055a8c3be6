/**
 * Cluster-mode test support: gateway instances as separate processes on loopback ports against
 * a real Redis, each test file under its own key prefix (cleaned afterwards), and a private
 * `redis-server` for outage tests.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createServer } from "node:net"
import { afterAll, beforeAll } from "@effect/vitest"
import { Schema } from "effect"
import { Redis } from "ioredis"
import { Alert, type AlertRequest, Health } from "../../src/http/Api.js"
import {
  type GatewayProcess,
  readJson,
  signToken,
  spawnGateway,
  statsOf,
  waitFor,
} from "../support/gateway.js"

/** The cluster tests poll and read stats with the shared helpers. */
export { statsOf, waitFor }

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

export interface ClusterSpec {
  readonly instances: number
  /**
   * Default: the shared Redis. A function when the address is known only once an earlier hook
   * ran (a private redis-server).
   */
  readonly redisUrl?: string | (() => string)
  /** More environment for every instance (REDIS_URL and REDIS_PREFIX are the fixture's). */
  readonly env?: Record<string, string>
}

/** Instances of one cluster: one Redis, one key prefix of their own. */
export interface Cluster {
  readonly prefix: string
  readonly redisUrl: string
  /** The environment the instances were started with, for starting one by hand. */
  readonly env: Record<string, string>
  readonly nodes: ReadonlyArray<GatewayProcess>
  /** Starts `n` more instances of this cluster; they are stopped with it. */
  readonly add: (n: number) => Promise<Array<GatewayProcess>>
}

/**
 * Clusters for the enclosing describe (or file), started together before its tests (in
 * parallel: each instance takes seconds to start) and stopped after them, their keys deleted
 * from the shared Redis.
 */
export const useClusters = <K extends string>(specs: Record<K, ClusterSpec>): Record<K, Cluster> => {
  const entries = Object.entries<ClusterSpec>(specs)
  const started = new Map<
    string,
    { redisUrl: string; env: Record<string, string>; nodes: Array<GatewayProcess> }
  >()
  const prefixes = new Map(entries.map(([name]) => [name, uniquePrefix()]))
  beforeAll(async () => {
    await Promise.all(
      entries.map(async ([name, spec]) => {
        const redisUrl =
          typeof spec.redisUrl === "function" ? spec.redisUrl() : (spec.redisUrl ?? SHARED_REDIS_URL)
        const env = { ...spec.env, REDIS_URL: redisUrl, REDIS_PREFIX: prefixes.get(name) as string }
        const entry = { redisUrl, env, nodes: [] as Array<GatewayProcess> }
        started.set(name, entry)
        entry.nodes.push(...(await startInstances(spec.instances, env)))
      }),
    )
  }, 2 * STARTUP_LIMIT_MS)
  afterAll(async () => {
    await stopAll([...started.values()].flatMap((c) => c.nodes))
    for (const [name, c] of started)
      if (c.redisUrl === SHARED_REDIS_URL) await cleanPrefix(SHARED_REDIS_URL, prefixes.get(name) as string)
    started.clear()
  }, 30_000)
  const handle = (name: string): Cluster => {
    const current = () => {
      const c = started.get(name)
      if (c === undefined) throw new Error(`cluster ${name} is not running (used outside its describe?)`)
      return c
    }
    return {
      prefix: prefixes.get(name) as string,
      get redisUrl() {
        return current().redisUrl
      },
      get env() {
        return current().env
      },
      get nodes() {
        return current().nodes
      },
      add: async (n) => {
        const c = current()
        const more = await startInstances(n, c.env)
        c.nodes.push(...more)
        return more
      },
    }
  }
  return Object.fromEntries(entries.map(([name]) => [name, handle(name)])) as Record<K, Cluster>
}

export const useCluster = (spec: ClusterSpec): Cluster => useClusters({ cluster: spec }).cluster

export const stopAll = async (nodes: ReadonlyArray<GatewayProcess>) => {
  await Promise.all(nodes.map((n) => n.stop()))
}

export const kill = (node: GatewayProcess) => {
  if (node.child.exitCode === null) node.child.kill("SIGKILL")
  return node.exited
}

/** /health's 503 body (the Unavailable error of http/Api.ts, as encoded). */
const Unhealthy = Schema.Struct({
  _tag: Schema.Literal("Unavailable"),
  status: Schema.Literal("draining", "degraded"),
  reason: Schema.String,
  dependencies: Schema.Record({ key: Schema.String, value: Schema.String }),
})

export const healthOf = async (gw: { readonly httpUrl: string }) => {
  const res = await fetch(`${gw.httpUrl}/health`)
  return { status: res.status, body: await readJson(res, Schema.Union(Health, Unhealthy)) }
}

/** The instance id a healthy instance reports on /health. */
export const instanceIdOf = async (gw: { readonly httpUrl: string }): Promise<string> => {
  const { body } = await healthOf(gw)
  if (!("instance_id" in body)) throw new Error(`instance not healthy: ${JSON.stringify(body)}`)
  return body.instance_id
}

/** Active alerts in an instance's cache (`quotecast_alerts_cached`). */
const alertsCachedOf = async (gw: { readonly httpUrl: string }): Promise<number> => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith("quotecast_alerts_cached "))
  if (line === undefined) throw new Error("no quotecast_alerts_cached metric")
  return Number(line.slice("quotecast_alerts_cached ".length))
}

/**
 * Waits until every instance's cache of active alerts holds as many as `source`'s, the instance
 * that just created or deleted one: the sync channel has reached them all.
 */
export const alertCachesInSync = async (
  source: { readonly httpUrl: string },
  nodes: ReadonlyArray<{ readonly httpUrl: string }>,
): Promise<void> => {
  const want = await alertsCachedOf(source)
  await waitFor(
    async () => (await Promise.all(nodes.map(alertsCachedOf))).every((n) => n === want),
    5_000,
    `every instance to cache ${want} active alerts`,
  )
}

/** A user's alert API on one instance. */
export const alertsApi = async (gw: { readonly httpUrl: string }, userId: string) => {
  const token = await signToken({ sub: userId })
  const auth = { authorization: `Bearer ${token}` }
  return {
    token,
    create: async (body: typeof AlertRequest.Encoded) => {
      const res = await fetch(`${gw.httpUrl}/v1/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify(body),
      })
      if (res.status !== 201) throw new Error(`create alert: HTTP ${res.status} ${await res.text()}`)
      return readJson(res, Alert)
    },
    list: async () =>
      readJson(await fetch(`${gw.httpUrl}/v1/alerts`, { headers: auth }), Schema.Array(Alert)),
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
