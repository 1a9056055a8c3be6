/**
 * A total budget for outbound bytes across all connections (OUTBOUND_BUDGET_BYTES): what the
 * sockets hold unsent (`ws.bufferedAmount`, the socket's user-space queue) plus what waits in the
 * outboxes. SEND_BUFFER_LIMIT_BYTES bounds one connection; without this, 4,800 readers that
 * stopped reading took the process from 234 MB to 2.28 GB.
 *
 * It counts the bytes owed to clients, the text of every waiting message in every outbox, not
 * the memory they take: a market event or snapshot queued for 4,800 connections is one object
 * (`Outgoing.shared`), so the memory is far less (`quotecast_outbound_memory_bytes`, reported
 * beside it from `Outbox.footprint`). Counted as memory (a reference per outbox), 4,800
 * clients that stopped reading with 200 stocks each stayed within the budget while their kernel
 * buffers took frame after frame: nobody was conflated or closed, and a reader beside them,
 * whose frames queue behind theirs for the pass's time for large frames, heard nothing for
 * 65 s. What is owed is what tells who falls behind before the kernel's buffers are full.
 *
 * Enforced where bytes are handed to the socket: a frame for a socket that already holds unsent
 * bytes (the reader is behind) is written only if the total stays under the budget (`admit`);
 * refused, the connection is conflated at once (nothing more is written to it, its outbox keeps
 * the latest state per key). A socket that holds nothing is always written: the kernel takes
 * what a reader that keeps up is sent, so healthy readers never wait for the budget. The total
 * can then exceed the budget only by what the kernel did not take of one frame per connection.
 * Counting it only at the end of a flush pass let 4,800 readers that stopped reading reach
 * 870 MB counted against 256 MB, because a pass writes every connection before anything is
 * checked.
 *
 * Counted on the flusher's clock: every connection a pass visits is counted after it was written
 * (or skipped), and connections that still hold bytes ("holders": the slow ones, a healthy socket
 * is empty again right after its write) are counted again at the end of every pass, visited or
 * not. The total is a running sum of those counts, so a pass costs one count per visited
 * connection plus one per holder. A connection closed without a flush gives up its outbox at
 * once (`Conn.requestClose`); what its socket still holds counts until the socket is gone.
 *
 * Over the budget at the end of a pass, counting what was refused in it (room the budget lacks
 * for readers behind), the worst offenders (most bytes held) are acted on:
 * 1. every connection conflated in an earlier pass is watched, and those that have shown they do
 *    not read are closed with 1013 (session kept; their sockets destroyed at once), worst first,
 *    for as long as the budget is still exceeded not counting connections already closing.
 *    Shown not to read: for PROBE_GRACE_MS and PROBE_MIN_PASSES passes its socket drained
 *    nothing, or, when its socket is empty, it left a ping of the budget's own (`PROBE`)
 *    unanswered. While a storm client's kernel buffers still have room it looks exactly like a
 *    reader that keeps up (an empty socket, the same keys waiting), and under a storm a reader's
 *    socket may hold the rest of a large frame at a pass's end: only progress tells them apart,
 *    and a client that does not read its socket does not read the ping either. All are watched
 *    at once, not only as many as the excess needs, so a reader waiting for room does not wait a
 *    grace more for every round of closes. One that reads is kept (conflated until there is room), and watched again
 *    after the grace if it is still refused then;
 * 2. then the largest others are conflated, as many as it takes to cover what is left of the
 *    excess, so that they are the next to go (alerts and answers are never dropped:
 *    docs/protocol.md "Slow readers and conflation"). One that drains its socket, or finds room, resumes.
 * Healthy readers hold nearly nothing between passes, so they are never the worst offenders.
 */
import { WebSocket } from "ws"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { CloseCode } from "../protocol/errors.js"
import type { Conn } from "./Conn.js"

/** The budget's ping payload: its pong is told from the heartbeat's (which proves less: see `answered`). */
const PROBE = Buffer.from("quotecast-budget")
/**
 * How long a refused connection has to show it reads (drain some of its socket, or answer the
 * budget's ping) before the budget may close it. A client that reads drains its socket, and
 * answers, within a round trip once the server gets a turn; a reader waiting for room waits
 * about this long for every round of closes, so it is kept short.
 */
export const PROBE_GRACE_MS = 1_000

