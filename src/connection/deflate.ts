/**
 * permessage-deflate done by the flush loop instead of by `ws` (docs/compression.md).
 *
 * `ws` compresses on libuv's threadpool with one zlib context per connection (~220 KB each with
 * default settings) and queues every later send on that connection behind it; at fan-out rates
 * that collapses. Here the flusher compresses each outgoing frame synchronously with ONE zlib
 * context per window size for the whole process, reset after every message, which is exactly
 * what `server_no_context_takeover` (always negotiated) allows. The frame is then written with
 * RSV1 set (`wire.ts`). Per-connection compression state: none.
 *
 * Node exposes synchronous deflate only as `deflateRawSync`, which builds and frees a context per
 * call (about 3x the CPU). Reusing a context needs the zlib handle's `writeSync`, a stable
 * internal used by Node's own sync functions; `selfTest` checks it works at startup, and without
 * it the code falls back to `deflateRawSync`.
 */
import * as zlib from "node:zlib"
import type { WebSocket } from "ws"

interface ZlibHandle {
  writeSync(
    flush: number,
    input: Buffer,
    inOff: number,
    inLen: number,
    out: Buffer,
    outOff: number,
    outLen: number,
  ): void
  reset(): void
}
interface ZlibInternals {
  readonly _handle: ZlibHandle | null
  readonly _writeState: Uint32Array
}

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])
const OUT_CHUNK = 64 * 1024

class ReusedDeflate {
  private readonly engine: zlib.DeflateRaw & Partial<ZlibInternals>
  private out = Buffer.allocUnsafe(OUT_CHUNK)

  constructor(windowBits: number, level: number) {
    this.engine = zlib.createDeflateRaw({ windowBits, level, memLevel: 8 })
  }

  /**
   * Deflates `input[0, length)` with a sync flush and resets the context; the result has no
   * trailer. It is a view of this engine's output buffer, valid until the next call: the caller
   * copies it into the frame it writes, so a compressed frame costs one allocation, not three.
   */
  compress(input: Buffer, length = input.length): Buffer {
    const handle = this.engine._handle
    const state = this.engine._writeState
    if (handle == null || state === undefined) throw new Error("zlib internals unavailable")
    let parts: Array<Buffer> | undefined
    let have = 0
    let inOff = 0
    let availIn = length
    for (;;) {
      handle.writeSync(zlib.constants.Z_SYNC_FLUSH, input, inOff, availIn, this.out, 0, this.out.length)
      const availOutAfter = state[0] as number
      const availInAfter = state[1] as number
      have = this.out.length - availOutAfter
      if (availOutAfter !== 0) break
      // The output filled up (a message over ~64 KB compressed): keep this chunk, go on.
      parts ??= []
      parts.push(Buffer.from(this.out))
      inOff += availIn - availInAfter
      availIn = availInAfter
    }
    handle.reset()
    const last = this.out.subarray(0, have)
    const all = parts === undefined ? last : Buffer.concat([...parts, last])
    // RFC 7692 7.2.1: a sync flush ends with 00 00 ff ff, which the sender removes.
    return all.subarray(0, all.length - 4)
  }
}

export class FrameDeflater {
  private readonly engines = new Map<number, ReusedDeflate>()
  private reuse: boolean
  /** Where text is encoded before it is compressed. */
  private readonly scratch = Buffer.allocUnsafe(64 * 1024)

  constructor(
    readonly threshold: number,
    private readonly level: number,
  ) {
    this.reuse = this.selfTest()
  }

  private engine(windowBits: number): ReusedDeflate {
    let e = this.engines.get(windowBits)
    if (e === undefined) {
      e = new ReusedDeflate(windowBits, this.level)
      this.engines.set(windowBits, e)
    }
    return e
  }

  /** Compresses one message; the result is the caller's. */
  compress(input: Buffer, windowBits: number): Buffer {
    return Buffer.from(this.compressShared(input, input.length, windowBits))
  }

  /**
   * Compresses a message of text: encoded into a reused buffer, deflated into the engine's
   * reused output. The result is valid until the next call (copy it before then).
   */
  compressText(text: string, windowBits: number): Uint8Array {
    const need = Buffer.byteLength(text)
    // A rare huge message (a snapshot of 200 books) gets its own buffer instead of growing
    // the scratch one for the rest of the process's life.
    const input = need <= this.scratch.length ? this.scratch : Buffer.allocUnsafe(need)
    input.write(text, 0, need, "utf8")
    return this.compressShared(input, need, windowBits)
  }

  private compressShared(input: Buffer, length: number, windowBits: number): Buffer {
    if (this.reuse) return this.engine(windowBits).compress(input, length)
    const out = zlib.deflateRawSync(input.subarray(0, length), {
      windowBits,
      level: this.level,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    })
    return out.subarray(0, out.length - 4)
  }

  private selfTest(): boolean {
    try {
      const sample = Buffer.from(JSON.stringify({ type: "selftest", values: [1, 2, 3, 1, 2, 3, 1, 2, 3] }))
      const e = new ReusedDeflate(15, this.level)
      for (let i = 0; i < 2; i++) {
        const back = zlib.inflateRawSync(Buffer.concat([e.compress(sample), TRAILER]), {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
        })
        if (!back.equals(sample)) return false
      }
      return true
    } catch {
      return false
    }
  }
}

/** What this module needs of `ws` internals: the negotiated extension. */
interface WsInternals {
  readonly _extensions: Record<string, { readonly params: Record<string, unknown> } | undefined>
}

/**
 * The window size to compress a connection's frames with, or undefined when the client did not
 * negotiate permessage-deflate (or asked for an 8-bit window, which zlib's raw deflate cannot honour).
 */
export const negotiatedWindowBits = (ws: WebSocket): number | undefined => {
  const pmd = (ws as unknown as WsInternals)._extensions["permessage-deflate"]
  if (pmd === undefined || pmd.params.server_no_context_takeover !== true) return undefined
  const bits = pmd.params.server_max_window_bits
  const n = typeof bits === "number" ? bits : 15
  return n >= 9 && n <= 15 ? n : undefined
}
