/** The minimum log level that LOG_LEVEL asks for (logs are logfmt lines, see `main.ts`). */
import { Effect, Logger, LogLevel } from "effect"
import type { AppConfigShape } from "./AppConfig.js"

const levels = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None,
} as const

export const logLevelLayer = (config: AppConfigShape) => Logger.minimumLogLevel(levels[config.logLevel])

/**
 * An info line with its annotations, built only when LOG_LEVEL lets info lines through. For the
 * lines logged once per connection: annotating is a FiberRef change, which hashes every key into
 * a map and leaves the connection's fiber its own copy of the annotations stack (216 bytes in
 * the heap snapshots of docs/internals/connection.md) even when the level then drops the line.
 */
export const logInfoAnnotated = (
  message: string,
  annotations: Record<string, unknown>,
): Effect.Effect<void> =>
  Effect.asVoid(Effect.whenLogLevel(Effect.annotateLogs(Effect.logInfo(message), annotations), LogLevel.Info))
