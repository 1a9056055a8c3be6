/**
 * The batching clock. One fiber for the whole process wakes every BATCH_INTERVAL_MS
 * (`Schedule.spaced`, counted from the start of the previous pass: see `flushClock`) and flushes
 * the connections that have something queued: one frame per connection per pass, a `batch` when
 * two or more messages wait. A per-connection timer would cost one wake-up per connection per
 * interval (333,000/s at 10,000 connections) for nothing.
 *
 * With FLUSH_SLICE_MS set (0, off, by default), a pass hands the event loop a turn after each
 * that many ms of writing. At 10,000 connections a pass is about 200 ms of socket writes; in one
 * go, everything else waits behind it (client frames, pongs, and on a cluster instance the events
 * from Redis, which then wait for the whole pass before they are even fanned out). In slices, an
 * event that arrives during a pass still reaches the connections the pass has not written yet.
 * Off by default because the benchmarks could not show it paying: docs/internals/batching.md
 * ("Sliced passes") has the figures.
 * Except while connections are being accepted (a reconnect storm): Node accepts one connection
 * per event-loop turn, and an unsliced pass over thousands of sockets is one turn, so during a
 * storm the accept queue drained at about one connection per pass (10/s) and its connections
 * waited there past their clients' handshake timeout. A pass that starts after new connections
 * were accepted, or while setups wait, is sliced (ACCEPT_SLICE_MS when FLUSH_SLICE_MS is 0).
 * And while setups wait for a slot (`Admission`), a pass is followed by a rest as long as itself
 * before the next (`flushClock`): passes to the clients already restored ran back to back and
 * took nearly all of the process's CPU, the storm's setups what was left. Resting, the restored
 * clients' updates wait up to a pass longer, conflated per symbol, and the setups get at least
 * half the time. A trickle of new connections (set up at once, none waiting) changes nothing.
 *
 * Frames over OUTBOUND_FREE_WRITE_BYTES (bursts: a `subscribe`'s snapshots, a restore's missed
 * messages, a reader catching up after conflation) are written for at most FLUSH_LARGE_FRAMES_MS
 * per pass; those not reached go first in the next pass, and every small frame is written in every
 * pass. 4,800 clients subscribing to 200 stocks at once queue about 360 KB of snapshots each: in
 * one pass that was 1.7 GB written over 24 s (the kernel takes it while the clients' buffers have
 * room, so the outbound budget sees none of it), and the feed, which waits for a pass to end
 * (`DeliveryPass`), published nothing meanwhile: every other client heard nothing for 24 s. Bounded,
 * a pass ends after that much bulk, the feed ticks, and readers get their usual small frames.
 * Connections that answered the outbound budget's ping (`OutboundBudget.ask`, sent with a
 * connection's first large frame) go first among those carried: clients that stopped reading
 * take frames like readers while their kernel buffers have room, and a reader among hundreds of
 * them otherwise waited for all of them, 2-4.6 s at a time.
 *
 * It is also where backpressure lives: a connection whose socket holds more than
 * SEND_BUFFER_LIMIT_BYTES unsent is skipped (its outbox keeps conflating), and one
 * that stays over the limit for SLOW_CONSUMER_TIMEOUT_MS is closed with 1013 (its session is
 * kept). And the total across connections: a frame for a reader that is behind is written only
 * within OUTBOUND_BUDGET_BYTES, and the worst offenders are conflated, then closed, when it is
 * exceeded (`OutboundBudget.ts`).
 */
