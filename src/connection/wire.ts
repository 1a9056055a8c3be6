/**
 * Data frames written straight to a connection's socket (RFC 6455 5.2), one Buffer per frame.
 *
 * `ws.send` would do, but the flusher writes one frame per connection per pass, tens of
 * thousands per second, and the general path costs per frame: two option objects, a UTF-8
 * length scan, a separate header Buffer and a corked two-chunk `writev` whose string chunk is
 * encoded again in C++. One Buffer handed to `socket.write` took about 12% less CPU per frame
 * over 2,000 loopback sockets (1 KB batches, on the 2-core machine the benchmarks run on).
 *
 * Safe beside `ws` because everything reaches the same socket in call order: pings and the
 * close frame that `ws` writes itself, and these. `ws` queues its own sends only while its
 * compressor runs or it reads a Blob, which the gateway never asks of it (`connection/deflate.ts`);
 * `senderOf` checks that on every frame, so a `ws` that queued would fail the write loudly (the
 * flusher closes that connection with 1011 and logs why) rather than reorder frames silently.
 * `bufferedAmount` still counts these bytes: it reads the socket's writable length.
 */
import type { Duplex } from "node:stream"
import type { WebSocket } from "ws"

/** FIN + opcode 1 (text). */
const TEXT = 0x81
/** FIN + RSV1 (permessage-deflate: the payload is compressed) + opcode 1. */
const COMPRESSED_TEXT = 0xc1

const headerLength = (len: number): number => (len < 126 ? 2 : len < 65536 ? 4 : 10)

/** Server frames are never masked, so the header is just the first byte and the length. */
const writeHeader = (frame: Buffer, first: number, len: number): void => {
  frame[0] = first
  if (len < 126) frame[1] = len
  else if (len < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(len, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2)
    frame.writeUInt32BE(len >>> 0, 6)
  }
}

/** What this module needs of `ws` 8 internals (version pinned in package.json). */
interface WsInternals {
  readonly _socket: Duplex
  readonly _sender: { readonly _state: number; readonly _queue: ReadonlyArray<unknown> }
}

/** `ws`'s Sender state when it writes straight through (not compressing, not reading a Blob). */
const SENDER_IDLE = 0

/** The socket to write to, after checking that `ws` has nothing of its own waiting to go first. */
const socketOf = (ws: WebSocket): Duplex => {
  const internals = ws as unknown as WsInternals
  const sender = internals._sender
  if (sender._state !== SENDER_IDLE || sender._queue.length > 0) {
    throw new Error("ws has queued sends of its own: writing past them would reorder frames")
  }
  return internals._socket
}

/**
 * Where a frame is built when it will wait in the socket's queue: it is then handed over as a
 * latin1 string (one byte per character, so `bufferedAmount` still counts bytes), which lives in
 * V8's heap until the socket takes it. A Buffer per frame would be a malloc'd block each, held for
 * as long as the reader is behind: a storm of slow readers then leaves glibc's heap fragmented,
 * and it keeps the freed memory (RSS stayed 130 MB up after 600 slow readers had gone, 2 GB after
 * 4,800: `bench/probes/slowReaderStorm.ts`). V8 gives its pages back after a GC.
 */
const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024)

/** Where to build a frame: the scratch buffer when it will wait (a huge one gets its own), else its own. */
const bufferFor = (queued: boolean, size: number): Buffer =>
  queued && size <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(size)

/**
 * Hands a frame to the socket. With nothing waiting, the Buffer itself: the kernel almost always
 * takes it at once, and it is garbage after. Behind other writes, a copy in V8's heap.
 */
const handOver = (socket: Duplex, frame: Buffer, size: number, queued: boolean): void => {
  if (queued) socket.write(frame.toString("latin1", 0, size), "latin1")
  else socket.write(frame)
}

/** Writes one text message as one frame. Returns the payload's length in bytes. */
export const writeText = (ws: WebSocket, text: string): number => {
  const socket = socketOf(ws)
  const len = Buffer.byteLength(text)
  const h = headerLength(len)
  const queued = socket.writableLength > 0
  const frame = bufferFor(queued, h + len)
  writeHeader(frame, TEXT, len)
  frame.write(text, h, len, "utf8")
  handOver(socket, frame, h + len, queued)
  return len
}

/** Writes an already-deflated text message (RFC 7692, trailer removed) as one frame with RSV1. */
export const writeCompressedText = (ws: WebSocket, payload: Uint8Array): void => {
  const socket = socketOf(ws)
  const len = payload.length
  const h = headerLength(len)
  const queued = socket.writableLength > 0
  const frame = bufferFor(queued, h + len)
  writeHeader(frame, COMPRESSED_TEXT, len)
  frame.set(payload, h)
  handOver(socket, frame, h + len, queued)
}
