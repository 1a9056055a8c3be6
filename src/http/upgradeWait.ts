/**
 * A WebSocket upgrade request waiting for its setup slot (`connection/Admission.ts`) before its
 * handshake. In a reconnect storm most upgrades wait here; each costs the HTTP parse it already
 * had and its socket, nothing more. Its socket keeps being read while it waits: a client that
 * gives up (its handshake timeout, a retry elsewhere) closes it, and the wait leaves the queue at
 * once (`Admission.cancel`) instead of being answered, set up and restored for nobody, with its
 * session taken from the client's next attempt. Node's HANDSHAKE_TIMEOUT_MS check does not apply
 * here: it ends with the request's headers, and the wait is bounded by ADMISSION_WAIT_MS.
 *
 * A WebSocket client sends nothing before the server's handshake (RFC 6455 4.1); bytes that come
 * anyway are kept, up to `maxEarlyBytes`, and handed to the handshake as if they had arrived after
 * it. The listeners are shared functions that find their wait through a WeakMap, not closures
 * made per socket.
 */
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import type { AdmissionRejectReason, Startable, Ticket } from "../connection/admissionTicket.js"

export interface UpgradeHandlers {
  /** Runs the handshake and the connection (the upgrade's turn). */
  readonly upgrade: (w: WaitingUpgrade, head: Buffer) => void
  /** Answers a refused wait over HTTP and closes its socket. */
  readonly refuse: (
    w: WaitingUpgrade,
    reason: AdmissionRejectReason | "shutdown",
    retryAfterS: number,
  ) => void
  /** The client went away while waiting. */
  readonly gone: (w: WaitingUpgrade) => void
  readonly maxEarlyBytes: number
}

const waits = new WeakMap<Duplex, WaitingUpgrade>()

function onData(this: Duplex, chunk: Buffer) {
  const w = waits.get(this)
  if (w === undefined) return
  w.earlyBytes += chunk.length
  if (w.earlyBytes > w.handlers.maxEarlyBytes) {
    this.destroy()
    return
  }
  if (w.early === undefined) w.early = [chunk]
  else w.early.push(chunk)
}

// A client that half-closes before its handshake is gone: close our side too.
function onEnd(this: Duplex) {
  this.destroy()
}

function onClose(this: Duplex) {
  const w = waits.get(this)
  if (w === undefined) return
  w.unwatch()
  w.handlers.gone(w)
}

// "close" follows an error; nothing else to do (and an error with no listener would throw).
function onError() {}

export class WaitingUpgrade implements Startable {
  /** Set by the caller once the wait is queued: what `gone` cancels. */
  ticket: Ticket | undefined = undefined
  early: Array<Buffer> | undefined = undefined
  earlyBytes = 0

  constructor(
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    /** The client address (after X-Forwarded-For from a trusted proxy) and its admission key. */
    readonly client: string | undefined,
    readonly addressKey: string,
    readonly handlers: UpgradeHandlers,
  ) {}

  /** Starts reading the socket for its close while the upgrade waits. */
  watch(): void {
    waits.set(this.socket, this)
    this.socket.on("data", onData)
    this.socket.on("end", onEnd)
    this.socket.on("close", onClose)
    this.socket.on("error", onError)
  }

  unwatch(): void {
    if (waits.get(this.socket) !== this) return
    waits.delete(this.socket)
    this.socket.off("data", onData)
    this.socket.off("end", onEnd)
    this.socket.off("close", onClose)
    this.socket.off("error", onError)
  }

  /** Closed, or ended by the client (destroyed on "end", its "close" not emitted yet). */
  isGone(): boolean {
    return this.socket.destroyed || !this.socket.readable
  }

  start(): void {
    this.unwatch()
    if (this.isGone()) return
    const head =
      this.early === undefined
        ? this.head
        : Buffer.concat([this.head, ...this.early], this.head.length + this.earlyBytes)
    this.early = undefined
    this.handlers.upgrade(this, head)
  }

  refuse(reason: AdmissionRejectReason | "shutdown", retryAfterS: number): void {
    this.unwatch()
    if (this.socket.destroyed) return
    this.handlers.refuse(this, reason, retryAfterS)
  }
}

/** The HTTP answer to a refused wait (503 `ServerBusy`, with Retry-After): the reason and what to say. */
export const waitRefusal = (
  reason: AdmissionRejectReason | "shutdown",
  retryAfterS: number,
  limits: { readonly admissionQueue: number; readonly admissionWaitMs: number },
) => ({
  status: 503 as const,
  retryAfterS,
  reason: reason === "shutdown" ? "draining" : reason === "queue_full" ? "setup_queue_full" : "setup_wait",
  message:
    reason === "shutdown"
      ? "The server is shutting down"
      : reason === "queue_full"
        ? `Too many connections are waiting for their setup (limit ${limits.admissionQueue})`
        : `No setup slot within ${limits.admissionWaitMs} ms`,
})
