/**
 * What waits in `Admission`: a setup's or an upgrade's claim on a setup slot (`Ticket`), what an
 * upgrade waiting before its handshake must offer (`Startable`), and the refusal.
 */
import { Data, type Effect } from "effect"

export type AdmissionRejectReason = "queue_full" | "timeout"

export class AdmissionRejected extends Data.TaggedError("AdmissionRejected")<{
  readonly reason: AdmissionRejectReason
}> {}

/** Something that waits for a slot before it starts (an upgrade request, before its handshake). */
export interface Startable {
  /** Its client went away (checked when its turn comes: it is then dropped like a cancelled wait). */
  readonly isGone: () => boolean
  /** Its turn: start now, synchronously; the setup it starts finds a slot kept for it. */
  readonly start: () => void
  /**
   * Refused before its turn: the queue was full, it waited `waitMs`, or the server is stopping.
   * `retryAfterS`: when the queue ahead of it should have drained, at the current pace.
   */
  readonly refuse: (reason: AdmissionRejectReason | "shutdown", retryAfterS: number) => void
}

/** One connection's claim on a setup slot, from the wait (if any) until its release. */
export class Ticket {
  /** Holds a slot. */
  held = false
  /** Released, started, rejected or gone: nothing more to do. */
  done = false
  /** A setup waiting in the queue. */
  resume: ((e: Effect.Effect<void, AdmissionRejected>) => void) | undefined = undefined
  /** An upgrade waiting in the queue. */
  startable: Startable | undefined = undefined
  queuedAt = 0
  /** The hand-on count when it was queued: an upgrade starts no sooner than the second hand-on after. */
  epoch = 0
}
