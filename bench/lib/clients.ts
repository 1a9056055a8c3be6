/**
 * The benchmark's load connections: the load runner's `ConnectionPool` (load/lib), which also
 * tells when each connection last received something (scenario E: "every connection keeps
 * receiving"). quotecast and the bare `ws` baseline speak quotecast's protocol (its default
 * dialect); this file adds Socket.IO's.
 *
 * The Socket.IO dialect speaks Engine.IO 4 over a raw `ws` socket (no socket.io-client: its
 * per-packet decoding and event-emitter plumbing would make the client the bottleneck): `0`
 * open -> send `40`; `40` namespace connected -> `42["subscribe",[codes]]`; `2` ping -> `3`;
 * `42[...]` an event: one message, parsed one in N for latency.
 *
 * `candleDialect` is quotecast's with a share of the connections also on the `candle`
 * subscription (the cost of candles at scenario B's load, bench/candles.ts).
 */
import { Either, Schema } from "effect"
import {
  ConnectionPool,
  countFrame,
  type Dialect,
  LATENCY_TYPES,
  LatencyHistogram,
  type LoadConfig,
  type LoadConnection,
  type LoadStats,
  nowMs,
  parseFrame,
  quotecastDialect,
  Sampler,
} from "../../load/lib/index.js"
import { unpackFrame } from "../../src/client/frames.js"
import type { CandleInterval } from "../../src/protocol/client.js"
import { CandleUpdate } from "../../src/protocol/server.js"

export type Protocol = "quotecast" | "socketio"

const EVENT_PREFIX = "42"

/** Engine.IO 4 / Socket.IO 5 packets, one per frame. */
export const socketIoDialect: Dialect = {
  url: (configured) => `${configured}?EIO=4&transport=websocket`,
  // Socket.IO subscribes once the namespace handshake is done (see `frame`).
  opened: () => {},
  frame: (pool, conn, buf) => {
    const { stats } = pool
    const first = buf[0]
    if (first === 0x32 /* "2" ping */ && buf.length === 1) {
      conn.ws.send("3")
      return
    }
    if (first === 0x30 /* "0" open */) {
      conn.ws.send("40")
      return
    }
    const text = buf.toString("utf8")
    if (text.startsWith("40")) {
      if (pool.config.subscriptions > 0)
        conn.ws.send(`42${JSON.stringify(["subscribe", pool.codesOf(conn)])}`)
      return
    }
    if (!text.startsWith(EVENT_PREFIX)) return
    pool.count(conn, 1)
    const sampled = pool.sampler.next()
    const subscribed = text.startsWith('42["subscribed"')
    if (!sampled && !subscribed) return
    const receivedAt = nowMs()
    let packet: unknown
    try {
      packet = JSON.parse(text.slice(EVENT_PREFIX.length))
    } catch {
      stats.unparsableFrames++
      return
    }
    if (!Array.isArray(packet)) return
    const [type, data] = packet as [unknown, unknown]
    if (typeof type !== "string" || typeof data !== "object" || data === null) return
    const d = data as { readonly timestamp?: unknown; readonly targets?: unknown }
    if (type === "subscribed" && Array.isArray(d.targets)) stats.subscribedTargets += d.targets.length
    if (!sampled) return
    stats.sampledFrames++
    stats.countType(type)
    if (LATENCY_TYPES.has(type) && typeof d.timestamp === "string") {
      const t = Date.parse(d.timestamp)
      if (Number.isFinite(t)) stats.recordLatency(receivedAt - t)
    }
  },
}

/** Which connections also subscribe to candles, and to what. */
export interface CandleLoad {
  /** One connection in `every` (10: 10% of them). */
  readonly every: number
  /** Series per such connection: `series` of its stocks, at `interval`. */
  readonly series: number
  readonly interval: CandleInterval
}

/** What the candle connections received: counted exactly, latency sampled. */
export class CandleCounts {
  connections = 0
  /** Candle targets asked for (each is answered in a `subscribed`, counted in `LoadStats`). */
  requestedTargets = 0
  updates = 0
  windowUpdates = 0
  snapshots = 0
  /** `candle_update`'s receive time minus its `timestamp` (when the bar was published), in the window. */
  readonly latency = new LatencyHistogram()
  constructor(readonly sampler: Sampler) {}
}

/**
 * Whether connection `index` subscribes to candles. Not simply `index % every === 0`: with
 * `codesFor`, those connections would all hold the same codes; taking a different residue in
 * each block of `every` connections spreads them over all the code groups.
 */
