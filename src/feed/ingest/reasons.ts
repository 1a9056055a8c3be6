/**
 * Why an ingested event was rejected, as the publisher reads it: a rule's sentence, or a Schema
 * failure merged into one line per offending field. A Schema failure is kept as it is until it is
 * reported, because describing it is most of the price of a bad event (see `../ingest.ts`).
 */
import { ParseResult } from "effect"

const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 77)}...` : s)

/**
 * One line per offending field: "path: Expected A or B, actual X". Schema reports each member of a
 * union separately (and an optional field's `undefined` alternative); merging them keeps the
 * reason readable for the publisher.
 */
const describeParseError = (e: ParseResult.ParseError): string => {
  const byPath = new Map<string, Array<string>>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(e)) {
    const path = issue.path.join(".")
    const list = byPath.get(path)
    if (list === undefined) byPath.set(path, [issue.message])
    else list.push(issue.message)
  }
  const lines: Array<string> = []
  for (const [path, messages] of byPath) {
    const meaningful = messages.filter((m) => !m.startsWith("Expected undefined,"))
    const ms = meaningful.length > 0 ? meaningful : messages
    const parsed = ms.map((m) => /^Expected (.*), actual (.*)$/s.exec(m))
    const actual = parsed[0]?.[2]
    const text =
      ms.length > 1 && actual !== undefined && parsed.every((p) => p !== null && p[2] === actual)
        ? `Expected ${[...new Set(parsed.map((p) => p?.[1]))].join(" or ")}, actual ${clip(actual)}`
        : ms.map((m) => clip(m)).join("; ")
    lines.push(path.length > 0 ? `${path}: ${text}` : text)
  }
  return lines.join("; ")
}

/** A rejection's reason; a Schema failure is described only when it is reported. */
export type Reason = string | ParseResult.ParseError

export const describe = (r: Reason): string => (typeof r === "string" ? r : describeParseError(r))
