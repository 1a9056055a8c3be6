/**
 * Admission of connection setups: what keeps a reconnect storm (10,000 clients with saved
 * sessions returning at once) from starving the connections already served, and from paying for
 * work nobody receives.
 *
 * A setup (token check, session restore with its takeover, snapshots, `reconnected`) costs far
 * more than a handshake and, in embedded mode, never waits on I/O. At most `limit` setups hold a
 * slot at once, and they start in slices of at most `turnBudgetMs` per event-loop turn (at least
 * one), the rest in later turns (`setImmediate`), so timers and I/O run between slices.
 *
 * Short turns are also what lets connections in. Node (libuv 1.45+) accepts one connection per
 * listening socket per turn: a turn of 32 setups (~30 ms) accepted one, the kernel's accept queue
 * filled, its overflow dropped SYNs that clients resend after 1, 3, 7, 15 s, and most of a storm
 * missed its handshake timeout before its request was read. So a turn that accepted a connection
 * (`noteAccept`) is followed by turns that only accept, up to `ACCEPT_TURNS` before a slice.
 *
 * What waits is mostly an upgrade before its handshake (`enqueue`, from `http/Server.ts`): only
 * its HTTP parse is paid, and its socket is still read, so a client that gives up leaves the
 * queue at once, costing no handshake, setup or takeover. Its turn hands it a pass (`start`):
 * the handshake runs and its setup takes the slot ahead of the queue. A setup started without a
 * pass while others wait waits after its handshake instead (`admitted`, socket paused). Waiters
 * go in arrival order, at most `queueLimit` beyond the free slots, each at most `waitMs`; past
 * either an upgrade gets 503 with Retry-After, a setup a close 1013, and clients retry.
 *
 * One timer for all waiters, while some wait; the counters are in GatewayStats.
 */
import { Effect } from "effect"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { AdmissionRejected, type AdmissionRejectReason, type Startable, Ticket } from "./admissionTicket.js"

export { AdmissionRejected, type AdmissionRejectReason, type Startable, Ticket }

/** How often the queue's head is checked for waits past `waitMs` (one timer for all). */
const SWEEP_MS = 100
/** Turns in a row given to accepting (see the header) before a slice of setups. */
const ACCEPT_TURNS = 8
/** Retry-After bounds, seconds. */
const MIN_RETRY_AFTER_S = 1
const MAX_RETRY_AFTER_S = 60

export class Admission {
  /** Setups holding a slot. */
  inFlight = 0
  /** Slots freed since the last hand-on; they become usable in the next turn. */
  #freed = 0
  /** Slots kept for the setups of upgrades just started from the queue (see `#handOn`). */
  #passes = 0
  /** When this turn's slice of setups began (performance.now()), or -1 before its first. */
  #sliceStart = -1
  /** A connection was accepted since the last hand-on; and how many hand-ons in a row only accepted. */
  #accepted = false
  #acceptTurns = 0
  /** Hand-ons so far: one per event-loop turn while anything waits. */
  #handOns = 0
  readonly #queue: Array<Ticket> = []
  #head = 0
  #handOnScheduled = false
  #sweep: ReturnType<typeof setInterval> | undefined = undefined
  /** Slots granted so far, and the pace of grants (per second) while some wait. */
  #granted = 0
  #grantedAtSweep = 0
  #sweptAt = 0
  #perSecond = 0