export const isCandleConnection = (load: CandleLoad, index: number): boolean =>
  index % load.every === Math.floor(index / load.every) % load.every

/** The candle targets of a candle connection: `series` of its codes, a different slice per block. */
export const candleTargets = (
  load: CandleLoad,
  codes: ReadonlyArray<string>,
  index: number,
): ReadonlyArray<string> => {
  const n = Math.min(load.series, codes.length)
  const start = (Math.floor(index / (load.every * load.every)) * n) % Math.max(1, codes.length)
  return Array.from({ length: n }, (_, k) => `${codes[(start + k) % codes.length]}:${load.interval}`)
}

const CANDLE_UPDATE = Buffer.from('"type":"candle_update"')
const CANDLE_SNAPSHOT = Buffer.from('"type":"candle_snapshot"')
const CANDLE_SUBSCRIBED = Buffer.from('"subscription_type":"candle"')

const occurrences = (buf: Buffer, needle: Buffer): number => {
  let n = 0
  for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + needle.length)) n++
  return n
}

const decodeCandleUpdate = Schema.decodeUnknownEither(CandleUpdate)

/**
 * quotecast's dialect, plus the `candle` subscription on the connections `isCandleConnection`
 * picks. The other connections run `quotecastDialect` unchanged, so the variant with candles
 * differs from scenario B only by what the candle connections ask for. A candle connection's
 * frames are counted the same way, and scanned for `candle_update` (counted exactly) and
 * `candle_snapshot`; until its candle subscription is answered, each of its frames holding that
 * answer is parsed (so `LoadStats.subscribedTargets` covers the candle targets too); one in
 * `sample` of its frames with a `candle_update` is decoded for the update's latency.
 */
export const candleDialect = (load: CandleLoad, counts: CandleCounts): Dialect => {
  const candleConns = new WeakSet<LoadConnection>()
  const awaitingAnswer = new WeakSet<LoadConnection>()
  return {
    url: (configured) => configured,
    opened: (pool, conn) => {
      quotecastDialect.opened(pool, conn)
      if (!isCandleConnection(load, conn.index)) return
      const targets = candleTargets(load, pool.codesOf(conn), conn.index)
      conn.ws.send(JSON.stringify({ type: "subscribe", subscription_type: "candle", targets }))
      candleConns.add(conn)
      awaitingAnswer.add(conn)
      counts.connections++
      counts.requestedTargets += targets.length
    },
    frame: (pool, conn, buf) => {
      if (!candleConns.has(conn)) {
        quotecastDialect.frame(pool, conn, buf)
        return
      }
      const answered = awaitingAnswer.has(conn) && buf.indexOf(CANDLE_SUBSCRIBED) >= 0
      if (!answered) quotecastDialect.frame(pool, conn, buf)
      else {
        // The frame with the candle answer: counted like any other, parsed whatever the sampler says.
        awaitingAnswer.delete(conn)
        const { stats } = pool
        countFrame(pool, conn, buf)
        const parsed = parseFrame(buf.toString("utf8"))
        if (parsed === undefined) stats.unparsableFrames++
        else
          for (const m of parsed.messages) {
            if (m.errorCode !== undefined) stats.countError(m.errorCode)
            stats.subscribedTargets += m.subscribedTargets
          }
      }
      counts.snapshots += occurrences(buf, CANDLE_SNAPSHOT)
      const updates = occurrences(buf, CANDLE_UPDATE)
      if (updates === 0) return
      counts.updates += updates
      if (!pool.stats.measuring) return
      counts.windowUpdates += updates
      if (!counts.sampler.next()) return
      const receivedAt = nowMs()
      const unpacked = unpackFrame(buf.toString("utf8"))
      if (Either.isLeft(unpacked)) {
        pool.stats.unparsableFrames++
        return
      }
      for (const item of unpacked.right.items) {
        const m = decodeCandleUpdate(item)
        if (Either.isRight(m)) counts.latency.recordMillis(receivedAt - Date.parse(m.right.timestamp))
      }
    },
  }
}

export const makeBenchPool = (
  protocol: Protocol,
  config: LoadConfig,
  stats: LoadStats,
  candles?: { readonly load: CandleLoad; readonly counts: CandleCounts },
): ConnectionPool =>
  new ConnectionPool(
    config,
    stats,
    protocol === "socketio"
      ? socketIoDialect
      : candles !== undefined
        ? candleDialect(candles.load, candles.counts)
        : quotecastDialect,
  )
