/**
 * checkJsonLimits: the shape limits (nesting depth, items per array) of a JSON text, decided
 * before JSON.parse. It must agree with the parsed value on every valid JSON text, whatever its
 * strings hold, and never throw on any text.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { checkJsonLimits, checkJsonShape, type JsonLimits } from "../../src/protocol/jsonLimits.js"

/** Depth of a parsed value: a scalar is 0, `{}` and `[]` are 1. */
const depthOf = (v: unknown): number => {
  if (Array.isArray(v)) return 1 + v.reduce((m: number, x) => Math.max(m, depthOf(x)), 0)
  if (typeof v === "object" && v !== null)
    return 1 + Object.values(v).reduce((m: number, x) => Math.max(m, depthOf(x)), 0)
  return 0
}
/** Most members of any object in a parsed value. */
const widestObject = (v: unknown): number => {
  if (Array.isArray(v)) return v.reduce((m: number, x) => Math.max(m, widestObject(x)), 0)
  if (typeof v === "object" && v !== null)
    return Object.values(v).reduce((m: number, x) => Math.max(m, widestObject(x)), Object.keys(v).length)
  return 0
}
/** Longest array anywhere in a parsed value. */
const longestArray = (v: unknown): number => {
  if (Array.isArray(v)) return v.reduce((m: number, x) => Math.max(m, longestArray(x)), v.length)
  if (typeof v === "object" && v !== null)
    return Object.values(v).reduce((m: number, x) => Math.max(m, longestArray(x)), 0)
  return 0
}

const limits = (maxDepth: number, maxArrayItems: number): JsonLimits => ({ maxDepth, maxArrayItems })

/** Strings made of the characters that could fool a scanner: brackets, commas, quotes, escapes. */
const trickyString = FastCheck.string({
  unit: FastCheck.constantFrom("[", "]", "{", "}", ",", '"', "\\", "\\\\", '\\"', "a", " ", "\u2028", "😀"),
})
const trickyJson = FastCheck.letrec((tie) => ({
  value: FastCheck.oneof(
    { depthSize: "small", withCrossShrink: true },
    FastCheck.constant(null),
    FastCheck.boolean(),
    FastCheck.integer(),
    trickyString,
    FastCheck.array(tie("value"), { maxLength: 6 }),
    FastCheck.dictionary(trickyString, tie("value"), { maxKeys: 4 }),
  ),
})).value

