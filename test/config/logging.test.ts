/**
 * Per-connection info lines: written with their annotations when LOG_LEVEL lets info through,
 * and when it does not, not even annotated (annotating hashes every key into a map and changes
 * the fiber's FiberRefs).
 */
import { Effect, HashMap, Logger, LogLevel } from "effect"
import { describe, expect, it } from "vitest"
import { logInfoAnnotated } from "../../src/config/logging.js"

const captured = (level: LogLevel.LogLevel) => {
  const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
  const logger = Logger.make(({ message, annotations }) => {
    lines.push({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
  })
  const run = <A>(effect: Effect.Effect<A>) =>
    Effect.runSync(
      effect.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(level),
      ),
    )
  return { lines, run }
}

describe("logInfoAnnotated", () => {
  it("at info, writes the line with its annotations", () => {
    const { lines, run } = captured(LogLevel.Info)
    run(logInfoAnnotated("connection opened", { connection_id: "c1", restored: false }))
    expect(lines).toEqual([
      { message: ["connection opened"], annotations: { connection_id: "c1", restored: false } },
    ])
  })

  it("above info, writes nothing and does not even read the annotations", () => {
    const { lines, run } = captured(LogLevel.Warning)
    let read = false
    const annotations = {
      get connection_id() {
        read = true
        return "c1"
      },
    }
    run(logInfoAnnotated("connection opened", annotations))
    expect(lines).toEqual([])
    // Annotating would have read them into a map and set a FiberRef, for a line never written.
    expect(read).toBe(false)
  })
})
