/**
 * The scheduler the gateway's fibers run on (set for the whole gateway in `Gateway.ts`, and by
 * each connection's runner): Effect's default policy (microtasks, then a macrotask after 2,048
 * nested drains so that I/O gets in), bounded in time as well, drained through one runner, and
 * with the delivery loops (the feed, the flush clock) ahead of everything else.
 *
 * Since Effect 3.20 the default scheduler keeps a runner per fiber, in a WeakMap, so that
 * fibers run concurrently from outside Effect keep their AsyncLocalStorage contexts apart. That
 * is a runner, its task buckets, a bound drain function and a WeakMap entry for every fiber that
 * ever waited: about 300 bytes per connection, 3 MB at 10,000 (measured with heap snapshots).
 * quotecast uses no AsyncLocalStorage, and with one runner every connection woken in the same
 * tick is drained in the same microtask.
 *
 * Effect's runner runs every task queued when a drain starts, however long they take, and in
 * the order they were queued. 4,800 clients that each send three `subscribe`s of 100 stocks at
 * once queue 14,400 commands: one drain ran them for 3 s, the feed and the flush clock, woken by
 * their timers meanwhile, queued behind them, and every client went 3 s without a message (and
 * the event loop with it). Here fibers run with `DELIVERY_PRIORITY` (`deliveryLoop`) go first in
 * every drain, and the others then run for what is left of MAX_CHAIN_MS in this turn of the event
 * loop (or a quarter of what the delivery loops took, if more), the rest waiting for the next
 * turn: under a burst of commands the feed still publishes and the clock still flushes, and the
 * commands take what is left; under a fan-out the CPU cannot keep up with, the rest of the
 * process still gets a fifth of it.
 *
 * Within that rest, HTTP requests (`httpLane`: health checks, metrics scrapes, the API, ingest)
 * take turns with everything else, one task each. In one queue, a metrics scrape that arrived
 * behind those 14,400 `subscribe`s waited 20 s for them (a request that completes without
 * waiting for anything, as `/health` does, is answered in the I/O callback that reads it; one
 * that waits, for the metrics registry or for Redis, resumes through this scheduler).
 */
import { Effect, Scheduler } from "effect"
import { Fifo } from "./Fifo.js"

/** Nested microtask drains before a macrotask, as in Effect's default scheduler. */
const MAX_MICROTASK_DEPTH = 2048

/**
 * Nor for longer than this (ms): thousands of connections woken at once (a storm of clients that
 * all subscribe to 200 targets) keep the drains going for seconds, and timers (the flush clock)
 * and I/O wait behind them: a reader that keeps up went 16 s without a message.
 */
const MAX_CHAIN_MS = 20

/** Tasks run between two looks at the clock: reading it costs more than most tasks. */
const CLOCK_EVERY = 16

/** The delivery loops get at most this many times the time of the rest when both have work (4: 80%). */
const DELIVERY_SHARE = 4

/** The scheduling priority of the delivery loops (`Effect.withSchedulingPriority`); others run at 0. */
export const DELIVERY_PRIORITY = 1

/** Runs `self` (a loop that delivers market data) ahead of other fibers on the shared scheduler. */
export const deliveryLoop = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withSchedulingPriority(self, DELIVERY_PRIORITY)

/** The scheduling priority of HTTP requests' fibers (`httpLane`). */
export const HTTP_PRIORITY = -1

/**
 * Runs `self`, and every fiber it starts, in turns with the rest of the non-delivery work rather
 * than behind it. Applied where the HTTP server's handler captures its runtime, so that each
 * request's fiber starts in the lane.
 */
export const httpLane = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withSchedulingPriority(self, HTTP_PRIORITY)

type Task = () => void

/** Tasks in the order they were queued. */
class TaskQueue extends Fifo<Task> {
  add(task: Task): void {
    this.push(task)
  }

  take(): Task {
    return this.shift()
  }
}

const delivery = new TaskQueue()
const http = new TaskQueue()
const others = new TaskQueue()
let running = false

/**
 * Time spent in drains in this turn of the event loop. Counted per turn, not per chain of
 * microtasks: each I/O callback is followed by its own microtasks, so 4,800 clients' `subscribe`
 * frames read in one poll phase were 4,700 chains of one drain each, every one under the bound,
 * 3.7 s in all without a turn for timers or I/O. Reset when the loop reaches its check phase.
 */
let turnSpent = 0
let turnResetQueued = false
const resetTurn = () => {
  turnSpent = 0
  turnResetQueued = false
}

/** The next drain: in this turn while it has time left, else in the next one. */
const scheduleDrain = (depth: number): void => {
  if (depth >= MAX_MICROTASK_DEPTH || turnSpent > MAX_CHAIN_MS) setTimeout(() => drain(0), 0)
  else queueMicrotask(() => drain(depth))
}

const drain = (depth: number): void => {
  const start = performance.now()
  // The delivery loops' tasks queued when the drain starts; what they queue runs in the next
  // drain (after the microtasks they queued), as with Effect's runner.
  for (let urgent = delivery.size; urgent > 0; urgent--) delivery.take()()
  // Then the others, for at least what is left of MAX_CHAIN_MS and a quarter of what the delivery
  // loops took: a feed that falls behind runs back to back (a fan-out of a second under
  // overload), and the rest of the process (closing connections, HTTP, commands) keeps a fifth
  // of the time.
  const othersStart = performance.now()
  const othersMs = Math.max(MAX_CHAIN_MS - turnSpent, (othersStart - start) / DELIVERY_SHARE)
  // Including what they queue meanwhile: one fiber that yields after every piece of work would
  // otherwise get one piece per drain behind a delivery loop that takes a second.
  let ran = 0
  while (others.size + http.size > 0) {
    // HTTP and the rest alternate while both have work.
    const lane = (ran % 2 === 0 && http.size > 0) || others.size === 0 ? http : others
    lane.take()()
    if (++ran % CLOCK_EVERY === 0 && performance.now() - othersStart > othersMs) break
  }
  turnSpent += performance.now() - start
  if (!turnResetQueued) {
    turnResetQueued = true
    setImmediate(resetTurn)
  }
  if (delivery.size + http.size + others.size === 0) running = false
  else scheduleDrain(depth + 1)
}

export const sharedScheduler: Scheduler.Scheduler = Scheduler.make((task, priority) => {
  if (priority >= DELIVERY_PRIORITY) delivery.add(task)
  else if (priority === HTTP_PRIORITY) http.add(task)
  else others.add(task)
  if (!running) {
    running = true
    // A delivery loop woken by its timer starts at once, whatever the turn has spent: deferred,
    // the feed and the flush clock lost a turn each time another timer's work came first in the
    // same turn (scenario A's p99 went from 0.94-1.00x the bare server's to 1.34-1.38x).
    if (priority >= DELIVERY_PRIORITY) queueMicrotask(() => drain(0))
    else scheduleDrain(0)
  }
}, Scheduler.defaultShouldYield)
