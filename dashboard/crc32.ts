/**
 * Order-book checksum, computed in the browser (docs/protocol.md "`orderbook_update`"). Written on its
 * own rather than imported from `src/market/checksum.ts`: that one uses `node:zlib`, and a client
 * that reuses the server's code would not catch a server that gets the definition wrong.
 */

export interface Level {
  readonly price: number
  readonly quantity: number
}

/** Levels per side that the checksum covers. */
const DEPTH = 10

/** The reflected IEEE 802.3 polynomial, as zlib, PNG and Ethernet use it. */
const POLY = 0xedb88320

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256)
  for (let byte = 0; byte < 256; byte++) {
    let c = byte
    for (let bit = 0; bit < 8; bit++) c = (c >>> 1) ^ (c & 1 ? POLY : 0)
    t[byte] = c
  }
  return t
})()

/** CRC-32 of bytes, unsigned: what zlib's `crc32(0, data)` returns. */
export const crc32Bytes = (bytes: Uint8Array): number => {
  let c = ~0
  for (const b of bytes) c = (c >>> 8) ^ (TABLE[(c ^ b) & 0xff] as number)
  return ~c >>> 0
}

const encoder = new TextEncoder()

/** CRC-32 of a string's UTF-8 bytes (the checksum input is ASCII, so bytes = characters). */
export const crc32 = (text: string): number => crc32Bytes(encoder.encode(text))

/** Top 10 asks best first, then top 10 bids best first, each as price then quantity, no separators. */
export const checksumText = (asks: ReadonlyArray<Level>, bids: ReadonlyArray<Level>): string =>
  [...asks.slice(0, DEPTH), ...bids.slice(0, DEPTH)].map((l) => `${l.price}${l.quantity}`).join("")

export const bookChecksum = (asks: ReadonlyArray<Level>, bids: ReadonlyArray<Level>): number =>
  crc32(checksumText(asks, bids))

/** `0x` and 8 hex digits, how the dashboard shows a checksum. */
export const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`
