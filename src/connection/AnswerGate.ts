/**
 * Answers that queue snapshots (a `subscribe`'s) wait for room in the outbound budget. A
 * connection that does not read owes, once answered, its snapshots at once and, conflated, up to
 * one live message per key later: about as much again. So answers are queued at once only while
 * what is owed (`OutboundBudget.inUse`) plus what was reserved for answers under way stays within
 * a share of OUTBOUND_BUDGET_BYTES (OUTBOUND_ANSWER_SHARE_PERCENT, half by default), leaving the rest for what the connections already
 * answered go on being sent. Beyond it, an answer waits, in arrival order, before its
 * subscriptions are joined (so its connection is not fanned out to meanwhile), and its connection
 * is sent the budget's ping (`OutboundBudget.ask`): a client that answers it reads, and is
 * answered at once, room or not; the others are let through at the ends of flush passes as room
 * returns. In a storm of 4,800 clients that subscribe to 200 stocks each and never read, the
 * answers queued regardless took what is owed to 288-527 MB against 256 MB, and the fan-out to
 * all of them took the CPU every other client waited for (docs/reliability.md).
 *
 * The size of an answer is not known before its snapshots are read, which is after its topics are
 * joined; it is estimated from the answers before it (bytes per topic, a moving average).
 */
import { Effect } from "effect"
import { Fifo } from "../lifecycle/Fifo.js"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import type { Conn } from "./Conn.js"
import type { OutboundBudget } from "./OutboundBudget.js"

/** Weight of the latest answer in the estimate of bytes per topic. */
const LEARNING = 0.2

interface Waiter {
  readonly conn: Conn
  readonly want: number
  /** Unset once granted, or given up (its fiber interrupted). */
  resume: ((reserved: number) => void) | undefined
}

class Waiters extends Fifo<Waiter> {
  add(w: Waiter): void {
    this.push(w)
  }
  first(): Waiter | undefined {
    return this.peek()
  }
  dropFirst(): void {
    this.shift()
  }
}

export class AnswerGate {
  /** Bytes reserved for answers let through and not yet queued. */
  private reserved = 0
  /** The estimate of an answer's bytes per topic. */
  private bytesPerTopic = 0
  private readonly waiters = new Waiters()

  constructor(
    private readonly budget: OutboundBudget,
    private readonly stats: GatewayStatsImpl,
    /** Share of the budget up to which answers are queued at once (see the header). */
    private readonly share = 0.5,
  ) {}

  /** Bytes reserved for an answer of `topics` snapshots, or undefined when it must `wait`. */
  reserve(conn: Conn, topics: number): number | undefined {
    const want = this.estimate(topics)
    if (!this.budget.proven(conn) && (this.waiters.size > 0 || !this.fits(want))) return undefined
    this.reserved += want
    return want
  }

  /** Waits for room (or for the connection to answer the budget's ping, or to close); resolves with what was reserved. */
  wait(conn: Conn, topics: number): Effect.Effect<number> {
    return Effect.async<number>((resume) => {
      const w: Waiter = { conn, want: this.estimate(topics), resume: (r) => resume(Effect.succeed(r)) }
      this.waiters.add(w)
      conn.budgetWake = () => this.grant(w)
      this.budget.ask(conn)
      this.stats.outboundAnswersWaited++
      return Effect.sync(() => {
        w.resume = undefined
        conn.budgetWake = undefined
      })
    })
  }

  /** The answer was queued (or given up): its reservation is now counted as what its connection owes. */
  release(reserved: number): void {
    this.reserved -= reserved
  }

  /** Learns from an answer's size. */
  learn(bytes: number, topics: number): void {
    if (topics === 0) return
    const perTopic = bytes / topics
    this.bytesPerTopic =
      this.bytesPerTopic === 0 ? perTopic : this.bytesPerTopic + LEARNING * (perTopic - this.bytesPerTopic)
  }

  /** At the end of a flush pass: answers that wait are let through, in order, while there is room. */
  endPass(): void {
    for (let w = this.waiters.first(); w !== undefined; w = this.waiters.first()) {
      // One granted meanwhile (its connection answered the ping, or closed), or given up, just goes.
      if (w.resume !== undefined) {
        if (!this.fits(w.want)) return
        this.grant(w)
      }
      this.waiters.dropFirst()
    }
  }

  /** Answers waiting, for the stats. */
  get waiting(): number {
    return this.waiters.size
  }

  private estimate(topics: number): number {
    return Math.ceil(topics * this.bytesPerTopic)
  }

  private fits(want: number): boolean {
    const room = this.budget.limitBytes * this.share - this.budget.inUse - this.reserved
    // One answer larger than the whole share still goes, alone, or it would wait forever.
    return want <= room || (this.reserved === 0 && room > 0)
  }

  private grant(w: Waiter): void {
    const resume = w.resume
    if (resume === undefined) return
    w.resume = undefined
    w.conn.budgetWake = undefined
    this.reserved += w.want
    resume(w.want)
  }
}
