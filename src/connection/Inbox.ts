/**
 * A connection's inbound queue: what the socket callbacks hand to the actor fiber, in arrival
 * order, taken one at a time with `take`, which waits while the queue is empty.
 *
 * Why not Effect's `Queue`: it is built for many producers, many consumers and shutdown, and
 * pays for it per instance, which a gateway multiplies by its connections. Measured with
 * Effect 3.22 on Node 20: an unbounded `Queue` holds about 1.3 KB (its shutdown Deferred alone
 * about 700 bytes), and a fiber suspended in `Queue.take` about 5 KB more than one suspended in
 * a bare `Effect.async` (the taker Deferred, its interruption handler and their closures). At
 * 10,000 mostly idle connections that is 60 MB. This queue has one producer (the socket's
 * callbacks, synchronous), one consumer (the actor), and no shutdown (the actor stops at its
 * CLOSE item), so it is an array and at most one waiting taker.
 */
import { Effect } from "effect"
import { Fifo } from "../lifecycle/Fifo.js"

export class Inbox<A> extends Fifo<A> {
  /** The actor's resume callback while it waits in `take`. */
  private taker: ((resumed: Effect.Effect<A>) => void) | undefined = undefined

  /** Enqueues, and wakes a waiting `take`. Safe from any callback. */
  offer(item: A): void {
    this.push(item)
    const taker = this.taker
    if (taker !== undefined) {
      this.taker = undefined
      // The woken take polls when it resumes: if it was interrupted meanwhile, Effect ignores
      // this resume and the item simply stays queued. (A canceler registered with the wait
      // would do the same, at 1.7 KB per waiting fiber: measured.)
      taker(this.take())
    }
  }

  /** The oldest item, waiting for one if there is none. One taker at a time (the actor). */
  take(): Effect.Effect<A> {
    return Effect.suspend(() =>
      this.size > 0
        ? Effect.succeed(this.shift())
        : Effect.async<A>((resume) => {
            this.taker = resume
          }),
    )
  }
}
