/**
 * A total budget for outbound memory across all connections (OUTBOUND_BUDGET_BYTES): what the
 * sockets hold unsent (`ws.bufferedAmount`, the socket's user-space queue) plus what waits in the
 * outboxes. SEND_BUFFER_LIMIT_BYTES bounds one connection; without this, 4,800 readers that
 * stopped reading took the process from 234 MB to 2.28 GB.
 *
 * Counted on the flusher's clock, not per write: every connection a pass visits is counted after
 * it was written (or skipped), and connections that still hold bytes ("holders": the slow ones,
 * a healthy socket is empty again right after its write) are counted again at the end of every
 * pass, visited or not. The total is a running sum of those counts, so a pass costs one count
 * per visited connection plus one per holder.
 *
 * Over the budget at the end of a pass, the worst offenders (most bytes held) are acted on, in
 * two steps so that a reader that is only briefly behind is not cut off at once:
 * 1. conflated: nothing more is written to them; their outboxes keep the latest state per key
 *    (alerts and answers are never dropped: PROTOCOL.md "Slow consumers"), as many as it takes
 *    to cover the excess. One that drains its socket while the budget is not exceeded resumes.
 * 2. closed with 1013 (session kept), worst first: those conflated in an earlier pass, for as
 *    long as the budget is still exceeded not counting connections already closing.
 * Healthy readers hold nearly nothing between passes, so they are never the worst offenders.
 */
import { WebSocket } from "ws"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { CloseCode } from "../protocol/errors.js"
import type { Conn } from "./Conn.js"

export class OutboundBudget {
  /** Bytes held for all connections as last counted. */
  inUse = 0
  /** Whether the last pass ended over the budget: conflated connections do not resume meanwhile. */
  private pressured = false
  /** Connections last counted with bytes held: counted again every pass. */
  private readonly holders = new Set<Conn>()
  /** Number of the current pass: a holder already counted in it is not counted twice. */
  private pass = 1

  constructor(
    readonly limitBytes: number,
    private readonly stats: GatewayStatsImpl,
  ) {
    stats.outboundBudgetBytes = limitBytes
  }

  /** Counts what one connection holds now (after the flusher wrote it or skipped it). */
  count(conn: Conn): void {
    const ws = conn.ws
    const buffered = ws.readyState === WebSocket.CLOSED ? 0 : ws.bufferedAmount
    const bytes = buffered + conn.outbox.bytes
    const before = conn.counted
    this.inUse += bytes - before
    conn.counted = bytes
    conn.countedPass = this.pass
    if (bytes > 0) {
      if (before === 0) this.holders.add(conn)
    } else if (before > 0) this.holders.delete(conn)
    // Caught up (its socket took everything) while the budget allows it: writes resume.
    if (conn.budgetConflated && buffered === 0 && !this.pressured) conn.budgetConflated = false
  }

  /** Ends a pass: counts the holders it did not visit, publishes the total, acts if over. */
  endPass(): void {
    for (const conn of this.holders) if (conn.countedPass !== this.pass) this.count(conn)
    this.pass++
    this.stats.outboundBytes = this.inUse
    this.pressured = this.inUse > this.limitBytes
    if (this.pressured) this.enforce()
  }

  private enforce(): void {
    const ranked = Array.from(this.holders).sort((a, b) => b.counted - a.counted)
    // Connections already closing release what they hold when their sockets are destroyed.
    let projected = this.inUse
    for (const c of ranked) if (c.closeRequest !== undefined) projected -= c.counted
    for (const c of ranked) {
      if (projected <= this.limitBytes) break
      if (!c.budgetConflated || c.closeRequest !== undefined) continue
      c.requestClose({ code: CloseCode.tryAgainLater, reason: "outbound budget exceeded", flush: false })
      this.stats.outboundBudgetCloses++
      projected -= c.counted
    }
    let excess = projected - this.limitBytes
    for (const c of ranked) {
      if (excess <= 0) break
      if (c.budgetConflated || c.closeRequest !== undefined) continue
      c.budgetConflated = true
      this.stats.outboundBudgetConflations++
      excess -= c.counted
    }
  }
}
