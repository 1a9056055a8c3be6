/**
 * `npm start`: the gateway in the mode the environment asks for (REDIS_URL unset: embedded).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Logger } from "effect"
import { AppConfig } from "./config/AppConfig.js"
import { logLevelLayer } from "./config/logging.js"
import { gateway } from "./Gateway.js"
import { modeLayer } from "./mode/modeLayer.js"

const Main = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) => gateway(modeLayer).pipe(Layer.provide(logLevelLayer(config)))),
).pipe(Layer.provide(Logger.logFmt), Layer.provide(AppConfig.layer))

Layer.launch(Main).pipe(NodeRuntime.runMain({ disablePrettyLogger: true }))
