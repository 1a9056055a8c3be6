import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { priceChange, round2 } from "../../src/market/pricing.js"
import {
  ceilToTick,
  dailyLimits,
  floorToTick,
  isOnTickGrid,
  TICK_BANDS,
  tickDown,
  tickSize,
  tickUp,
} from "../../src/market/tickSize.js"

describe("tick grid helpers", () => {
  it("rounds up and down to the grid of each band", () => {
    expect(ceilToTick(1999.5)).toBe(2000)
    expect(ceilToTick(2001)).toBe(2005)
    expect(floorToTick(2004)).toBe(2000)
    expect(ceilToTick(50_000)).toBe(50_000)
    expect(ceilToTick(49_951)).toBe(50_000)
    expect(tickDown(50_000)).toBe(49_950)
    expect(tickUp(49_950)).toBe(50_000)
  })

  it("computes the ±30% daily limits on the grid", () => {
    expect(dailyLimits(73_000)).toEqual({ lower: 51_100, upper: 94_900 })
    expect(dailyLimits(10_000)).toEqual({ lower: 7_000, upper: 13_000 })
    // 0.7 × 2,800 = 1,960 (tick 1); 1.3 × 2,800 = 3,640 (tick 5)
    expect(dailyLimits(2_800)).toEqual({ lower: 1_960, upper: 3_640 })
  })

  it.prop(
    "limits are on the grid and inside ±30%",
    { prev: FastCheck.integer({ min: 100, max: 3_000_000 }) },
    ({ prev }) => {
      const p = floorToTick(prev)
      const { lower, upper } = dailyLimits(p)
      expect(isOnTickGrid(lower) && isOnTickGrid(upper)).toBe(true)
      expect(lower).toBeGreaterThanOrEqual(p * 0.7 - 1e-6)
      expect(upper).toBeLessThanOrEqual(p * 1.3 + 1e-6)
      // Tight: one tick further out would leave the band.
      expect(tickDown(lower)).toBeLessThan(p * 0.7 + 1e-6)
      expect(upper + tickSize(upper)).toBeGreaterThan(p * 1.3 - 1e-6)
    },
  )
})

describe("derived price fields", () => {
  it("derives change and a 2-decimal change_percent", () => {
    expect(priceChange(73_000, 74_000)).toEqual({ change: 1000, change_percent: 1.37 })
    expect(priceChange(73_000, 72_000)).toEqual({ change: -1000, change_percent: -1.37 })
    expect(priceChange(2600, 2612.345)).toEqual({ change: 12.35, change_percent: 0.47 })
    expect(round2(-0.004)).toBe(0)
  })
})

describe("tickSize", () => {
  it.prop(
    "agrees with the band table",
    { price: FastCheck.integer({ min: 1, max: 5_000_000 }) },
    ({ price }) => {
      const band = TICK_BANDS.find(([upTo]) => price < upTo)
      expect(tickSize(price)).toBe(band?.[1])
    },
  )
})
