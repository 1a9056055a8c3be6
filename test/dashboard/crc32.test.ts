/**
 * The browser's own CRC-32 (dashboard/crc32.ts) against zlib and against the server's
 * checksum, so a disagreement would be caught here and not only as red text on the page.
 */
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { bookChecksum, checksumText, crc32, hex32 } from "../../dashboard/crc32.js"
import { orderbookChecksum } from "../../src/market/checksum.js"

const level = FastCheck.record({
  price: FastCheck.integer({ min: 1, max: 3_000_000 }),
  quantity: FastCheck.integer({ min: 0, max: 10_000_000 }),
})
const side = FastCheck.array(level, { maxLength: 14 })

describe("dashboard CRC-32", () => {
  it("has the standard check value and agrees with zlib", () => {
    expect(crc32("123456789")).toBe(0xcbf43926)
    expect(crc32("")).toBe(0)
    FastCheck.assert(
      FastCheck.property(FastCheck.string({ unit: "binary-ascii", maxLength: 300 }), (s) => {
        expect(crc32(s)).toBe(zlib.crc32(s) >>> 0)
      }),
    )
  })

  it("builds the checksum string of docs/protocol.md: asks best first, then bids, price then quantity", () => {
    const asks = [
      { price: 73000, quantity: 800 },
      { price: 73100, quantity: 1200 },
    ]
    const bids = [{ price: 72900, quantity: 1000 }]
    expect(checksumText(asks, bids)).toBe("73000800731001200729001000")
  })

  it("matches the server's checksum on any book, including over 10 levels a side", () => {
    FastCheck.assert(
      FastCheck.property(side, side, (asks, bids) => {
        expect(bookChecksum(asks, bids)).toBe(orderbookChecksum(bids, asks))
      }),
    )
  })

  it("shows a checksum as 8 hex digits", () => {
    expect(hex32(0)).toBe("0x00000000")
    expect(hex32(0xcbf43926)).toBe("0xcbf43926")
  })
})
