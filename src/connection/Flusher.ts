/**
 * The batching clock. One fiber for the whole process wakes every BATCH_INTERVAL_MS
 * (`Schedule.spaced`, counted from the start of the previous pass: see `flushClock`) and flushes
 * the connections that have something queued: one frame per connection per pass, a `batch` when
 * two or more messages wait. A per-connection timer would cost one wake-up per connection per
 * interval (333,000/s at 10,000 connections) for nothing.
 *
 * It is also where backpressure lives: a connection whose socket holds more than
 * SEND_BUFFER_LIMIT_BYTES unsent is skipped (its outbox keeps conflating), and one that stays
 * over the limit for SLOW_CONSUMER_TIMEOUT_MS is closed with 1013 (its session is kept).
 */
import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import { WebSocket } from "ws"
import { AppConfig } from "../config/AppConfig.js"
import { yieldingToIo } from "../lifecycle/EventLoop.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { nowIso, seal, sealBatch } from "../protocol/encode.js"
import type { Conn, FlushScheduler } from "./Conn.js"
import { FrameDeflater } from "./deflate.js"
import { writeCompressedText, writeText } from "./wire.js"

export interface FlusherShape {
  readonly scheduler: FlushScheduler
  /** Sends what a connection has queued right now, regardless of the clock (used before a close). */
  readonly flushNow: (conn: Conn) => void
  /** Messages waiting in all outboxes (the stats' `queued_messages`). */
  readonly queuedMessages: () => number
  /** One pass over every dirty connection; the clock calls it, tests may too. */
  readonly flushAll: Effect.Effect<void>
  /** How long the last pass took, in milliseconds (0 before the first). */
  readonly lastPassMs: () => number
}

export class Flusher extends Context.Tag("quotecast/Flusher")<Flusher, FlusherShape>() {}

export interface FlushOptions {
  readonly batching: boolean
  readonly sendBufferLimitBytes: number
  readonly slowConsumerTimeoutMs: number
}

/** Frames shorter than this go uncompressed: deflate costs more than it saves on them. */
export const COMPRESSION_THRESHOLD = 1024
/** zlib level 1: the fastest, and JSON with repeated keys still shrinks to about a quarter. */
const deflater = new FrameDeflater(COMPRESSION_THRESHOLD, 1)

/** Writes one text frame, compressed when the connection negotiated it and the frame is large enough. */
const sendFrame = (conn: Conn, frame: string, stats: GatewayStatsImpl): void => {
  stats.bytesSent += frame.length
  if (conn.deflateBits !== undefined && frame.length >= COMPRESSION_THRESHOLD) {
    const payload = deflater.compressText(frame, conn.deflateBits)
    writeCompressedText(conn.ws, payload)
    stats.compressedFrames++
    stats.bytesOnWire += payload.length
  } else {
    stats.bytesOnWire += writeText(conn.ws, frame)
  }
}

/** Writes one connection's queue as one frame. Returns false when it must stay dirty. */
const writeOut = (
  conn: Conn,
  stats: GatewayStatsImpl,
  now: number,
  timestamp: string,
  opts: FlushOptions,
  force: boolean,
): boolean => {
  const ws = conn.ws
  if (ws.readyState !== WebSocket.OPEN) {
    conn.outbox.drain()
    return true
  }
  if (!force) {
    if (conn.held > 0) return false
    if (ws.bufferedAmount > opts.sendBufferLimitBytes) {
      if (conn.overLimitSince === 0) conn.overLimitSince = now
      else if (now - conn.overLimitSince >= opts.slowConsumerTimeoutMs) {
        stats.slowConsumerCloses++
        conn.requestClose({ code: 1013, reason: "slow consumer", flush: false })
      }
      return false
    }
    conn.overLimitSince = 0
  }
  const items = conn.outbox.drain()
  const n = items.length
  if (n === 0) return true
  if (n === 1 || !opts.batching) {
    for (const item of items) sendFrame(conn, seal(item.body, ++conn.seq), stats)
    stats.framesSent += n
  } else {
    const sealed = new Array<string>(n)
    for (let i = 0; i < n; i++) sealed[i] = seal((items[i] as { body: string }).body, ++conn.seq)
    sendFrame(conn, sealBatch(sealed, conn.seq, timestamp), stats)
    stats.framesSent++
  }
  stats.batchSize.observe(n)
  stats.messagesSent += n
  conn.messagesSent += n
  return true
}

export const makeFlusher = (opts: FlushOptions, stats: GatewayStatsImpl) => {
  const dirty = new Set<Conn>()
  /** A failure on one socket must not stop the clock for everyone: that connection is closed instead. */
  const failures: Array<unknown> = []
  const safeWriteOut = (conn: Conn, now: number, timestamp: string, force: boolean): boolean => {
    try {
      return writeOut(conn, stats, now, timestamp, opts, force)
    } catch (error) {
      failures.push(error)
      conn.requestClose({ code: 1011, reason: "internal error", flush: false })
      return true
    }
  }
  let lastPassMs = 0
  const flushAll = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (dirty.size === 0) {
      lastPassMs = 0
      return
    }
    const started = performance.now()
    // One envelope timestamp for the whole pass: every batch of it was flushed "now".
    const timestamp = nowIso(now)
    for (const conn of dirty) {
      if (safeWriteOut(conn, now, timestamp, false)) dirty.delete(conn)
    }
    lastPassMs = performance.now() - started
    stats.flushPassMs.observe(lastPassMs)
    if (failures.length > 0) {
      const errors = failures.splice(0)
      yield* Effect.logError("flush failed; connections closed", errors.map(String))
    }
  })
  const flusher: FlusherShape = {
    scheduler: {
      schedule: opts.batching
        ? (conn) => {
            dirty.add(conn)
          }
        : (conn) => {
            // Unbatched: send at once unless held or backpressured; then the clock retries.
            const now = Date.now()
            if (!safeWriteOut(conn, now, nowIso(now), false)) dirty.add(conn)
          },
      conflated: () => {
        stats.conflated++
      },
    },
    flushNow: (conn) => {
      const now = Date.now()
      safeWriteOut(conn, now, nowIso(now), true)
      dirty.delete(conn)
    },
    queuedMessages: () => {
      let n = 0
      for (const c of dirty) n += c.outbox.size
      return n
    },
    flushAll,
    lastPassMs: () => lastPassMs,
  }
  return flusher
}

/**
 * The flush clock: `Schedule.spaced(interval)` whose delay is counted from the start of the pass
 * that just ran, so a pass starts every BATCH_INTERVAL_MS (PROTOCOL.md "batch") however long the
 * pass took. Counted from the end, a 25 ms pass would make the cadence 55 ms: batches grow, and
 * conflation drops prices that a 30 ms cadence would have delivered. A pass longer than the
 * interval is followed by the next after one turn of the event loop, never by a burst of
 * catch-up passes.
 */
export const flushClock = (intervalMs: number, lastPassMs: () => number) =>
  yieldingToIo(
    Schedule.spaced(Duration.millis(intervalMs)).pipe(
      Schedule.modifyDelay(() => Duration.millis(intervalMs - lastPassMs())),
    ),
  )

export const FlusherLive = Layer.scoped(
  Flusher,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const stats = yield* GatewayStats
    const flusher = makeFlusher(config, stats)
    yield* Effect.forkScoped(
      Effect.repeat(flusher.flushAll, flushClock(config.batchIntervalMs, flusher.lastPassMs)),
    )
    return flusher
  }),
)
