/**
 * The per-connection state that the hot paths touch: the socket, the outbox, the sequence
 * counter and a few flags. Kept deliberately small (10,000+ of these live at once). The
 * connection's behaviour lives in `Connection.ts`; this is only its data plus `deliver`,
 * the sink the topic hub calls for every event.
 */
import type { Deferred, Queue } from "effect"
import type { WebSocket } from "ws"
import type { Sink } from "../broker/TopicHub.js"
import type { SubscriptionType } from "../protocol/client.js"
import type { Outgoing } from "../protocol/encode.js"
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

/** Above this many unkeyed messages waiting, the reader is hopeless: close with 1013. */
export const MAX_UNKEYED = 5_000

/** Tells the actor to stop taking frames: the connection is closing. */
export const CLOSE = Symbol("close")
/** A binary frame (the protocol is JSON text only). */
export const BINARY = Symbol("binary")
/** What the socket callbacks hand to the actor, in arrival order. */
export type Inbound = string | typeof CLOSE | typeof BINARY | { readonly socketError: string }

export class Conn implements Sink {
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
  /** When the socket first stayed over its send-buffer limit, 0 when it is not. */
  overLimitSince = 0
  messagesSent = 0
  messagesReceived = 0
  lastActivity: number
  /** Window bits for compressing this connection's frames; undefined without permessage-deflate. */
  readonly deflateBits: number | undefined
  readonly targets: Record<SubscriptionType, Set<string>> = {
    stock: new Set(),
    market: new Set(),
    sector: new Set(),
  }

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    readonly outbox: Outbox,
    readonly scheduler: FlushScheduler,
    /** Frames for the actor. Unbounded so CLOSE always fits; floods are cut by `Connection.ts`. */
    readonly inbound: Queue.Queue<Inbound>,
    /** Completed once the connection's scope has closed (see Registry.takeover). */
    readonly done: Deferred.Deferred<void>,
    readonly connectedAt: number,
    session: { readonly id: string; readonly userId: string | null; readonly lastSequence: number },
    deflateBits?: number,
  ) {
    this.deflateBits = deflateBits
    this.sessionId = session.id
    this.userId = session.userId
    this.seq = session.lastSequence
    this.lastActivity = connectedAt
  }

  deliver(msg: Outgoing): void {
    if (this.closing) return
    if (this.outbox.offer(msg)) this.scheduler.conflated()
    else if (this.outbox.unkeyed > MAX_UNKEYED) {
      this.requestClose({ code: 1013, reason: "slow consumer", flush: false })
      return
    }
    this.scheduler.schedule(this)
  }

  /** Asks the actor to end the connection; the first request wins. Safe from any callback. */
  requestClose(req: CloseRequest): void {
    if (this.closeRequest !== undefined) return
    this.closeRequest = req
    this.inbound.unsafeOffer(CLOSE)
  }

  /** Queues a connection-specific message (answer, error, snapshot). */
  enqueue(msg: Outgoing): void {
    this.deliver(msg)
  }

  subscriptionCount(): number {
    return this.targets.stock.size + this.targets.market.size + this.targets.sector.size
  }
}
