/**
 * The scheduler the gateway's fibers run on (set for the whole gateway in `Gateway.ts`, and by
 * each connection's runner): Effect's default policy (microtasks, then a macrotask after 2,048
 * nested drains so that I/O gets in), bounded in time as well, drained through one runner.
 *
 * Since Effect 3.20 the default scheduler keeps a runner per fiber, in a WeakMap, so that
 * fibers run concurrently from outside Effect keep their AsyncLocalStorage contexts apart. That
 * is a runner, its task buckets, a bound drain function and a WeakMap entry for every fiber that
 * ever waited: about 300 bytes per connection, 3 MB at 10,000 (measured with heap snapshots).
 * quotecast uses no AsyncLocalStorage, and with one runner every connection woken in the same
 * tick is drained in the same microtask.
 */
import { Scheduler } from "effect"

/** Nested microtask drains before a macrotask, as in Effect's default scheduler. */
const MAX_MICROTASK_DEPTH = 2048

/**
 * Nor for longer than this (ms): thousands of connections woken at once (a storm of clients that
 * all subscribe to 200 targets) keep the drains going for seconds, and timers (the flush clock)
 * and I/O wait behind them: a reader that keeps up went 16 s without a message.
 */
const MAX_CHAIN_MS = 20
let chainStart = 0

const runner = new Scheduler.SchedulerRunner((depth, drain) => {
  if (depth === 0) chainStart = performance.now()
  if (depth >= MAX_MICROTASK_DEPTH || performance.now() - chainStart > MAX_CHAIN_MS)
    setTimeout(() => drain(0), 0)
  else Promise.resolve().then(() => drain(depth + 1))
})

export const sharedScheduler: Scheduler.Scheduler = Scheduler.make(
  (task, priority) => runner.scheduleTask(task, priority),
  Scheduler.defaultShouldYield,
)
