/**
 * The per-connection state that the hot paths touch: the socket, the outbox, the sequence
 * counter and a few flags. Kept deliberately small (10,000+ of these live at once). The
 * connection's behaviour lives in `Connection.ts`; this is only its data plus `deliver`,
 * the sink the topic hub calls for every event.
 */
import { Deferred, Effect, Exit, FiberId } from "effect"
import type { WebSocket } from "ws"
import type { BrokerShape } from "../broker/Broker.js"
import { SubscriptionSet } from "../broker/SubscriptionSet.js"
import type { Sink } from "../broker/TopicHub.js"
import { isAlertBody, type Outgoing } from "../protocol/encode.js"
import { CloseCode } from "../protocol/errors.js"
import type { Subscriptions } from "../session/SessionStore.js"
import { Inbox } from "./Inbox.js"
import type { Outbox } from "./Outbox.js"

export interface CloseRequest {
  readonly code: number
  readonly reason: string
  /** Whether queued messages are sent before the close frame (not for a reader that is stuck). */
  readonly flush: boolean
}

export interface FlushScheduler {
  readonly schedule: (conn: Conn) => void
  readonly conflated: () => void
}

/** Bounds on one connection's queues, from the config; one object shared by every connection. */
export interface ConnLimits {
  /** Frames waiting for the actor (WS_MAX_QUEUED_INPUT_FRAMES); over it: close 1008. */
  readonly maxInboundFrames: number
  /** Characters of those frames (WS_MAX_QUEUED_INPUT_BYTES); over it: close 1008. */
  readonly maxInboundChars: number
  /** Unkeyed messages waiting (SLOW_CONSUMER_MAX_QUEUED_MESSAGES); over it the reader is hopeless: close 1013. */
  readonly maxUnkeyed: number
}

const UNBOUNDED: ConnLimits = {
  maxInboundFrames: Number.POSITIVE_INFINITY,
  maxInboundChars: Number.POSITIVE_INFINITY,
  maxUnkeyed: Number.POSITIVE_INFINITY,
}

/** Tells the actor to stop taking frames: the connection is closing. */
export const CLOSE = Symbol("close")
/** A binary frame (the protocol is JSON text only). */
export const BINARY = Symbol("binary")
/** What the socket callbacks hand to the actor, in arrival order. */
export type Inbound = string | typeof CLOSE | typeof BINARY | { readonly socketError: string }

/** Connections numbered in arrival order (wrapping well inside small-integer range). */
let arrivals = 0
const nextArrival = (): number => {
  arrivals = (arrivals + 1) % 2 ** 30
  return arrivals
}

/** Since when a connection refused by the outbound budget has been watched, and what it showed. */
export interface BudgetProbe {
  since: number
  /** The flush pass at `since`: evidence needs I/O turns, which come between passes. */
  sincePass: number
  /** Bytes its socket held when last looked at: less later means the client reads. */
  held: number
  /** Whether it was sent the budget's ping (its socket was empty), and answered it. */
  pinged: boolean
  answered: boolean
}

