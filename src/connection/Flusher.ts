/**
 * The batching clock. One fiber for the whole process wakes every BATCH_INTERVAL_MS
 * (`Schedule.spaced`) and flushes the connections that have something queued: one frame per
 * connection per pass, a `batch` when two or more messages wait. A per-connection timer would
 * cost one wake-up per connection per interval (333,000/s at 10,000 connections) for nothing.
 *
 * It is also where backpressure lives: a connection whose socket holds more than
 * SEND_BUFFER_LIMIT_BYTES unsent is skipped (its outbox keeps conflating), and one that stays
 * over the limit for SLOW_CONSUMER_TIMEOUT_MS is closed with 1013 (its session is kept).
 */
import { Clock, Context, Effect, Layer, Schedule } from "effect"
import { WebSocket } from "ws"
import { AppConfig } from "../config/AppConfig.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { nowIso, seal, sealBatch } from "../protocol/encode.js"
import type { Conn, FlushScheduler } from "./Conn.js"

export interface FlusherShape {
  readonly scheduler: FlushScheduler
  /** Sends what a connection has queued right now, regardless of the clock (used before a close). */
  readonly flushNow: (conn: Conn) => void
  /** Messages waiting in all outboxes (the stats' `queued_messages`). */
  readonly queuedMessages: () => number
  /** One pass over every dirty connection; the clock calls it, tests may too. */
  readonly flushAll: Effect.Effect<void>
}

export class Flusher extends Context.Tag("quotecast/Flusher")<Flusher, FlusherShape>() {}

export interface FlushOptions {
  readonly batching: boolean
  readonly sendBufferLimitBytes: number
  readonly slowConsumerTimeoutMs: number
}

/** Writes one connection's queue as one frame. Returns false when it must stay dirty. */
const writeOut = (
  conn: Conn,
  stats: GatewayStatsImpl,
  now: number,
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
  let frame: string
  if (n === 1 || !opts.batching) {
    if (n === 1) {
      frame = seal((items[0] as { body: string }).body, ++conn.seq)
      ws.send(frame)
      stats.bytesSent += frame.length
      stats.framesSent++
    } else {
      for (const item of items) {
        frame = seal(item.body, ++conn.seq)
        ws.send(frame)
        stats.bytesSent += frame.length
      }
      stats.framesSent += n
    }
  } else {
    const sealed = new Array<string>(n)
    for (let i = 0; i < n; i++) sealed[i] = seal((items[i] as { body: string }).body, ++conn.seq)
    frame = sealBatch(sealed, conn.seq, nowIso(now))
    ws.send(frame)
    stats.bytesSent += frame.length
    stats.framesSent++
  }
  stats.batchSize.observe(n)
  stats.messagesSent += n
  conn.messagesSent += n
  return true
}

export const makeFlusher = (opts: FlushOptions, stats: GatewayStatsImpl) => {
  const dirty = new Set<Conn>()
  const flushAll = Effect.map(Clock.currentTimeMillis, (now) => {
    if (dirty.size === 0) return
    const started = performance.now()
    for (const conn of dirty) {
      if (writeOut(conn, stats, now, opts, false)) dirty.delete(conn)
    }
    stats.flushPassMs.observe(performance.now() - started)
  })
  const flusher: FlusherShape = {
    scheduler: {
      schedule: opts.batching
        ? (conn) => {
            dirty.add(conn)
          }
        : (conn) => {
            // Unbatched: send at once unless held or backpressured; then the clock retries.
            if (!writeOut(conn, stats, Date.now(), opts, false)) dirty.add(conn)
          },
      conflated: () => {
        stats.conflated++
      },
    },
    flushNow: (conn) => {
      writeOut(conn, stats, Date.now(), opts, true)
      dirty.delete(conn)
    },
    queuedMessages: () => {
      let n = 0
      for (const c of dirty) n += c.outbox.size
      return n
    },
    flushAll,
  }
  return flusher
}

export const FlusherLive = Layer.scoped(
  Flusher,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const stats = yield* GatewayStats
    const flusher = makeFlusher(config, stats)
    yield* Effect.forkScoped(
      Effect.repeat(flusher.flushAll, Schedule.spaced(`${config.batchIntervalMs} millis`)),
    )
    return flusher
  }),
)
