/**
 * A connection's outbound queue. Ordered like a FIFO, with one twist that Effect's Queue cannot
 * express: a state message (it has a conflation key) that finds an older message with the same
 * key still waiting replaces it in place, so a slow reader gets the latest price at the position
 * of the first unsent one. Messages without a key (alerts, statuses, answers, snapshots) are
 * never dropped or replaced. Sequence numbers are assigned when drained, so conflation leaves
 * no gaps. Only the connection's owner and the flusher touch it; no locking is needed.
 */
import type { Outgoing } from "../protocol/encode.js"

export class Outbox {
  private items: Array<Outgoing> = []
  /**
   * Position in `items` of the waiting message for each conflation key; made when the first
   * keyed message arrives after a drain, so an idle connection keeps no table (~180 bytes).
   */
  private positions: Map<string, number> | undefined = undefined
  /** Messages without a key; bounded by the caller to keep memory per connection bounded. */
  unkeyed = 0

  get size(): number {
    return this.items.length
  }

  /** Appends, or replaces a waiting message with the same key. Returns true when it conflated. */
  offer(msg: Outgoing): boolean {
    const key = msg.key
    if (key !== undefined) {
      this.positions ??= new Map()
      const at = this.positions.get(key)
      if (at !== undefined) {
        this.items[at] = msg
        return true
      }
      this.positions.set(key, this.items.length)
    } else {
      this.unkeyed++
    }
    this.items.push(msg)
    return false
  }

  /** Current end of the queue, for `insertAt`. */
  mark(): number {
    return this.items.length
  }

  /**
   * Inserts unkeyed messages at a mark taken earlier, ahead of what arrived since. Used so that
   * `subscribed` + snapshots, or `reconnected` + missed messages, come right where the request
   * was answered even though live events for the new topics may already be queued behind them.
   */
  insertAt(mark: number, msgs: ReadonlyArray<Outgoing>): void {
    if (msgs.length === 0) return
    const at = Math.min(mark, this.items.length)
    this.items.splice(at, 0, ...msgs)
    this.unkeyed += msgs.length
    const positions = this.positions
    if (positions !== undefined)
      for (const [key, pos] of positions) if (pos >= at) positions.set(key, pos + msgs.length)
  }

  /** Takes everything, in order. */
  drain(): Array<Outgoing> {
    const out = this.items
    this.items = []
    this.positions = undefined
    this.unkeyed = 0
    return out
  }
}
