/**
 * `npm start`: the gateway in the mode the environment asks for (REDIS_URL unset: embedded).
 * A bad configuration value stops startup with one line per variable on stderr and exit code 1,
 * and so do an address it cannot listen on and a Redis it cannot reach; everything else is
 * logged by the structured logger.
 */

import { defaultTeardown } from "@effect/platform/Runtime"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { ConfigError, Console, Effect, Exit, Layer, Logger } from "effect"
import { AppConfig } from "./config/AppConfig.js"
import { configErrorLines, shownValue } from "./config/configErrors.js"
import { logLevelLayer } from "./config/logging.js"
import { gateway } from "./Gateway.js"
import { modeLayer } from "./mode/modeLayer.js"

const Main = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => gateway(modeLayer).pipe(Layer.provide(logLevelLayer(config)))),
).pipe(Layer.provide(Logger.logFmt), Layer.provide(AppConfig.layer))

/** The exit code of a configuration the gateway cannot start with. */
const INVALID_CONFIGURATION = 1

/** A failure that stops startup, said in one line as for a bad value (no `cause=` or stack). */
const cannotStart = (line: string) =>
  Console.error(`quotecast: cannot start: ${line}`).pipe(Effect.as(INVALID_CONFIGURATION))

const program = Layer.launch(Main).pipe(
  Effect.catchIf(ConfigError.isConfigError, (error) =>
    Console.error(configErrorLines(error, process.env).join("\n")).pipe(Effect.as(INVALID_CONFIGURATION)),
  ),
  Effect.catchTags({
    ListenFailed: (e) => cannotStart(`listening on HOST=${e.host} PORT=${e.port} failed: ${e.reason}`),
    RedisUnavailable: (e) =>
      cannotStart(`REDIS_URL=${shownValue("REDIS_URL", process.env.REDIS_URL)}: ${e.message}`),
  }),
)

NodeRuntime.runMain(program, {
  disablePrettyLogger: true,
  // The gateway only returns after reporting a bad configuration; other failures keep the default.
  teardown: (exit, onExit) =>
    Exit.isSuccess(exit) && typeof exit.value === "number"
      ? onExit(exit.value)
      : defaultTeardown(exit, onExit),
})
