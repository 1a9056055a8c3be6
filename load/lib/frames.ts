/**
 * The load client's frame reader. Most frames are only *counted*: a few byte searches on the
 * raw Buffer give the number of messages (`batch_size`), the last sequence number and whether an
 * `error` is inside, without decoding UTF-8 or parsing JSON. One frame in N (plus every frame that
 * holds an error, and each connection's first frames) is fully parsed for latency and details.
 * This keeps one client process from becoming the bottleneck at hundreds of thousands of msg/s.
 */

import { Either } from "effect"
import { unpackFrame } from "../../src/client/frames.js"

const BATCH_SIZE_KEY = Buffer.from('"batch_size":')
const SEQUENCE_KEY = Buffer.from('"sequence":')
const ERROR_TYPE = Buffer.from('"type":"error"')
/** `batch_size` sits at the start of the envelope; looking further would only find false hits. */
const BATCH_SIZE_WINDOW = 64

const DIGIT_0 = 48
const DIGIT_9 = 57
const SPACE = 32

/** Reads the non-negative integer that starts at `offset` (after optional spaces); -1 if none. */
export const readUint = (buf: Uint8Array, offset: number): number => {
  let i = offset
  while (i < buf.length && buf[i] === SPACE) i++
  let value = -1
  for (; i < buf.length; i++) {
    const c = buf[i] as number
    if (c < DIGIT_0 || c > DIGIT_9) break
    value = (value < 0 ? 0 : value * 10) + (c - DIGIT_0)
  }
  return value
}

export interface FrameScan {
  /** Messages in the frame: `batch_size` for a batch, else 1. */
  readonly messages: number
  /** The frame's last sequence number (a batch's envelope number), -1 if absent. */
  readonly lastSequence: number
  readonly isBatch: boolean
  /** The frame contains an `error` message (then it is parsed fully, errors are counted exactly). */
  readonly hasError: boolean
}

/** Counts a frame without parsing it. */
export const scanFrame = (buf: Buffer): FrameScan => {
  const b = buf.indexOf(BATCH_SIZE_KEY)
  const isBatch = b >= 0 && b < BATCH_SIZE_WINDOW
  const size = isBatch ? readUint(buf, b + BATCH_SIZE_KEY.length) : 1
  // The sequence is written last; for a batch the last occurrence is the envelope's, or else
  // the last message's, which carries the same number.
  const s = buf.lastIndexOf(SEQUENCE_KEY)
  return {
    messages: size > 0 ? size : 1,
    lastSequence: s >= 0 ? readUint(buf, s + SEQUENCE_KEY.length) : -1,
    isBatch,
    hasError: buf.indexOf(ERROR_TYPE) >= 0,
  }
}

/** Types whose `timestamp` is the market event time, so receive time minus it is end-to-end latency. */
export const LATENCY_TYPES: ReadonlySet<string> = new Set([
  "price_update",
  "orderbook_update",
  "market_status",
  "sector_update",
])

export interface ParsedMessage {
  readonly type: string
  readonly sequence: number | undefined
  /** Event time in epoch ms, for non-snapshot market messages only. */
  readonly eventTimeMs: number | undefined
  readonly errorCode: string | undefined
  /** For `subscribed`: accepted targets. */
  readonly subscribedTargets: number
}

export interface ParsedFrame {
  readonly messages: ReadonlyArray<ParsedMessage>
  /** Inner sequence numbers were not consecutive (the cheap gap check assumes they are). */
  readonly nonConsecutive: boolean
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const toMessage = (m: Readonly<Record<string, unknown>>): ParsedMessage => {
  const type = typeof m.type === "string" ? m.type : "unknown"
  const timestamp = m.timestamp
  // Snapshots carry the time of the *last* event, possibly minutes old: not a latency sample.
  const eventTimeMs =
    LATENCY_TYPES.has(type) && m.snapshot !== true && typeof timestamp === "string"
      ? Date.parse(timestamp)
      : Number.NaN
  return {
    type,
    sequence: typeof m.sequence === "number" ? m.sequence : undefined,
    eventTimeMs: Number.isFinite(eventTimeMs) ? eventTimeMs : undefined,
    errorCode: type === "error" && typeof m.code === "string" ? m.code : undefined,
    subscribedTargets: type === "subscribed" && Array.isArray(m.targets) ? m.targets.length : 0,
  }
}

/**
 * Fully parses a frame, unpacking a batch the way the client SDK does (one definition of the
 * wire format). Undefined when the frame is not a readable JSON object.
 */
export const parseFrame = (text: string): ParsedFrame | undefined => {
  const unpacked = unpackFrame(text)
  if (Either.isLeft(unpacked)) return undefined
  const messages = unpacked.right.items.filter(isRecord).map(toMessage)
  let nonConsecutive = false
  for (let i = 1; i < messages.length; i++) {
    const prev = messages[i - 1]?.sequence
    const cur = messages[i]?.sequence
    if (prev !== undefined && cur !== undefined && cur !== prev + 1) nonConsecutive = true
  }
  return { messages, nonConsecutive }
}

/** Deterministic 1-in-N sampling over all frames of the process. */
export class Sampler {
  #count = 0
  constructor(readonly every: number) {}
  next(): boolean {
    this.#count++
    if (this.every <= 1) return true
    if (this.#count >= this.every) {
      this.#count = 0
      return true
    }
    return false
  }
}
