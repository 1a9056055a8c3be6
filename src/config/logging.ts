/** The minimum log level that LOG_LEVEL asks for (logs are logfmt lines, see `main.ts`). */
import { Logger, LogLevel } from "effect"
import type { AppConfigShape } from "./AppConfig.js"

const levels = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None,
} as const

export const logLevelLayer = (config: AppConfigShape) => Logger.minimumLogLevel(levels[config.logLevel])
