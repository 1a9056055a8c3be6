/**
 * Writing one connection's queue to its socket as one frame (a `batch` when two or more messages
 * wait, sequence numbers assigned here), and what may stop it at the point of writing: the
 * connection's own send-buffer limit and the outbound budget's admission (`OutboundBudget.admit`).
 * The flusher (`Flusher.ts`) decides when and in what order; this decides whether and how.
 */
import { WebSocket } from "ws"
import type { GatewayStatsImpl } from "../metrics/GatewayStats.js"
import { seal, sealBatch } from "../protocol/encode.js"
import { CloseCode } from "../protocol/errors.js"
import type { Conn } from "./Conn.js"
import { FrameDeflater } from "./deflate.js"
import type { OutboundBudget } from "./OutboundBudget.js"
import { writeCompressedText, writeText } from "./wire.js"

export interface WriteOptions {
  readonly batching: boolean
  readonly sendBufferLimitBytes: number
  readonly slowConsumerTimeoutMs: number
  /**
   * A frame up to this size for a socket that holds nothing is written without asking the budget:
   * the kernel takes it (it is what every reader that keeps up is sent). So the total exceeds the
   * budget by at most this much per connection (OUTBOUND_FREE_WRITE_BYTES).
   */
  readonly outboundFreeWriteBytes: number
}

/** Frames shorter than this go uncompressed: deflate costs more than it saves on them. */
export const COMPRESSION_THRESHOLD = 1024
/** zlib level 1: the fastest, and JSON with repeated keys still shrinks to about a quarter. */
const deflater = new FrameDeflater(COMPRESSION_THRESHOLD, 1)

/** Writes one text frame, compressed when the connection negotiated it and the frame is large enough. */
const sendFrame = (conn: Conn, frame: string, stats: GatewayStatsImpl): void => {
  stats.bytesSent += frame.length
  if (conn.deflateBits !== undefined && frame.length >= COMPRESSION_THRESHOLD) {
    const payload = deflater.compressText(frame, conn.deflateBits)
    writeCompressedText(conn.ws, payload)
    stats.compressedFrames++
    stats.bytesOnWire += payload.length
  } else {
    stats.bytesOnWire += writeText(conn.ws, frame)
  }
}

/** Writes one connection's queue as one frame. Returns false when it must stay dirty. */
export const writeOut = (
  conn: Conn,
  budget: OutboundBudget,
  stats: GatewayStatsImpl,
  now: number,
  timestamp: string,
  opts: WriteOptions,
  force: boolean,
): boolean => {
  const ws = conn.ws
  if (ws.readyState !== WebSocket.OPEN) {
    conn.giveUpQueue()
    return true
  }
  if (!force) {
    if (conn.held > 0) return false
    if (conn.outbox.size === 0) return true
    const buffered = ws.bufferedAmount
    // Over its own limit, it is skipped; behind, this write must fit the total budget (the
    // outbox's characters stand for the frame's bytes: JSON, nearly all ASCII, plus an envelope);
    // a small frame for a socket that holds nothing is written (the kernel takes it), and that
    // is how a reader the budget conflated resumes once it has caught up. A large one (a burst of
    // snapshots) needs room in the budget even then: a reader that has just stopped reading
    // leaves what the kernel did not take of it queued, and 4,800 of those were 690 MB. Refused: skipped, its outbox conflates,
    // and the same clock closes it if that lasts (a reader that never reads is not kept forever).
    const bytes = conn.outbox.bytes
    if (
      buffered > opts.sendBufferLimitBytes ||
      ((buffered > 0 || bytes > opts.outboundFreeWriteBytes) && !budget.admit(conn, bytes))
    ) {
      // Refused with an empty socket, it is not slow: it waits for room others hold.
      if (buffered === 0) conn.overLimitSince = 0
      else if (conn.overLimitSince === 0) conn.overLimitSince = now
      else if (now - conn.overLimitSince >= opts.slowConsumerTimeoutMs) {
        stats.slowConsumerCloses++
        conn.requestClose({ code: CloseCode.tryAgainLater, reason: "slow consumer", flush: false })
      }
      return false
    }
    conn.overLimitSince = 0
  }
  const items = conn.outbox.drain()
  const n = items.length
  if (n === 0) return true
  if (n === 1 || !opts.batching) {
    for (const item of items) sendFrame(conn, seal(item.body, ++conn.seq), stats)
    stats.framesSent += n
  } else {
    const sealed = new Array<string>(n)
    for (let i = 0; i < n; i++) sealed[i] = seal((items[i] as { body: string }).body, ++conn.seq)
    sendFrame(conn, sealBatch(sealed, conn.seq, timestamp), stats)
    stats.framesSent++
  }
  stats.batchSize.observe(n)
  // After the write: the histogram's end point is the frame handed to the socket.
  stats.delivered(items)
  stats.messagesSent += n
  conn.messagesSent += n
  return true
}