export class Conn implements Sink {
  /** Arrival number: periodic sweeps (the heartbeat) spread connections over their slices by it. */
  readonly arrival = nextArrival()
  /** Last sequence number sent on this connection's session. */
  seq: number
  sessionId: string
  userId: string | null
  /** Nesting count of operations that must not be interleaved with a flush (see Outbox.insertAt). */
  held = 0
  /** Set once the connection decided to close; no more deliveries. */
  closing = false
  /** The first close asked for (by the client, a limit, a takeover, ...); later ones are ignored. */
  closeRequest: CloseRequest | undefined = undefined
  /** Heartbeat: whether a pong (or any frame) arrived since the last ping. */
  alive = true
  /** When the socket first stayed over its send-buffer limit (or was conflated by the budget), 0 when not. */
  overLimitSince = 0
  /** Outbound bytes (socket queue + outbox) this connection was last counted for (`OutboundBudget`). */
  counted = 0
  /** The flush pass that last counted it. */
  countedPass = 0
  /** The flush pass in which the outbound budget refused it (0: not refused): its outbox conflates until it drains or finds room. */
  budgetConflatedAt = 0
  /** What the budget watches, once it refused it, to learn whether it still reads (`OutboundBudget`). */
  budgetProbe: BudgetProbe | undefined = undefined
  /** Lets an answer waiting for room in the outbound budget through (`AnswerGate`): on a close, or an answer to the budget's ping. */
  budgetWake: (() => void) | undefined = undefined
  messagesSent = 0
  messagesReceived = 0
  lastActivity: number
  /** Window bits for compressing this connection's frames; undefined without permessage-deflate. */
  readonly deflateBits: number | undefined
  /** The topics this connection receives: the only record of its subscriptions. */
  readonly subs: SubscriptionSet
  /** Frames for the actor, in arrival order. Unbounded so CLOSE always fits; floods are cut by `Connection.ts`. */
  readonly inbound = new Inbox<Inbound>()
  /** Characters of the text frames waiting in `inbound`, bounded by `limits.maxInboundChars`. */
  inboundChars = 0
  limits: ConnLimits = UNBOUNDED
  /** Set once the connection's scope has closed. */
  private ended = false
  /** Made only when someone waits for the end (a takeover): most connections never need one. */
  private endedSignal: Deferred.Deferred<void> | undefined = undefined

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    readonly outbox: Outbox,
    readonly scheduler: FlushScheduler,
    broker: BrokerShape,
    readonly connectedAt: number,
    session: { readonly id: string; readonly userId: string | null; readonly lastSequence: number },
    deflateBits?: number,
  ) {
    this.deflateBits = deflateBits
    this.sessionId = session.id
    this.userId = session.userId
    this.seq = session.lastSequence
    this.lastActivity = connectedAt
    this.subs = new SubscriptionSet(broker, this)
  }

  deliver(msg: Outgoing): void {
    if (this.closing) return
    if (this.outbox.offer(msg)) {
      // It replaced a waiting message, so the connection is already due for a pass: nothing to
      // schedule. Most deliveries to a reader that is behind end here (13 million in a storm of
      // 4,800 non-readers), and each saved two lookups in the flusher's sets.
      this.scheduler.conflated()
      return
    }
    if (this.outbox.unkeyed > this.limits.maxUnkeyed) {
      this.requestClose({ code: CloseCode.tryAgainLater, reason: "slow consumer", flush: false })
      return
    }
    this.scheduler.schedule(this)
  }

  /**
   * Asks the actor to end the connection; the first request wins. Safe from any callback.
   *
   * A close that does not flush (a reader that is stuck or gone) gives up the queue at once,
   * alerts aside (its session delivers them on restore), and takes no more deliveries: the actor
   * may get its turn only seconds later, behind a storm's work, and until then that queue counted
   * against the outbound budget and grew with every event.
   */
  requestClose(req: CloseRequest): void {
    if (this.closeRequest !== undefined) return
    this.closeRequest = req
    if (!req.flush) {
      this.closing = true
      this.giveUpQueue()
    }
    // An answer waiting for room lets its actor go on, to find the close.
    this.budgetWake?.()
    this.inbound.offer(CLOSE)
  }

  /** Drops what can no longer be written; alerts stay, for the session to deliver on restore (`binding.ts`). */
  giveUpQueue(): void {
    this.outbox.shed(isAlertBody)
  }

  /** Queues a connection-specific message (answer, error, snapshot). */
  enqueue(msg: Outgoing): void {
    this.deliver(msg)
  }

  subscriptionCount(): number {
    return this.subs.count
  }

  /** What the connection subscribes to, by type (for the session, the admin list, stats). */
  subscriptions(): Subscriptions {
    return {
      stock: this.subs.targets("stock"),
      market: this.subs.targets("market"),
      sector: this.subs.targets("sector"),
      candle: this.subs.targets("candle"),
    }
  }

  /** Completes once the connection's scope has closed (see Registry.takeover). */
  awaitEnd(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.ended) return Effect.void
      this.endedSignal ??= Deferred.unsafeMake<void>(FiberId.none)
      return Deferred.await(this.endedSignal)
    })
  }

  /** Called by the connection's scope as it closes. */
  markEnded(): void {
    this.ended = true
    if (this.endedSignal !== undefined) Deferred.unsafeDone(this.endedSignal, Exit.void)
  }
}
