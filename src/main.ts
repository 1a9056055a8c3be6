/**
 * `npm start`: the gateway in the mode the environment asks for (REDIS_URL unset: embedded).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { AppConfig } from "./config/AppConfig.js"
import { gateway, modeLayer } from "./Gateway.js"

const levels = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None,
} as const

const Main = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) =>
    gateway(modeLayer).pipe(Layer.provide(Logger.minimumLogLevel(levels[config.logLevel]))),
  ),
).pipe(Layer.provide(Logger.logFmt), Layer.provide(AppConfig.layer))

Layer.launch(Main).pipe(NodeRuntime.runMain({ disablePrettyLogger: true }))
