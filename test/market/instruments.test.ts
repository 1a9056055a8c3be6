import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { INDEX_ROWS, INSTRUMENT_ROWS } from "../../src/market/data/instruments.js"
import { KOSPI200_CODES } from "../../src/market/data/kospi200.js"
import { isOnTickGrid } from "../../src/market/tickSize.js"
import { SECTORS } from "../../src/market/types.js"
import { makeUniverse } from "../../src/market/Universe.js"

describe("shipped instrument universe", () => {
  it("has at least 150 real rows with unique 6-digit codes", () => {
    expect(INSTRUMENT_ROWS.length).toBeGreaterThanOrEqual(150)
    const codes = INSTRUMENT_ROWS.map((r) => r[0])
    expect(new Set(codes).size).toBe(codes.length)
    for (const code of codes) expect(code).toMatch(/^\d{6}$/)
  })

  it("has names in both languages and a known market", () => {
    for (const [code, name, nameKo, market] of INSTRUMENT_ROWS) {
      expect(name.trim().length, code).toBeGreaterThan(0)
      expect(nameKo.trim().length, code).toBeGreaterThan(0)
      expect(["KOSPI", "KOSDAQ"]).toContain(market)
    }
  })

  it("puts every reference close on the KRX tick grid", () => {
    const off = INSTRUMENT_ROWS.filter((r) => !isOnTickGrid(r[5])).map((r) => `${r[0]} ${r[5]}`)
    expect(off).toEqual([])
  })

  it("fills every sector and both markets, with at least 40 KOSDAQ rows", () => {
    for (const sector of SECTORS) {
      expect(INSTRUMENT_ROWS.filter((r) => r[4] === sector).length, `sector ${sector}`).toBeGreaterThan(0)
    }
    expect(INSTRUMENT_ROWS.filter((r) => r[3] === "KOSDAQ").length).toBeGreaterThanOrEqual(40)
    expect(INSTRUMENT_ROWS.filter((r) => r[3] === "KOSPI").length).toBeGreaterThanOrEqual(40)
  })

  it("keeps the protocol's example codes and sectors", () => {
    const byCode = new Map(INSTRUMENT_ROWS.map((r) => [r[0], r]))
    expect(byCode.get("005930")?.[1]).toBe("Samsung Electronics")
    expect(byCode.get("000660")?.[4]).toBe("IT")
    expect(SECTORS).toContain("IT")
    expect(SECTORS).toContain("FINANCE")
    expect(INDEX_ROWS.map((r) => r[0])).toEqual(["KOSPI", "KOSDAQ"])
  })

  it("pads with synthetic instruments up to UNIVERSE_SIZE", () => {
    const u = makeUniverse(Option.some(INSTRUMENT_ROWS.length + 25))
    expect(u.instruments.length).toBe(INSTRUMENT_ROWS.length + 25)
    expect(u.instruments.filter((i) => i.synthetic).every((i) => isOnTickGrid(i.prevClose))).toBe(true)
  })
})

describe("KOSPI 200 membership flag", () => {
  it("flags only shipped KOSPI stocks, most of the large KOSPI names, and no synthetic one", () => {
    const u = makeUniverse(Option.some(400))
    const flagged = u.instruments.filter((i) => i.kospi200)
    expect(flagged.every((i) => i.market === "KOSPI" && !i.synthetic)).toBe(true)
    expect(KOSPI200_CODES.size).toBe(flagged.length)
    expect(flagged.length).toBeGreaterThan(100)
    expect(flagged.length).toBeLessThanOrEqual(200)
    expect(u.byCode.get("005930")?.kospi200).toBe(true)
    expect(u.byCode.get("247540")?.kospi200).toBe(false) // KOSDAQ
  })
})
