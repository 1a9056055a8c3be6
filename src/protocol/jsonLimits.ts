/**
 * Shape limits of a JSON text, checked in one pass over its characters BEFORE `JSON.parse`:
 * nesting depth and the length of every array. Parsing an attacker's text first would already
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

/** Marks an open object on the stack; an open array holds its item count (>= 0). */
const OBJECT = -1

/** Shared by every call (JavaScript runs one at a time); grown only if a limit above its size is configured. */
let stack = new Int32Array(64)

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

/** undefined when within limits. Does not validate JSON syntax (JSON.parse does that after). */
export const checkJsonLimits = (text: string, limits: JsonLimits): JsonViolation | undefined => {
  const { maxDepth, maxArrayItems } = limits
  if (stack.length < maxDepth + 1) stack = new Int32Array(maxDepth + 1)
  let depth = 0
  // True right after `[`: the next significant character decides whether the array has an item.
  let opened = false
  const n = text.length
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (opened && !isSpace(c)) {
      opened = false
      if (c !== CLOSE_ARRAY) {
        stack[depth] = 1
        if (maxArrayItems < 1) return { reason: "array_too_long", limit: maxArrayItems }
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
        stack[depth] = c === OPEN_ARRAY ? 0 : OBJECT
        opened = c === OPEN_ARRAY
        break
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        if (depth > 0) depth--
        break
      case COMMA: {
        const items = stack[depth] as number
        // A comma inside an open array starts its next item (depth 0 is outside any container).
        if (depth > 0 && items !== OBJECT) {
          if (items >= maxArrayItems) return { reason: "array_too_long", limit: maxArrayItems }
          stack[depth] = items + 1
        }
        break
      }
    }
    i++
  }
  return undefined
}
