/**
 * `npm start`: the gateway in the mode the environment asks for (REDIS_URL unset: embedded).
 * A bad configuration value stops startup with one line per variable on stderr and exit code 1;
 * everything else is logged by the structured logger.
 */

import { defaultTeardown } from "@effect/platform/Runtime"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { ConfigError, Console, Effect, Exit, Layer, Logger } from "effect"
import { AppConfig } from "./config/AppConfig.js"
import { configErrorLines } from "./config/configErrors.js"
import { logLevelLayer } from "./config/logging.js"
import { gateway } from "./Gateway.js"
import { modeLayer } from "./mode/modeLayer.js"

const Main = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => gateway(modeLayer).pipe(Layer.provide(logLevelLayer(config)))),
).pipe(Layer.provide(Logger.logFmt), Layer.provide(AppConfig.layer))

/** The exit code of a configuration the gateway cannot start with. */
const INVALID_CONFIGURATION = 1

const program = Layer.launch(Main).pipe(
  Effect.catchIf(ConfigError.isConfigError, (error) =>
    Console.error(configErrorLines(error, process.env).join("\n")).pipe(Effect.as(INVALID_CONFIGURATION)),
  ),
)

NodeRuntime.runMain(program, {
  disablePrettyLogger: true,
  // The gateway only returns after reporting a bad configuration; other failures keep the default.
  teardown: (exit, onExit) =>
    Exit.isSuccess(exit) && typeof exit.value === "number"
      ? onExit(exit.value)
      : defaultTeardown(exit, onExit),
})