import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { DeliveryPass } from "../lifecycle/DeliveryPass.js"
import { yieldingToIo, yieldToIo } from "../lifecycle/EventLoop.js"
import { deliveryLoop } from "../lifecycle/sharedScheduler.js"
import { GatewayStats, type GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { nowIso } from "../protocol/encode.js"
import { CloseCode } from "../protocol/errors.js"
import { AnswerGate } from "./AnswerGate.js"
import type { Conn, FlushScheduler } from "./Conn.js"
import { OutboundBudget } from "./OutboundBudget.js"
import { type WriteOptions, writeOut } from "./writeOut.js"

export interface FlusherShape {
  readonly scheduler: FlushScheduler
  /** Where answers with snapshots wait for room in the outbound budget. */
  readonly answers: AnswerGate
  /** Sends what a connection has queued right now, regardless of the clock (used before a close). */
  readonly flushNow: (conn: Conn) => void
  /** Messages waiting in all outboxes (the stats' `queued_messages`). */
  readonly queuedMessages: () => number
  /** One pass over every dirty connection; the clock calls it, tests may too. */
  readonly flushAll: Effect.Effect<void>
  /** How long the last pass took, in milliseconds (0 before the first). */
  readonly lastPassMs: () => number
  /** The clock's least rest after the last pass: its length while setups wait for a slot, else 0. */
  readonly restMs: () => number
  /** Completes when no pass is running (provided to the feed as `DeliveryPass`). */
  readonly idle: Effect.Effect<void>
}

export class Flusher extends Context.Tag("quotecast/Flusher")<Flusher, FlusherShape>() {}

export interface FlushOptions extends WriteOptions {
  /** Total outbound bytes (socket queues + outboxes) across connections (see `OutboundBudget`). */
  readonly outboundBudgetBytes: number
  /** Share of it, in percent, up to which answers with snapshots are queued at once (`AnswerGate`). */
  readonly outboundAnswerSharePercent: number
  /** A pass gives the event loop a turn after writing this long (ms); 0: never, one go. */
  readonly flushSliceMs: number
  /** How long a pass may spend writing frames over `outboundFreeWriteBytes` (FLUSH_LARGE_FRAMES_MS). */
  readonly flushLargeFramesMs: number
}

/** The slice of a pass while connections are being accepted, when FLUSH_SLICE_MS is 0 (see the header). */
const ACCEPT_SLICE_MS = 2

/** While a pass runs, it gets this many times the time the rest of the process gets (4: 80%). */
const PASS_SHARE = 4

export const makeFlusher = (opts: FlushOptions, stats: GatewayStatsImpl) => {
  const budget = new OutboundBudget(opts.outboundBudgetBytes, stats)
  const answers = new AnswerGate(budget, stats, opts.outboundAnswerSharePercent / 100)
  /** Ends a pass for the budget, then lets waiting answers through as room allows. */
  const endBudgetPass = () => {
    budget.endPass()
    answers.endPass()
    stats.outboundAnswersWaiting = answers.waiting
  }
  /** Connections with something queued, for the next pass. */
  let dirty = new Set<Conn>()
  /** The connections the running pass has yet to reach (it took them from `dirty` when it started). */
  let passing = new Set<Conn>()
  /** Large frames a pass had no time left for: the next pass starts with them, in the same order. */
  let carried = new Set<Conn>()
  /** Those of them for connections that showed they read (`OutboundBudget.proven`): first of all. */
  let carriedReaders = new Set<Conn>()
  /** A failure on one socket must not stop the clock for everyone: that connection is closed instead. */
  const failures: Array<unknown> = []
  const safeWriteOut = (conn: Conn, now: number, timestamp: string, force: boolean): boolean => {
    try {
      return writeOut(conn, budget, stats, now, timestamp, opts, force)
    } catch (error) {
      failures.push(error)
      conn.requestClose({ code: CloseCode.internalError, reason: "internal error", flush: false })
      return true
    } finally {
      budget.count(conn)
    }
  }
  let lastPassMs = 0
  /** `stats.connectionsAccepted` when the last pass started. */
  let acceptedSeen = 0
  /** Whoever waits in `idle` for the running pass to end. */
  let idleWaiters: Array<() => void> = []
  let running = false
  const endPass = Effect.sync(() => {
    running = false
    // Only a pass interrupted in a turn it gave away leaves connections unwritten.
    for (const conn of passing) dirty.add(conn)
    passing.clear()
    const waiters = idleWaiters
    idleWaiters = []
    for (const resume of waiters) resume()
  })
  const idle: Effect.Effect<void> = Effect.suspend(() =>
    !running
      ? Effect.void
      : Effect.async<void>((resume) => {
          idleWaiters.push(() => resume(Effect.void))
        }),
  )
  const onePass = Effect.gen(function* () {
    if (carried.size > 0 || carriedReaders.size > 0) {
      for (const conn of carried) carriedReaders.add(conn)
      for (const conn of dirty) carriedReaders.add(conn)
      dirty = carriedReaders
      carried = new Set()
      carriedReaders = new Set()
    }
    if (dirty.size === 0) {
      lastPassMs = 0
      // Sockets that hold bytes drain (or close) without anything new queued for them.
      endBudgetPass()
      return
    }
    const started = performance.now()
    // The pass walks the connections dirty when it started. What arrives for one it has not
    // reached yet rides along; what arrives for one it has written marks it for the next pass
    // (one frame per connection per pass), at the place it was written: so the next pass meets
    // connections in about the same order, and nothing waits much longer than one pass.
    const pass = dirty
    dirty = new Set()
    passing = pass
    running = true
    let now = yield* Clock.currentTimeMillis
    // One envelope timestamp per slice: every batch of it was flushed "now".
    let timestamp = nowIso(now)
    let sliceStart = started
    const accepting = stats.connectionsAccepted !== acceptedSeen || stats.setupsWaiting > 0
    acceptedSeen = stats.connectionsAccepted
    const sliceMs = opts.flushSliceMs > 0 ? opts.flushSliceMs : accepting ? ACCEPT_SLICE_MS : 0
    let slice = sliceMs
    /** Time this pass spent writing large frames. */
    let largeMs = 0
    for (const conn of pass) {
      pass.delete(conn)
      if (conn.outbox.bytes <= opts.outboundFreeWriteBytes) {
        if (!safeWriteOut(conn, now, timestamp, false)) dirty.add(conn)
      } else {
        budget.ask(conn)
        if (largeMs < opts.flushLargeFramesMs) {
          const start = performance.now()
          if (!safeWriteOut(conn, now, timestamp, false)) dirty.add(conn)
          largeMs += performance.now() - start
        } else {
          ;(budget.proven(conn) ? carriedReaders : carried).add(conn)
          budget.count(conn)
          stats.largeFramesCarried++
        }
      }
      if (sliceMs === 0) continue
      const away = performance.now()
      if (away - sliceStart < slice) continue
      yield* yieldToIo
      sliceStart = performance.now()
      // What runs meanwhile gets at most a fifth of the pass's time: a long turn away (a flood
      // of ingest requests) earns the pass a longer slice, so I/O cannot starve it.
      slice = Math.max(sliceMs, PASS_SHARE * (sliceStart - away))
      now = yield* Clock.currentTimeMillis
      timestamp = nowIso(now)
    }
    endBudgetPass()
    lastPassMs = performance.now() - started
    stats.flushPassMs.observe(lastPassMs)
    if (failures.length > 0) {
      const errors = failures.splice(0)
      yield* Effect.logError("flush failed; connections closed", errors.map(String))
    }
  })
  // However a pass ends (even interrupted in a turn it gave away), its waiters are let go.
  const flushAll = Effect.ensuring(onePass, endPass)
  const flusher: FlusherShape = {
    answers,
    scheduler: {
      // Only a sliced pass lets deliveries in while it runs; a connection it has not reached
      // yet stays in it then (what arrived rides along). Unsliced, no delivery meets `passing`.
      schedule: !opts.batching
        ? (conn) => {
            // Unbatched: send at once unless held or backpressured; then the clock retries.
            const now = Date.now()
            if (!safeWriteOut(conn, now, nowIso(now), false)) dirty.add(conn)
          }
        : (conn) => {
            if (!passing.has(conn)) dirty.add(conn)
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
      for (const c of passing) n += c.outbox.size
      for (const c of dirty) n += c.outbox.size
      for (const c of carried) if (!dirty.has(c)) n += c.outbox.size
      for (const c of carriedReaders) if (!dirty.has(c)) n += c.outbox.size
      return n
    },
    flushAll,
    lastPassMs: () => lastPassMs,
    restMs: () => (stats.setupsWaiting > 0 ? lastPassMs : 0),
    idle,
  }
  return flusher
}

/**
 * The flush clock: `Schedule.spaced(interval)` whose delay is counted from the start of the pass
 * that just ran, so a pass starts every BATCH_INTERVAL_MS (docs/protocol.md "`batch`") however long the
 * pass took. Counted from the end, a 25 ms pass would make the cadence 55 ms: batches grow, and
 * conflation drops prices that a 30 ms cadence would have delivered. A pass longer than the
 * interval is followed by the next after one turn of the event loop, never by a burst of
 * catch-up passes; except that the delay is never shorter than `restMs()` (while setups wait,
 * see the header).
 */
export const flushClock = (intervalMs: number, lastPassMs: () => number, restMs: () => number = () => 0) =>
  yieldingToIo(
    Schedule.spaced(Duration.millis(intervalMs)).pipe(
      Schedule.modifyDelay(() => Duration.millis(Math.max(intervalMs - lastPassMs(), restMs()))),
    ),
  )

const FlusherOnly = Layer.scoped(
  Flusher,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const stats = yield* GatewayStats
    const flusher = makeFlusher(config, stats)
    yield* Effect.forkScoped(
      deliveryLoop(
        Effect.repeat(
          flusher.flushAll,
          flushClock(config.batchIntervalMs, flusher.lastPassMs, flusher.restMs),
        ),
      ),
    )
    return flusher
  }),
)

/** The flusher and its clock, also provided as the feed's `DeliveryPass`. */
export const FlusherLive = Layer.effect(
  DeliveryPass,
  Effect.map(Flusher, (f) => ({ idle: f.idle })),
).pipe(Layer.provideMerge(FlusherOnly))
