/**
 * Load run configuration: defaults (those of the original document's load script), validation
 * (loopback only unless allowed, bounded counts and times), and the code list.
 */
import { Data, Effect } from "effect"
import { INSTRUMENT_ROWS } from "../../src/market/data/instruments.js"

export interface LoadConfig {
  readonly url: string
  readonly connections: number
  readonly durationSec: number
  readonly rampUpSec: number
  /** Connections opened together per ramp step; steps are spread evenly over the ramp-up. */
  readonly batchSize: number
  /** Stock codes subscribed per connection. */
  readonly subscriptions: number
  readonly codes: ReadonlyArray<string>
  readonly compression: boolean
  readonly token: string | undefined
  /** Fully parse one frame in N (1 = every frame). */
  readonly sample: number
  /** Spread source addresses over 127.0.0.1..127.0.0.N (each address has its own ephemeral ports). */
  readonly sourceIps: number
  readonly allowRemote: boolean
  /** WebSocket opening handshake limit. */
  readonly connectTimeoutSec: number
  /** How long closing all connections at the end may take before the rest are terminated. */
  readonly closeTimeoutSec: number
}

export const defaults = {
  url: "ws://localhost:8000/v1/ws",
  connections: 1000,
  durationSec: 60,
  rampUpSec: 10,
  batchSize: 100,
  subscriptions: 20,
  compression: false,
  sample: 10,
  sourceIps: 1,
  connectTimeoutSec: 10,
  closeTimeoutSec: 5,
} as const

/** Bounds that keep a run finite and inside one process (open files are limited to 20,000 here). */
export const limits = {
  maxConnections: 19_000,
  maxDurationSec: 3600,
  maxRampUpSec: 600,
  maxSourceIps: 254,
  /** A connection may hold at most MAX_SUBSCRIPTIONS (200 by default) targets. */
  maxSubscriptions: 200,
} as const

export class LoadConfigError extends Data.TaggedError("LoadConfigError")<{ readonly message: string }> {}

/** The stock codes shipped with the gateway (its real universe). */
export const builtinCodes: ReadonlyArray<string> = INSTRUMENT_ROWS.map(([code]) => code)

/**
 * The codes a gateway started with `UNIVERSE_SIZE=n` knows: the shipped ones, then synthetic
 * "900000", "900001", ... until there are n (the same rule as src/market/Universe.ts).
 */
export const universeCodes = (n: number): ReadonlyArray<string> => {
  const codes = [...builtinCodes]
  for (let i = 0; codes.length < n; i++) codes.push(String(900000 + i))
  return codes
}

/** `--codes` wins, then `--universe`, else the shipped list. */
export const resolveCodes = (
  codes: string | undefined,
  universe: number | undefined,
): ReadonlyArray<string> => {
  if (codes !== undefined) {
    return [
      ...new Set(
        codes
          .split(",")
          .map((c) => c.trim())
          .filter((c) => c !== ""),
      ),
    ]
  }
  return universe !== undefined ? universeCodes(universe) : builtinCodes
}

const LOOPBACK_HOSTS = new Set(["localhost", "::1", "[::1]"])

export const isLoopbackHost = (hostname: string): boolean =>
  LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)

/** The `count` codes connection `index` subscribes to: consecutive slices, so load spreads over all codes. */
export const codesFor = (
  codes: ReadonlyArray<string>,
  count: number,
  index: number,
): ReadonlyArray<string> => {
  const n = Math.min(count, codes.length)
  const out: Array<string> = []
  const start = (index * n) % Math.max(1, codes.length)
  for (let k = 0; k < n; k++) out.push(codes[(start + k) % codes.length] as string)
  return out
}

const fail = (message: string) => Effect.fail(new LoadConfigError({ message }))

const checkRange = (name: string, value: number, min: number, max: number, integer: boolean) =>
  !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))
    ? fail(`--${name} must be ${integer ? "an integer" : "a number"} in ${min}..${max} (got ${value})`)
    : Effect.void

/**
 * Checks a configuration and normalizes its URL: `localhost` becomes 127.0.0.1 (no resolver
 * lookups for thousands of sockets, and `--source-ips` needs an IPv4 target); the token is added.
 */
export const validateConfig = (config: LoadConfig): Effect.Effect<LoadConfig, LoadConfigError> =>
  Effect.gen(function* () {
    let url: URL
    try {
      url = new URL(config.url)
    } catch {
      return yield* fail(`--url is not a URL: ${config.url}`)
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") return yield* fail("--url must be ws:// or wss://")
    if (!config.allowRemote && !isLoopbackHost(url.hostname)) {
      return yield* fail(
        `refusing non-loopback target ${url.hostname}; pass --allow-remote to load another host`,
      )
    }
    if (url.hostname === "localhost") url.hostname = "127.0.0.1"
    if (config.sourceIps > 1 && !/^127\./.test(url.hostname)) {
      return yield* fail("--source-ips needs an IPv4 loopback target (127.x.x.x or localhost)")
    }
    yield* checkRange("connections", config.connections, 1, limits.maxConnections, true)
    yield* checkRange("duration", config.durationSec, 0, limits.maxDurationSec, false)
    yield* checkRange("ramp-up", config.rampUpSec, 0, limits.maxRampUpSec, false)
    yield* checkRange("batch-size", config.batchSize, 1, limits.maxConnections, true)
    yield* checkRange("subscriptions", config.subscriptions, 0, limits.maxSubscriptions, true)
    yield* checkRange("sample", config.sample, 1, 1_000_000, true)
    yield* checkRange("source-ips", config.sourceIps, 1, limits.maxSourceIps, true)
    yield* checkRange("connect-timeout", config.connectTimeoutSec, 0.1, 120, false)
    yield* checkRange("close-timeout", config.closeTimeoutSec, 0, 120, false)
    if (config.subscriptions > 0 && config.codes.length === 0) return yield* fail("no codes to subscribe to")
    if (config.token !== undefined && config.token !== "") url.searchParams.set("token", config.token)
    return { ...config, url: url.toString() }
  })
