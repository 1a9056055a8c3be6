/**
 * quotecast as the benchmark runs it: exactly the gateway `npm start` builds (`gateway(modeLayer)`,
 * configured from the environment, embedded or cluster mode), with FEED=none and the benchmark
 * feed instead of the built-in simulator. The feed is the same SimulatorEngine the simulator
 * uses, published through the MarketPipeline on the simulator's 25 ms schedule, but restricted to
 * the benchmark codes, one message per tick, and started by the harness (bench/servers/control.ts)
 * once the connections are open. Everything else (snapshots, conflation, batching, compression,
 * backpressure, metrics) is the production path.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Duration, Effect, Fiber, FiberSet, Layer, Logger, Schedule } from "effect"
import { AppConfig } from "../../src/config/AppConfig.js"
import { logLevelLayer } from "../../src/config/logging.js"
import { Flusher } from "../../src/connection/Flusher.js"
import { gateway } from "../../src/Gateway.js"
import { ServerAddress } from "../../src/http/Server.js"
import { yieldingToIo } from "../../src/lifecycle/EventLoop.js"
import { Universe } from "../../src/market/Universe.js"
import { modeLayer } from "../../src/mode/modeLayer.js"
import { MarketPipeline } from "../../src/pipeline/MarketPipeline.js"
import { MarketState } from "../../src/pipeline/MarketState.js"
import { announce, serveControl } from "./control.js"
import { feedSettingsFromEnv, makeBenchEngine } from "./feed.js"

const alwaysOpen = (): boolean => true

/** The benchmark feed; BENCH_FEED=off (the second instance of scenario F) leaves it out. */
const BenchFeedLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const universe = yield* Universe
    const state = yield* MarketState
    const pipeline = yield* MarketPipeline
    const flusher = yield* Flusher
    const engine = makeBenchEngine(universe, state, feedSettingsFromEnv())
    // As the simulator's: a flush pass in progress goes first (Flusher.idle).
    const tick = Effect.zipRight(
      flusher.idle,
      Effect.suspend(() => {
        const events = engine.advance(Date.now(), alwaysOpen)
        return events.length > 0 ? pipeline.publish(events) : Effect.void
      }),
    )
    const loop = Effect.sync(() => engine.advance(Date.now(), alwaysOpen)).pipe(
      Effect.zipRight(Effect.repeat(tick, yieldingToIo(Schedule.fixed(Duration.millis(engine.intervalMs))))),
    )
    const run = yield* FiberSet.makeRuntime<never>()
    serveControl(
      () => {
        if (process.env.BENCH_FEED === "off") return () => {}
        const fiber = run(loop)
        return () => {
          run(Fiber.interrupt(fiber))
        }
      },
      () => engine,
    )
    // The harness runs quotecast at LOG_LEVEL=warning (no per-connection log lines through its
    // pipe, the baselines log nothing either), so the port is announced here.
    announce("quotecast", (yield* ServerAddress).port)
  }),
)

const Main = Layer.unwrapEffect(
  Effect.map(AppConfig, (config) =>
    BenchFeedLive.pipe(Layer.provideMerge(gateway(modeLayer)), Layer.provide(logLevelLayer(config))),
  ),
).pipe(Layer.provide(Logger.logFmt), Layer.provide(AppConfig.layer))

Layer.launch(Main).pipe(NodeRuntime.runMain({ disablePrettyLogger: true }))
