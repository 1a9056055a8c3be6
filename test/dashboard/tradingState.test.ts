/** The trading-state badge's rules, in Node: what it says for each state, and its countdown. */
import { describe, expect, it } from "@effect/vitest"
import { applyInstrumentStatus, makeState, select } from "../../dashboard/state.js"
import { badgeOf, countdownText } from "../../dashboard/tradingState.js"
import type { InstrumentStatus } from "../../src/protocol/server.js"

const at = Date.parse("2026-12-07T01:00:00.000Z")
const vi: InstrumentStatus = {
  type: "instrument_status",
  code: "247540",
  status: "vi",
  vi_type: "dynamic",
  reference_price: 180_000,
  expected_end: "2026-12-07T01:02:00.000Z",
  reason: "dynamic VI: 191000 is 6.11% from the last execution 180000 (threshold ±6%)",
  timestamp: "2026-12-07T01:00:00.000Z",
}

describe("trading-state badge", () => {
  it("shows a VI with its kind and the time left, and nothing while trading", () => {
    expect(badgeOf(vi, at)).toEqual({
      kind: "vi",
      label: "Dynamic VI",
      countdown: "2:00",
      title: `${vi.reason} (reference 180000)`,
    })
    expect(badgeOf(vi, at + 61_500)?.countdown).toBe("0:59")
    expect(badgeOf(vi, at + 120_000)?.countdown).toBe("ending")
    expect(badgeOf({ ...vi, status: "trading" }, at)).toBeUndefined()
    expect(badgeOf(undefined, at)).toBeUndefined()
  })

  it("shows a halt, with a countdown only when an end is known", () => {
    const halted: InstrumentStatus = {
      type: "instrument_status",
      code: "005930",
      status: "halted",
      reason: "set by ingest",
      timestamp: vi.timestamp,
    }
    expect(badgeOf(halted, at)).toEqual({
      kind: "halted",
      label: "Halted",
      countdown: "",
      title: "set by ingest",
    })
    expect(badgeOf({ ...halted, expected_end: "2026-12-07T01:10:00.000Z" }, at)?.countdown).toBe("10:00")
  })

  it("rounds the countdown up to whole seconds", () => {
    expect(countdownText(at + 1, at)).toBe("0:01")
    expect(countdownText(at + 59_001, at)).toBe("1:00")
  })

  it("redraws the book panel only for the selected stock's status, and forgets an off-list stock's", () => {
    const s = makeState(["005930"])
    s.dirty.book = false
    applyInstrumentStatus(s, vi)
    expect(s.dirty.book).toBe(false)
    select(s, "247540")
    s.dirty.book = false
    applyInstrumentStatus(s, vi)
    expect(s.dirty.book).toBe(true)
    expect(s.statuses.get("247540")).toBe(vi)
    select(s, "005930")
    expect(s.statuses.has("247540")).toBe(false)
  })
})
