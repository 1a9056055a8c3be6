import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { checksumInput, crc32, crc32Table, orderbookChecksum } from "../../src/market/checksum.js"

const lv = (levels: ReadonlyArray<readonly [number, number]>) =>
  levels.map(([price, quantity]) => ({ price, quantity }))

// Expected values computed independently with Python: zlib.crc32(s.encode()).
describe("order book checksum", () => {
  it("matches zlib's CRC-32 on the standard check value", () => {
    expect(crc32("123456789")).toBe(3421780262)
    expect(crc32Table("123456789")).toBe(3421780262)
    expect(crc32("")).toBe(0)
  })

  it("writes asks best first, then bids best first, price then quantity", () => {
    const bids = lv([
      [72900, 1000],
      [72800, 1500],
    ])
    const asks = lv([
      [73000, 800],
      [73100, 1200],
    ])
    expect(checksumInput(bids, asks)).toBe("73000800731001200729001000728001500")
    expect(orderbookChecksum(bids, asks)).toBe(25650797)
  })

  it("uses only the top 10 levels of each side", () => {
    const bids = lv(Array.from({ length: 12 }, (_, i) => [73000 - 100 * i, 1000 + 37 * i] as const))
    const asks = lv(Array.from({ length: 12 }, (_, i) => [73100 + 100 * i, 500 + 11 * i] as const))
    expect(checksumInput(bids, asks).length).toBe(170)
    expect(orderbookChecksum(bids, asks)).toBe(3457741389)
    expect(orderbookChecksum(bids.slice(0, 10), asks.slice(0, 10))).toBe(3457741389)
  })

  it("handles band boundaries and one-sided books", () => {
    expect(
      orderbookChecksum(
        lv([
          [1999, 5],
          [1998, 7],
        ]),
        lv([
          [2000, 3],
          [2005, 9],
        ]),
      ),
    ).toBe(3969132649)
    expect(orderbookChecksum([], lv([[50000, 1]]))).toBe(512533699)
  })

  it("native and table implementations agree", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.string({ unit: "binary-ascii", maxLength: 300 }), (s) => {
        expect(crc32(s)).toBe(crc32Table(s))
      }),
    )
  })
})