  constructor(
    /** Setups in flight at once, and started per event-loop turn. */
    readonly limit: number,
    /** Connections that may wait for a slot. */
    readonly queueLimit: number,
    /** Longest wait for a slot, in ms. */
    readonly waitMs: number,
    readonly stats: GatewayStatsImpl,
    /** Time per event-loop turn spent starting setups (at least one per turn), in ms. */
    readonly turnBudgetMs = 2,
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

  /**
   * An upgrade asks for its turn: refused at once past the free slots and `queueLimit`, else
   * queued and started no sooner than the next turn's hand-on. A connection that waited in the
   * kernel's queue past its client's patience comes with the request and the FIN together: the
   * request is read in one turn, the end only in the next, so starting at once would set it up
   * for nobody. Returns the ticket (for `cancel`), or undefined when refused.
   */
  enqueue(startable: Startable): Ticket | undefined {
    if (this.waiting >= this.queueLimit + Math.max(0, this.limit - this.inFlight)) {
      this.stats.admissionRejectedQueueFull++
      startable.refuse("queue_full", this.retryAfterS())
      return undefined
    }
    const ticket = new Ticket()
    ticket.startable = startable
    ticket.epoch = this.#handOns
    this.#wait(ticket)
    return ticket
  }

  /** The server accepted a connection: the next turns accept before they set up (see the header). */
  noteAccept(): void {
    this.#accepted = true
    this.stats.connectionsAccepted++
  }

  /** A queued upgrade's client went away before its turn: it leaves the queue, counted. Idempotent. */
  cancel(ticket: Ticket): void {
    if (ticket.done) return
    this.stats.admissionAbandoned++
    this.release(ticket)
  }

  /** The server is stopping: queued upgrades are refused (waiting setups end with their fibers). */
  refuseWaiting(): void {
    for (let i = this.#head; i < this.#queue.length; i++) {
      const ticket = this.#queue[i] as Ticket
      const startable = ticket.startable
      if (startable === undefined || ticket.done) continue
      ticket.startable = undefined
      ticket.done = true
      startable.refuse("shutdown", MIN_RETRY_AFTER_S)
    }
  }

  /** Seconds until the queue ahead of a newcomer should have drained, at the pace of recent grants. */
  retryAfterS(): number {
    const pace = Math.max(this.#perSecond, 1)
    return Math.min(MAX_RETRY_AFTER_S, Math.max(MIN_RETRY_AFTER_S, Math.ceil((this.waiting + 1) / pace)))
  }

  #acquire(ticket: Ticket): Effect.Effect<void, AdmissionRejected> {
    // A pass: this setup belongs to an upgrade that was just started from the queue.
    if (this.#passes > 0 && this.inFlight < this.limit) {
      this.#passes--
      this.#grant(ticket)
      return Effect.void
    }
    if (this.waiting === 0 && this.inFlight < this.limit && this.#sliceHasRoom()) {
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
      this.#wait(ticket)
      // Interrupted while waiting (shutdown): leave the queue; `ensuring` releases.
      return Effect.sync(() => this.release(ticket))
    })
  }