/** Called with every pong: the one that answers the budget's ping shows the client reads. */
export const answered = (conn: Conn, data: Buffer): void => {
  // The heartbeat's pong answers a ping sent before the budget's, so it proves less: ignored.
  const probe = conn.budgetProbe
  if (probe?.pinged === true && data.equals(PROBE)) {
    probe.answered = true
    // It reads: an answer of its waiting for room goes now (`AnswerGate`).
    conn.budgetWake?.()
  }
}

/**
 * And how many flush passes must have ended since: a pong is read, and a socket drains, only in
 * the event loop's turns for I/O, which come between passes. Under a storm a pass can take longer
 * than the grace (4,800 clients at 200 keys each), and a reader's answer, already sent, waited
 * unread while the budget's clock ran out: the probe's reader was closed 1.4 s after it answered.
 */
export const PROBE_MIN_PASSES = 3

type Verdict = "close" | "wait"

/** What a socket holds unsent (`ws` keeps reporting it after the socket is gone). */
const unsent = (ws: Conn["ws"]): number => (ws.readyState === WebSocket.CLOSED ? 0 : ws.bufferedAmount)

/**
 * Whether a connection the budget refused may be closed now: only once it has shown, for a
 * grace, that it does not read. Looked at for the first time, or last shown to read more than a
 * grace ago (a reader may stop later): watched from now.
 */
const verdict = (c: Conn, now: number, pass: number, stats: GatewayStatsImpl): Verdict => {
  const held = c.ws.bufferedAmount
  let probe = c.budgetProbe
  if (probe === undefined) {
    probe = { since: now, sincePass: pass, held, pinged: false, answered: false }
    c.budgetProbe = probe
  } else if (probe.answered && now - probe.since >= PROBE_GRACE_MS) {
    probe.since = now
    probe.sincePass = pass
    probe.held = held
    probe.pinged = false
    probe.answered = false
  } else if (held < probe.held) {
    // Its socket drained since it was last looked at: the client reads.
    probe.since = now
    probe.sincePass = pass
    probe.held = held
    return "wait"
  }
  if (held === 0 && !probe.pinged) {
    // Nothing to watch drain: ask instead.
    probe.since = now
    probe.sincePass = pass
    probe.pinged = true
    c.ws.ping(PROBE)
    stats.outboundBudgetProbes++
    return "wait"
  }
  const shown = now - probe.since >= PROBE_GRACE_MS && pass - probe.sincePass >= PROBE_MIN_PASSES
  return !probe.answered && shown ? "close" : "wait"
}

/** Whether its probe must be kept: answered, or its ping still unanswered. */
const awaited = (conn: Conn): boolean => conn.budgetProbe?.pinged === true

export class OutboundBudget {
  /** Bytes held for all connections as last counted. */
  inUse = 0
  /** Bytes of the frames refused in the current pass, or waiting behind a conflation: what readers behind want to add. */
  private refused = 0
  /** Connections last counted with bytes held: counted again every pass. */
  private readonly holders = new Set<Conn>()
  /** Number of the current pass: a holder already counted in it is not counted twice. */
  private pass = 1

  constructor(
    readonly limitBytes: number,
    private readonly stats: GatewayStatsImpl,
    private readonly now: () => number = Date.now,
  ) {
    stats.outboundBudgetBytes = limitBytes
  }

  /** Counts what one connection holds now (after the flusher wrote it or skipped it). */
  count(conn: Conn): void {
    const ws = conn.ws
    const buffered = unsent(ws)
    const bytes = buffered + conn.outbox.bytes
    const before = conn.counted
    this.inUse += bytes - before
    conn.counted = bytes
    conn.countedPass = this.pass
    if (bytes > 0) {
      if (before === 0) this.holders.add(conn)
    } else if (before > 0) this.holders.delete(conn)
    // Caught up (its socket took everything it was sent): no longer conflated. One refused while
    // its socket was empty (its outbox still waits) stays so: the budget may have to close it.
    if (buffered === 0 && conn.outbox.bytes === 0) {
      conn.budgetConflatedAt = 0
      // An answer stays: it is what lets this reader's frames past a full budget (`admit`); so
      // does a ping not answered yet, or its answer would not be recognised.
      if (!awaited(conn)) conn.budgetProbe = undefined
    }
  }

