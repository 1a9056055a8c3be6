/**
 * Admission of connection setups: what keeps a reconnect storm (10,000 clients with saved
 * sessions returning at once after a deploy or a network blip) from starving the connections
 * already served.
 *
 * A setup (token check, session restore with its takeover, snapshot reads, `reconnected` and
 * what was missed) costs far more than a WebSocket handshake, and in embedded mode it runs
 * without waiting on I/O: a burst of upgrades would run thousands of them back to back and
 * hold the event loop for seconds, so the flush clock could not deliver to anyone. Here at most
 * `limit` setups hold a slot at once, and a freed slot is handed on only in a later event-loop
 * turn (`setImmediate`): whatever arrives in one turn, at most `limit` setups start before
 * timers and I/O (the flush pass, pongs, the feed) get their turn. The rest wait in arrival
 * order, at most `queueLimit` of them, each at most `waitMs`; beyond either the connection is
 * closed with 1013 (try again later), which the SDK retries with its jittered backoff.
 *
 * One timer for all waiters (running only while some wait), no timer or closure per
 * connection beyond the wait itself; the counters are in GatewayStats.
 */
import { Data, Effect } from "effect"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"

export class AdmissionRejected extends Data.TaggedError("AdmissionRejected")<{
  readonly reason: "queue_full" | "timeout"
}> {}

/** One connection's claim on a setup slot, from the wait (if any) until its release. */
export class Ticket {
  /** Holds a slot. */
  held = false
  /** Released or rejected: nothing more to do. */
  done = false
  /** Set while waiting in the queue. */
  resume: ((e: Effect.Effect<void, AdmissionRejected>) => void) | undefined = undefined
  queuedAt = 0
}

/** How often the queue's head is checked for waits past `waitMs` (one timer for all). */
const SWEEP_MS = 100

export class Admission {
  /** Setups holding a slot. */
  inFlight = 0
  /** Slots freed since the last hand-on; they become usable in the next turn. */
  #freed = 0
  readonly #queue: Array<Ticket> = []
  #head = 0
  #handOnScheduled = false
  #sweep: ReturnType<typeof setInterval> | undefined = undefined

  constructor(
    /** Setups in flight at once, and started per event-loop turn. */
    readonly limit: number,
    /** Setups that may wait for a slot. */
    readonly queueLimit: number,
    /** Longest wait for a slot, in ms. */
    readonly waitMs: number,
    readonly stats: GatewayStatsImpl,
  ) {}

  /** Connections waiting for a slot (cancelled ones included until they reach the head). */
  get waiting(): number {
    return this.#queue.length - this.#head
  }

  /**
   * Runs `setup` once it holds a slot, and frees the slot however it ends (the release is
   * registered before the wait starts, so an interruption at any point cannot leak one).
   */
  admitted<A, E, R>(setup: Effect.Effect<A, E, R>): Effect.Effect<A, E | AdmissionRejected, R> {
    return Effect.suspend(() => {
      const ticket = new Ticket()
      return Effect.ensuring(
        Effect.zipRight(this.#acquire(ticket), setup),
        Effect.sync(() => this.release(ticket)),
      )
    })
  }

  #acquire(ticket: Ticket): Effect.Effect<void, AdmissionRejected> {
    if (this.waiting === 0 && this.inFlight < this.limit) {
      this.#grant(ticket)
      return Effect.void
    }
    if (this.waiting >= this.queueLimit) {
      ticket.done = true
      this.stats.admissionRejectedQueueFull++
      return Effect.fail(new AdmissionRejected({ reason: "queue_full" }))
    }
    return Effect.async<void, AdmissionRejected>((resume) => {
      ticket.resume = resume
      ticket.queuedAt = Date.now()
      this.#queue.push(ticket)
      this.stats.admissionQueued++
      this.stats.setupsWaiting = this.waiting
      this.#startSweep()
      // Interrupted while waiting (shutdown): leave the queue; `ensuring` releases.
      return Effect.sync(() => this.release(ticket))
    })
  }

  #grant(ticket: Ticket): void {
    ticket.held = true
    this.inFlight++
    this.stats.setupsInFlight = this.inFlight
    if (this.inFlight > this.stats.setupsInFlightPeak) this.stats.setupsInFlightPeak = this.inFlight
  }

  /** Frees the ticket's slot, or takes it out of the queue. Idempotent. */
  release(ticket: Ticket): void {
    if (ticket.done) return
    ticket.done = true
    // A waiting ticket stays in the array and is skipped when it reaches the head.
    ticket.resume = undefined
    if (ticket.held) {
      ticket.held = false
      this.#freed++
    }
    // Also for a cancelled wait: the waiters behind it may be admissible now.
    this.#scheduleHandOn()
  }

  #scheduleHandOn(): void {
    if (this.#handOnScheduled) return
    this.#handOnScheduled = true
    setImmediate(this.#handOn)
  }

  /** In a later turn than the releases: free their slots and admit waiters in arrival order. */
  readonly #handOn = (): void => {
    this.#handOnScheduled = false
    this.inFlight -= this.#freed
    this.#freed = 0
    const now = Date.now()
    while (this.inFlight < this.limit && this.#head < this.#queue.length) {
      const ticket = this.#queue[this.#head++] as Ticket
      const resume = ticket.resume
      if (resume === undefined) continue
      ticket.resume = undefined
      this.#grant(ticket)
      this.stats.admissionWaitMs.observe(now - ticket.queuedAt)
      resume(Effect.void)
    }
    this.#compact()
    this.stats.setupsInFlight = this.inFlight
  }

  /** Drops the consumed head of the queue once it is large, so the array does not grow forever. */
  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0
      this.#head = 0
      this.#stopSweep()
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head)
      this.#head = 0
    }
    this.stats.setupsWaiting = this.waiting
  }

  #startSweep(): void {
    if (this.#sweep !== undefined) return
    this.#sweep = setInterval(this.#expire, Math.min(SWEEP_MS, this.waitMs))
    this.#sweep.unref()
  }

  #stopSweep(): void {
    if (this.#sweep === undefined) return
    clearInterval(this.#sweep)
    this.#sweep = undefined
  }

  /** Rejects the waits older than `waitMs`: they are at the head, the queue is in arrival order. */
  readonly #expire = (): void => {
    const oldest = Date.now() - this.waitMs
    while (this.#head < this.#queue.length) {
      const ticket = this.#queue[this.#head] as Ticket
      const resume = ticket.resume
      if (resume !== undefined && ticket.queuedAt > oldest) break
      this.#head++
      if (resume === undefined) continue
      ticket.resume = undefined
      ticket.done = true
      this.stats.admissionRejectedTimeout++
      resume(Effect.fail(new AdmissionRejected({ reason: "timeout" })))
    }
    this.#compact()
  }
}
