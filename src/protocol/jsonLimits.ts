/**
 * Shape limits of a JSON text, checked in one pass over its characters BEFORE `JSON.parse`:
 * nesting depth, the length of every array and (`checkJsonShape`) the members of every object. Parsing an attacker's text first would already
 * have paid for what the limits are there to refuse (a 30,000-item array handed to Schema, a
 * 100,000-deep nesting that overflows a recursive walk). The scan allocates nothing: it keeps
 * one item count per open container in a module-level stack that never holds more than
 * `maxDepth` entries (a deeper text is refused at the bracket that goes too deep).
 *
 * It does not validate syntax: `JSON.parse` does that afterwards, on a text whose shape is now
 * known to be bounded. Brackets inside strings are skipped (escapes included).
 */

export interface JsonLimits {
  readonly maxDepth: number
  readonly maxArrayItems: number
}

export type JsonViolation =
  | { readonly reason: "too_deep"; readonly limit: number }
  | { readonly reason: "array_too_long"; readonly limit: number }

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const COMMA = 0x2c
const SPACE = 0x20
const TAB = 0x09
const LF = 0x0a
const CR = 0x0d

/** Per open container (index = depth): its items or members so far, and whether it is an object. */
let counts = new Int32Array(64)
let isObject = new Uint8Array(64)

const isSpace = (c: number) => c === SPACE || c === LF || c === CR || c === TAB

/** Index just past the string whose opening quote is at `open` (or `text.length` if unterminated). */
const skipString = (text: string, open: number): number => {
  let i = open + 1
  for (;;) {
    // indexOf is vectorised by V8: strings, the bulk of most frames, cost little per character.
    const q = text.indexOf('"', i)
    if (q < 0) return text.length
    // The quote closes the string unless an odd run of backslashes escapes it. Each run is read
    // once (it ends at this quote), so the whole scan stays linear.
    let b = q - 1
    while (b > open && text.charCodeAt(b) === BACKSLASH) b--
    if ((q - 1 - b) % 2 === 0) return q + 1
    i = q + 1
  }
}

/** `JsonLimits` plus a bound on the members of each object. */
export interface JsonShapeLimits extends JsonLimits {
  readonly maxObjectMembers: number
}

export type JsonShapeViolation =
  | JsonViolation
  | { readonly reason: "too_many_members"; readonly limit: number }

/**
 * `checkJsonLimits` that also bounds the members of each object. Why it matters: V8 parses an
 * object of thousands of distinct keys far more slowly per byte than anything else (measured:
 * a 64 KB frame of one object with 6,500 distinct keys takes 16.7 ms; the same keys spread over
 * 100 objects of 60 take 0.36 ms, and 32,000 numbers 1.2 ms). Not validating syntax either.
 */
export const checkJsonShape = (text: string, limits: JsonShapeLimits): JsonShapeViolation | undefined =>
  scan(text, limits.maxDepth, limits.maxArrayItems, limits.maxObjectMembers)

/** undefined when within limits. Does not validate JSON syntax (JSON.parse does that after). */
export const checkJsonLimits = (text: string, limits: JsonLimits): JsonViolation | undefined => {
  const v = scan(text, limits.maxDepth, limits.maxArrayItems, Number.POSITIVE_INFINITY)
  return v?.reason === "too_many_members" ? undefined : v
}

const scan = (
  text: string,
  maxDepth: number,
  maxArrayItems: number,
  maxObjectMembers: number,
): JsonShapeViolation | undefined => {
  const n = text.length
  // Depth never exceeds the limit, nor the number of brackets in the text (so a huge configured
  // limit never allocates more than the text needs).
  const needed = Math.min(maxDepth, n) + 1
  if (counts.length < needed) {
    counts = new Int32Array(needed)
    isObject = new Uint8Array(needed)
  }
  let depth = 0
  // True right after `[` or `{`: the next significant character says whether it has a first item.
  let opened = false
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (opened && !isSpace(c)) {
      opened = false
      if (c !== CLOSE_ARRAY && c !== CLOSE_OBJECT) {
        counts[depth] = 1
        const v = overLimit(depth, maxArrayItems, maxObjectMembers)
        if (v !== undefined) return v
      }
    }
    switch (c) {
      case QUOTE:
        i = skipString(text, i)
        continue
      case OPEN_ARRAY:
      case OPEN_OBJECT:
        if (depth >= maxDepth) return { reason: "too_deep", limit: maxDepth }
        depth++
        counts[depth] = 0
        isObject[depth] = c === OPEN_OBJECT ? 1 : 0
        opened = true
        break
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        if (depth > 0) depth--
        break
      case COMMA:
        // A comma inside an open container starts its next item (depth 0 is outside any).
        if (depth > 0) {
          counts[depth] = (counts[depth] as number) + 1
          const v = overLimit(depth, maxArrayItems, maxObjectMembers)
          if (v !== undefined) return v
        }
        break
    }
    i++
  }
  return undefined
}

const overLimit = (
  depth: number,
  maxArrayItems: number,
  maxObjectMembers: number,
): JsonShapeViolation | undefined => {
  const count = counts[depth] as number
  if (isObject[depth] === 1)
    return count > maxObjectMembers ? { reason: "too_many_members", limit: maxObjectMembers } : undefined
  return count > maxArrayItems ? { reason: "array_too_long", limit: maxArrayItems } : undefined
}