describe("checkJsonLimits", () => {
  it("measures depth by open brackets: a scalar is 0, a client message with targets is 2", () => {
    expect(checkJsonLimits("42", limits(0, 10))).toBeUndefined()
    expect(checkJsonLimits("{}", limits(0, 10))).toEqual({ reason: "too_deep", limit: 0 })
    expect(checkJsonLimits('{"type":"subscribe","targets":["005930"]}', limits(2, 10))).toBeUndefined()
    expect(checkJsonLimits('{"type":"subscribe","targets":["005930"]}', limits(1, 10))).toEqual({
      reason: "too_deep",
      limit: 1,
    })
  })

  it("refuses a 100,000-deep nesting at the first bracket past the limit", () => {
    expect(checkJsonLimits("[".repeat(100_000), limits(8, 100))).toEqual({ reason: "too_deep", limit: 8 })
    expect(checkJsonLimits('{"a":'.repeat(100_000), limits(8, 100))).toEqual({ reason: "too_deep", limit: 8 })
  })

  it("counts the items of every open array, nested ones apart", () => {
    expect(checkJsonLimits("[]", limits(4, 0))).toBeUndefined()
    expect(checkJsonLimits("[ ]", limits(4, 0))).toBeUndefined()
    expect(checkJsonLimits("[1]", limits(4, 0))).toEqual({ reason: "array_too_long", limit: 0 })
    expect(checkJsonLimits("[1,2,3]", limits(4, 3))).toBeUndefined()
    expect(checkJsonLimits("[1,2,3,4]", limits(4, 3))).toEqual({ reason: "array_too_long", limit: 3 })
    // The outer array has 3 items; its inner arrays' items are theirs, not the outer's.
    expect(checkJsonLimits("[[1,2,3],[4,5,6],[7,8,9]]", limits(4, 3))).toBeUndefined()
    expect(checkJsonLimits("[[1,2],[3,4],[5,6],[7]]", limits(4, 3))).toEqual({
      reason: "array_too_long",
      limit: 3,
    })
    // Commas between an object's members are not array items.
    expect(checkJsonLimits('[{"a":1,"b":2,"c":3,"d":4}]', limits(4, 1))).toBeUndefined()
  })

  it("refuses tens of thousands of numbers in a 64 KB frame", () => {
    const targets = Array.from({ length: 30_000 }, (_, i) => i % 10)
    const text = JSON.stringify({ type: "subscribe", subscription_type: "stock", targets })
    expect(checkJsonLimits(text, limits(8, 100))).toEqual({ reason: "array_too_long", limit: 100 })
  })

  it("skips brackets, commas and escaped quotes inside strings", () => {
    expect(checkJsonLimits('["[[[[", "]]]", "\\"[[[[", "\\\\", "{,,,,}"]', limits(1, 5))).toBeUndefined()
    expect(checkJsonLimits('{"k\\"[":"\\\\\\"{{{"}', limits(1, 0))).toBeUndefined()
    // An escaped backslash does not escape the quote after it: the string ends there.
    expect(checkJsonLimits('["\\\\",[]]', limits(1, 5))).toEqual({ reason: "too_deep", limit: 1 })
  })

  it("never reads past an unterminated string", () => {
    expect(checkJsonLimits('["abc', limits(1, 1))).toBeUndefined()
    expect(checkJsonLimits('["abc\\', limits(1, 1))).toBeUndefined()
  })

  it.prop(
    "agrees with the parsed value on every JSON text, compact or indented",
    [
      trickyJson,
      FastCheck.integer({ min: 0, max: 6 }),
      FastCheck.integer({ min: 0, max: 7 }),
      FastCheck.constantFrom(0, 1, "\t"),
    ],
    ([value, maxDepth, maxArrayItems, indent]) => {
      const text = JSON.stringify(value, null, indent)
      const depth = depthOf(value)
      const longest = longestArray(value)
      const v = checkJsonLimits(text, limits(maxDepth, maxArrayItems))
      if (depth <= maxDepth && longest <= maxArrayItems) expect(v).toBeUndefined()
      else if (v?.reason === "too_deep") expect(depth).toBeGreaterThan(maxDepth)
      else {
        expect(v).toEqual({ reason: "array_too_long", limit: maxArrayItems })
        expect(longest).toBeGreaterThan(maxArrayItems)
      }
    },
  )

  it.prop(
    "terminates without throwing on any text",
    [
      FastCheck.string({ unit: FastCheck.constantFrom("[", "]", "{", "}", ",", '"', "\\", "1", " ") }),
      FastCheck.string(),
    ],
    ([a, b]) => {
      checkJsonLimits(a + b, limits(3, 3))
      checkJsonLimits(b + a, limits(3, 3))
    },
  )

  describe("checkJsonShape: members per object too", () => {
    const shape = (maxDepth: number, maxArrayItems: number, maxObjectMembers: number) => ({
      maxDepth,
      maxArrayItems,
      maxObjectMembers,
    })

    it("counts each object's members apart, and never limits them in checkJsonLimits", () => {
      expect(checkJsonShape("{}", shape(2, 0, 0))).toBeUndefined()
      expect(checkJsonShape('{"a":1}', shape(2, 0, 0))).toEqual({ reason: "too_many_members", limit: 0 })
      expect(checkJsonShape('{"a":1,"b":[1,2,3],"c":{"d":1,"e":2}}', shape(2, 3, 3))).toBeUndefined()
      expect(checkJsonShape('{"a":1,"b":2,"c":3,"d":4}', shape(2, 3, 3))).toEqual({
        reason: "too_many_members",
        limit: 3,
      })
      // Commas inside member values and strings are not members.
      expect(checkJsonShape('{"a,b":[1,2,3],"c":"d,e,f"}', shape(2, 3, 2))).toBeUndefined()
      const wide = `{${Array.from({ length: 6500 }, (_, i) => `"k${i}":1`).join(",")}}`
      expect(checkJsonShape(wide, shape(8, 100, 32))).toEqual({ reason: "too_many_members", limit: 32 })
      expect(checkJsonLimits(wide, limits(8, 100))).toBeUndefined()
    })

    it.prop(
      "agrees with the parsed value on every JSON text",
      [
        trickyJson,
        FastCheck.integer({ min: 0, max: 6 }),
        FastCheck.integer({ min: 0, max: 7 }),
        FastCheck.integer({ min: 0, max: 5 }),
        FastCheck.constantFrom(0, 2),
      ],
      ([value, maxDepth, maxArrayItems, maxObjectMembers, indent]) => {
        const text = JSON.stringify(value, null, indent)
        const v = checkJsonShape(text, shape(maxDepth, maxArrayItems, maxObjectMembers))
        const within =
          depthOf(value) <= maxDepth &&
          longestArray(value) <= maxArrayItems &&
          widestObject(value) <= maxObjectMembers
        if (within) expect(v).toBeUndefined()
        else if (v?.reason === "too_deep") expect(depthOf(value)).toBeGreaterThan(maxDepth)
        else if (v?.reason === "array_too_long") expect(longestArray(value)).toBeGreaterThan(maxArrayItems)
        else {
          expect(v).toEqual({ reason: "too_many_members", limit: maxObjectMembers })
          expect(widestObject(value)).toBeGreaterThan(maxObjectMembers)
        }
      },
    )
  })
})
