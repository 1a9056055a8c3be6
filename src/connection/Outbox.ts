/**
 * A connection's outbound queue. Ordered like a FIFO, with one twist that Effect's Queue cannot
 * express: a state message (it has a conflation key) that finds an older message with the same
 * key still waiting replaces it in place, so a slow reader gets the latest price at the position
 * of the first unsent one. Messages without a key (alerts, statuses, answers, snapshots) are
 * never dropped or replaced. Sequence numbers are assigned when drained, so conflation leaves
 * no gaps. Only the connection's owner and the flusher touch it; no locking is needed.
 */
import type { Outgoing } from "../protocol/encode.js"

/**
 * Memory one waiting message costs an outbox beyond its text: its slot in the queue (8 bytes) and,
 * in a queue long enough to be indexed, its entry in the index (about 29 bytes, measured with
 * `--expose-gc` over a million entries on Node 20), rounded up.
 */
export const REF_BYTES = 40

/**
 * What a message adds to an outbox's footprint: a reference for a shared message (its text is
 * held once however many outboxes queue it: a market event fanned out, a snapshot copy of one),
 * a reference and its text for a message made for this connection alone.
 */
const footprintOf = (msg: Outgoing): number => (msg.shared === true ? REF_BYTES : REF_BYTES + msg.body.length)

/**
 * Up to this many waiting messages, a key is found by scanning them: a connection typically
 * has a handful per batch (one per subscribed code at most when it is behind, 20 in the
 * benchmark), and a scan of pointer comparisons (keys are interned, see `conflationKey`) costs
 * less than a hash table made and dropped per connection per pass, which under overload is
 * garbage that lives long enough to reach the old generation.
 */
const SCAN_LIMIT = 32

export class Outbox {
  private items: Array<Outgoing> = []
  /** Position in `items` of the waiting message per conflation key, once there are many. */
  private positions: Map<string, number> | undefined = undefined
  /** Messages without a key; bounded by the caller to keep memory per connection bounded. */
  unkeyed = 0
  /** Characters of the waiting bodies: the size of the frame a flush would write. */
  bytes = 0
  /**
   * Memory the waiting messages hold on this outbox's account (`footprintOf`), which the outbound
   * budget reports beside the bytes owed that it counts. Less than `bytes` when shared messages
   * wait: 4,800 clients that stopped reading, each with the same 360 KB of snapshots queued, are
   * owed 1.7 GB but hold 4,800 references to one copy.
   */
  footprint = 0

  get size(): number {
    return this.items.length
  }

  /** Appends, or replaces a waiting message with the same key. Returns true when it conflated. */
  offer(msg: Outgoing): boolean {
    const key = msg.key
    if (key !== undefined) {
      const at = this.indexOf(key)
      if (at >= 0) {
        const old = this.items[at] as Outgoing
        this.bytes += msg.body.length - old.body.length
        this.footprint += footprintOf(msg) - footprintOf(old)
        this.items[at] = msg
        return true
      }
      this.positions?.set(key, this.items.length)
    } else {
      this.unkeyed++
    }
    this.bytes += msg.body.length
    this.footprint += footprintOf(msg)
    this.items.push(msg)
    if (this.positions === undefined && this.items.length > SCAN_LIMIT) this.index()
    return false
  }

  private indexOf(key: string): number {
    if (this.positions !== undefined) return this.positions.get(key) ?? -1
    const items = this.items
    for (let i = 0; i < items.length; i++) if ((items[i] as Outgoing).key === key) return i
    return -1
  }

  private index(): void {
    const positions = new Map<string, number>()
    this.items.forEach((m, i) => {
      if (m.key !== undefined) positions.set(m.key, i)
    })
    this.positions = positions
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
    const items = this.items
    const at = Math.min(mark, items.length)
    // Nothing arrived since the mark (the usual case): appended, with no arguments array.
    if (at === items.length) for (const m of msgs) items.push(m)
    else items.splice(at, 0, ...msgs)
    this.unkeyed += msgs.length
    for (const m of msgs) {
      this.bytes += m.body.length
      this.footprint += footprintOf(m)
    }
    const positions = this.positions
    if (positions !== undefined)
      for (const [key, pos] of positions) if (pos >= at) positions.set(key, pos + msgs.length)
  }

  /** Bodies of the waiting messages that `select` picks, in order (what a closing connection could not send). */
  bodiesWhere(select: (body: string) => boolean): Array<string> {
    const out: Array<string> = []
    for (const m of this.items) if (select(m.body)) out.push(m.body)
    return out
  }

  /**
   * Drops every waiting message but those `keep` picks (a connection that closes without
   * flushing keeps only what its session must deliver later: alerts). Returns how many it kept.
   */
  shed(keep: (body: string) => boolean): number {
    const kept = this.items.filter((m) => keep(m.body))
    this.drain()
    for (const m of kept) this.offer(m)
    return kept.length
  }

  /** Takes everything, in order. */
  drain(): Array<Outgoing> {
    const out = this.items
    this.items = []
    this.positions = undefined
    this.unkeyed = 0
    this.bytes = 0
    this.footprint = 0
    return out
  }
}
