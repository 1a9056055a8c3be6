/**
 * Order-book checksum (docs/protocol.md "`orderbook_update`"): CRC-32 (IEEE, as zlib computes it,
 * unsigned) of one ASCII string made of the top 10 asks best first, then the top 10 bids best
 * first, each level written as its decimal price immediately followed by its decimal quantity.
 * A client rebuilds the same string from what it received and compares, to detect a corrupt book.
 */
import * as zlib from "node:zlib"

export interface BookLevel {
  readonly price: number
  readonly quantity: number
}

/** Levels covered by the checksum on each side. */
export const CHECKSUM_DEPTH = 10

/** The exact string whose CRC-32 is the checksum. */
export const checksumInput = (bids: ReadonlyArray<BookLevel>, asks: ReadonlyArray<BookLevel>): string => {
  let s = ""
  const na = Math.min(asks.length, CHECKSUM_DEPTH)
  for (let i = 0; i < na; i++) {
    const l = asks[i] as BookLevel
    s += `${l.price}${l.quantity}`
  }
  const nb = Math.min(bids.length, CHECKSUM_DEPTH)
  for (let i = 0; i < nb; i++) {
    const l = bids[i] as BookLevel
    s += `${l.price}${l.quantity}`
  }
  return s
}

// Table fallback for Node versions before 20.15 / 22.2, where zlib.crc32 does not exist.
let table: Uint32Array | undefined
const crcTable = (): Uint32Array => {
  if (table !== undefined) return table
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  table = t
  return t
}

/** CRC-32 (IEEE 802.3, reflected, as zlib) of an ASCII/Latin-1 string, unsigned. */
export const crc32Table = (s: string): number => {
  const t = crcTable()
  let c = 0xffffffff
  for (let i = 0; i < s.length; i++) c = (t[(c ^ s.charCodeAt(i)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const nativeCrc32: ((data: string) => number) | undefined =
  typeof zlib.crc32 === "function" ? (data) => zlib.crc32(data) : undefined

/** CRC-32 of a string; native zlib when available (the input is ASCII, so UTF-8 bytes = chars). */
export const crc32 = (s: string): number => (nativeCrc32 !== undefined ? nativeCrc32(s) >>> 0 : crc32Table(s))

/** The protocol checksum of a book. */
export const orderbookChecksum = (bids: ReadonlyArray<BookLevel>, asks: ReadonlyArray<BookLevel>): number =>
  crc32(checksumInput(bids, asks))