  #wait(ticket: Ticket): void {
    ticket.queuedAt = Date.now()
    this.#queue.push(ticket)
    this.stats.admissionQueued++
    this.stats.setupsWaiting = this.waiting
    this.#startSweep()
    this.#scheduleHandOn()
  }

  /** A setup may start outside the hand-on within this turn's slice (opened by its first start). */
  #sliceHasRoom(): boolean {
    const now = performance.now()
    if (this.#sliceStart < 0) {
      this.#sliceStart = now
      this.#scheduleHandOn()
      return true
    }
    return now - this.#sliceStart < this.turnBudgetMs
  }

  #grant(ticket: Ticket): void {
    ticket.held = true
    this.inFlight++
    this.#granted++
    this.stats.setupsInFlight = this.inFlight
    if (this.inFlight > this.stats.setupsInFlightPeak) this.stats.setupsInFlightPeak = this.inFlight
  }

  /** Frees the ticket's slot, or takes it out of the queue. Idempotent. */
  release(ticket: Ticket): void {
    if (ticket.done) return
    ticket.done = true
    // A waiting ticket stays in the array and is skipped when it reaches the head.
    ticket.resume = undefined
    ticket.startable = undefined
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

  /**
   * In a later turn than the releases: free their slots and admit waiters in arrival order, for
   * at most `turnBudgetMs`; a turn that accepted a connection leaves the setups to a later one.
   */
  readonly #handOn = (): void => {
    this.#handOnScheduled = false
    // Upgrades queued since the previous hand-on have not had a turn of reading yet (see `enqueue`).
    const fresh = this.#handOns++
    this.inFlight -= this.#freed
    this.#freed = 0
    if (this.#accepted && this.#acceptTurns < ACCEPT_TURNS && this.waiting > 0) {
      this.#accepted = false
      this.#acceptTurns++
      this.#sliceStart = -1
      this.#scheduleHandOn()
      return
    }
    this.#accepted = false
    this.#acceptTurns = 0
    const now = Date.now()
    const began = performance.now()
    this.#sliceStart = began
    // Counted here too: a started upgrade whose setup did not take its slot synchronously must
    // not let the whole queue start in this turn.
    let room = this.limit - this.inFlight
    while (
      room > 0 &&
      this.inFlight < this.limit &&
      this.#head < this.#queue.length &&
      performance.now() - began < this.turnBudgetMs
    ) {
      const ticket = this.#queue[this.#head] as Ticket
      const resume = ticket.resume
      const startable = ticket.startable
      // In arrival order: the ones behind it are fresh too.
      if (startable !== undefined && ticket.epoch >= fresh) break
      this.#head++
      if (startable?.isGone() === true) {
        ticket.startable = undefined
        ticket.done = true
        this.stats.admissionAbandoned++
        continue
      }
      if (resume !== undefined) {
        ticket.resume = undefined
        room--
        this.#grant(ticket)
        this.stats.admissionWaitMs.observe(now - ticket.queuedAt)
        resume(Effect.void)
      } else if (startable !== undefined) {
        // Its setup starts synchronously inside `start` and takes the pass; an upgrade that
        // fails its handshake starts none, and the pass is dropped.
        ticket.startable = undefined
        ticket.done = true
        room--
        this.stats.admissionWaitMs.observe(now - ticket.queuedAt)
        this.#passes = 1
        startable.start()
        this.#passes = 0
      }
    }
    this.#sliceStart = -1
    this.#compact()
    this.stats.setupsInFlight = this.inFlight
    // What is left starts in a later turn, once I/O and timers have had theirs.
    if (this.waiting > 0 && this.inFlight < this.limit) this.#scheduleHandOn()
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
    this.#sweptAt = Date.now()
    this.#grantedAtSweep = this.#granted
    this.#sweep = setInterval(this.#expire, Math.min(SWEEP_MS, this.waitMs))
    this.#sweep.unref()
  }

  #stopSweep(): void {
    if (this.#sweep === undefined) return
    clearInterval(this.#sweep)
    this.#sweep = undefined
  }

  /** Rejects the waits older than `waitMs` (they are at the head: the queue is in arrival order); measures the pace. */
  readonly #expire = (): void => {
    const now = Date.now()
    if (now > this.#sweptAt) {
      const pace = ((this.#granted - this.#grantedAtSweep) * 1000) / (now - this.#sweptAt)
      this.#perSecond = this.#perSecond === 0 ? pace : 0.7 * this.#perSecond + 0.3 * pace
      this.#sweptAt = now
      this.#grantedAtSweep = this.#granted
    }
    const oldest = now - this.waitMs
    while (this.#head < this.#queue.length) {
      const ticket = this.#queue[this.#head] as Ticket
      const resume = ticket.resume
      const startable = ticket.startable
      if ((resume !== undefined || startable !== undefined) && ticket.queuedAt > oldest) break
      this.#head++
      if (resume === undefined && startable === undefined) continue
      ticket.resume = undefined
      ticket.startable = undefined
      ticket.done = true
      this.stats.admissionRejectedTimeout++
      if (resume !== undefined) resume(Effect.fail(new AdmissionRejected({ reason: "timeout" })))
      else startable?.refuse("timeout", this.retryAfterS())
    }
    this.#compact()
  }
}