  /**
   * Whether `bytes` more may be queued for `conn`, whose socket already holds unsent bytes (a
   * conflated connection asks again at every pass, and resumes when there is room). If not, it
   * is conflated (counted in the metric the first time), and what it wanted counts at the end
   * of the pass, which frees room by closing the worst offenders.
   *
   * A connection that answered the budget's ping is written to whenever its socket is empty,
   * room or not: it reads, so the kernel takes the frame, and the total exceeds the budget by at
   * most one frame per such reader, as for small frames. Without this, the room that closes make
   * went to whichever connection a pass reached first, nearly always one of thousands of storm
   * clients whose kernel buffers still had room, and the one reader waited 43 s, conflated,
   * until it was taken for a storm client and closed. Once its socket holds bytes it needs room
   * like anyone, and is watched again if refused.
   */
  admit(conn: Conn, bytes: number): boolean {
    const reads = this.proven(conn) && conn.ws.bufferedAmount === 0
    if (this.inUse + bytes <= this.limitBytes || reads) {
      // Counted now, not at the end of the pass: the next connection's admission sees it.
      this.inUse += bytes
      conn.counted += bytes
      if (conn.counted === bytes) this.holders.add(conn)
      conn.budgetConflatedAt = 0
      // A ping sent, answered or not, stays: the answer is what the flusher serves readers
      // first by, and an unanswered one is still waited for.
      if (!awaited(conn)) conn.budgetProbe = undefined
      return true
    }
    this.refused += bytes
    if (conn.budgetConflatedAt === 0) {
      conn.budgetConflatedAt = this.pass
      this.stats.outboundBudgetConflations++
    }
    return false
  }

  /** Whether the connection answered the budget's ping (since its watch last started). */
  proven(conn: Conn): boolean {
    return conn.budgetProbe?.answered === true
  }

  /**
   * Asks a connection to show that it reads (the budget's ping), once: the flusher asks every
   * connection it has a large frame for. The kernel takes frames for a client that stopped
   * reading until its buffers fill, tens of seconds on loopback, and until then only an answer
   * tells a reader from it. Those that answered go first among the large frames a pass carries
   * to the next (`Flusher`): a reader that took its turn with 435 storm clients whose kernels
   * took everything heard nothing for 2-4.6 s at a time. And a client that stopped reading has
   * left the ping unanswered for a while by the time the budget needs room, so the budget may
   * close it at once (`verdict`) rather than a grace later.
   */
  ask(conn: Conn): void {
    if (conn.budgetProbe !== undefined || conn.ws.readyState !== WebSocket.OPEN) return
    conn.budgetProbe = {
      since: this.now(),
      sincePass: this.pass,
      held: conn.ws.bufferedAmount,
      pinged: true,
      answered: false,
    }
    conn.ws.ping(PROBE)
    this.stats.outboundBudgetProbes++
  }

  /** Ends a pass: counts the holders it did not visit, publishes the totals, acts if over. */
  endPass(): void {
    // Memory: a healthy connection holds nothing between passes, so the holders are all of it.
    let memory = 0
    for (const conn of this.holders) {
      if (conn.countedPass !== this.pass) this.count(conn)
      memory += unsent(conn.ws) + conn.outbox.footprint
    }
    this.stats.outboundBytes = this.inUse
    this.stats.outboundMemoryBytes = memory
    const wanted = this.inUse + this.refused
    this.refused = 0
    if (wanted > this.limitBytes) this.enforce(wanted)
    this.pass++
  }

  private enforce(wanted: number): void {
    const ranked = Array.from(this.holders).sort((a, b) => b.counted - a.counted)
    // Connections already closing release what they hold when their sockets are destroyed.
    let projected = wanted
    for (const c of ranked) if (c.closeRequest !== undefined) projected -= c.counted
    const now = this.now()
    for (const c of ranked) {
      // Only those conflated in an earlier pass: one refused just now may be only briefly behind.
      if (c.budgetConflatedAt === 0 || c.budgetConflatedAt >= this.pass || c.closeRequest !== undefined)
        continue
      // Every one is watched, so that the next round of closes needs no new grace; only as many
      // as the excess needs are closed, worst first.
      if (verdict(c, now, this.pass, this.stats) === "wait" || projected <= this.limitBytes) continue
      c.requestClose({ code: CloseCode.tryAgainLater, reason: "outbound budget exceeded", flush: false })
      // Destroyed now, not after the closing handshake its actor starts: its queued bytes are
      // the room the others wait for, and a close frame behind them would not be read anyway.
      if (c.ws.readyState !== WebSocket.CLOSED) c.ws.terminate()
      this.stats.outboundBudgetCloses++
      projected -= c.counted
    }
    let excess = projected - this.limitBytes
    for (const c of ranked) {
      if (excess <= 0) break
      if (c.budgetConflatedAt !== 0 || c.closeRequest !== undefined) continue
      c.budgetConflatedAt = this.pass
      this.stats.outboundBudgetConflations++
      excess -= c.counted
    }
  }
}
