/**
 * A first-in first-out queue over an array taken from a moving head, so that taking an item
 * does not shift the array. Used where a queue is per connection or per scheduled task, and
 * Effect's `Queue` would cost more than it gives (`connection/Inbox.ts` says how much).
 */

/** Taken slots at the front of the array beyond which it is compacted (if they are most of it). */
const COMPACT_AFTER = 1024

export class Fifo<A> {
  private items: Array<A | undefined> = []
  private head = 0

  /** Items waiting to be taken. */
  get size(): number {
    return this.items.length - this.head
  }

  /** The oldest item, left in place; undefined when there is none. */
  protected peek(): A | undefined {
    return this.size > 0 ? this.items[this.head] : undefined
  }

  protected push(item: A): void {
    this.items.push(item)
  }

  /** The oldest item; only when `size` > 0. */
  protected shift(): A {
    const item = this.items[this.head] as A
    // Let go of a taken item now, not when the queue next runs empty.
    this.items[this.head] = undefined
    this.head++
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= COMPACT_AFTER && this.head * 2 > this.items.length) {
      // A queue that never quite runs empty (a client sending steadily while each message
      // waits on Redis) would otherwise grow by a slot per item for its whole life.
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}
