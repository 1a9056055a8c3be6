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
 * Where a frame is built when it will not go to the socket as a Buffer of its own: it is then
 * handed over as latin1 strings (one byte per character, so `bufferedAmount` still counts bytes).
 * A frame that waits in the socket's queue lives in V8's heap as such a string until the socket
 * takes it, and V8 gives its pages back after a GC. A Buffer per waiting frame would be a malloc'd
 * block each, held for as long as the reader is behind: a storm of slow readers then leaves
 * glibc's heap fragmented, and it keeps the freed memory (RSS stayed 130 MB up after 600 slow
 * readers had gone, 2 GB after 4,800: `bench/probes/slowReaderStorm.ts`).
 */
const SCRATCH = Buffer.allocUnsafeSlow(64 * 1024)

/**
 * The most one write to an empty socket hands over: a larger frame goes in pieces of this size
 * while the kernel takes them, and the rest as one string once the socket holds unsent bytes.
 * The write the kernel takes only in part stays in flight in malloc'd memory until the reader
 * reads (libuv keeps the Buffer, or for a string Node copies what is left into a malloc'd block),
 * which for a reader that stopped is until its socket is destroyed. Frames up to 60 KB made those
 * blocks up to 300 MB of glibc's main heap in a storm of 4,800 non-readers, and after the storm
 * glibc kept the freed pages whenever anything still live sat above them (285 MB in one run).
 * In pieces the in-flight block is at most this per connection. 16 KB is also the string size
 * Node tries to write from its stack, so a piece the kernel takes whole is never malloc'd.
 */
const PIECE = 16 * 1024

/** A frame for an empty socket that fits one piece is its own Buffer: garbage once the kernel took it. */
const bufferFor = (queued: boolean, size: number): Buffer =>
  !queued && size <= PIECE
    ? Buffer.allocUnsafe(size)
    : size <= SCRATCH.length
      ? SCRATCH
      : Buffer.allocUnsafe(size)

/**
 * Hands a frame to the socket. With nothing waiting, a small frame as the Buffer itself (the
 * kernel almost always takes it at once); a larger one in pieces while the socket stays empty.
 * Behind other writes, the rest as one string in V8's heap.
 */
const handOver = (socket: Duplex, frame: Buffer, size: number, queued: boolean): void => {
  if (!queued && size <= PIECE) {
    socket.write(frame)
    return
  }
  let at = 0
  while (size - at > PIECE && socket.writableLength === 0) {
    socket.write(frame.toString("latin1", at, at + PIECE), "latin1")
    at += PIECE
  }
  socket.write(frame.toString("latin1", at, size), "latin1")
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
