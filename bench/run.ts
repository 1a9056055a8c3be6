/**
 * `npm run bench [-- --scenarios A,B --servers quotecast,ws --rounds 3 --out bench/results --smoke]`
 *
 * Runs quotecast, the bare `ws` baseline and Socket.IO under the scenarios (A-E, plus the
 * cluster scenario F, the reconnect storm G and the attack H) and writes
 * bench/results/<timestamp>.{json,md} and latest.{json,md}.
 * Every run is bounded in time; A-F take about 8 minutes here (457-458 s on 2026-12-02); G and H
 * add a few minutes (G at 10,000 clients: two servers, each ramped, cut and stormed; H: about 1 min).
 */
import { Command, Options } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Option } from "effect"
import { colourOnTerminal } from "../scripts/cliColour.js"
import { attackCustom } from "./lib/attack.js"
import { runBench } from "./lib/bench.js"
import type { Scenario } from "./lib/scenario.js"
import {
  attackSpec,
  scenarios,
  smokeAttackSpec,
  smokeScenario,
  smokeStormSpec,
  stormSpec,
} from "./lib/scenarios.js"
import { type StormSpec, stormCustom } from "./lib/storm.js"

const scenarioList = Options.text("scenarios").pipe(
  Options.withDescription("comma-separated scenario ids (A,B,C,D,E,F,G,H)"),
  Options.withDefault("A,B,C,D,E,F,G,H"),
)
const out = Options.directory("out").pipe(
  Options.withDescription("where results are written"),
  Options.withDefault("bench/results"),
)
const servers = Options.text("servers").pipe(
  Options.withDescription(
    "comma-separated servers to run (quotecast,ws,ws-fiber,socketio; ws-fiber runs in C only)",
  ),
  Options.withDefault("quotecast,ws,ws-fiber,socketio"),
)
const rounds = Options.integer("rounds").pipe(
  Options.withDescription(
    "rounds per scenario: every server once per round, in a rotated order; a target is met when met in most rounds",
  ),
  Options.filterMap((n) => (n >= 1 ? Option.some(n) : Option.none()), "--rounds must be at least 1"),
  Options.withDefault(1),
)
const stormClients = Options.integer("storm-clients").pipe(
  Options.withDescription("clients in the reconnect storm (G); 10,000 is the issue's size"),
  Options.filterMap(
    (n) => (n >= 1 && n <= 15_000 ? Option.some(n) : Option.none()),
    "--storm-clients must be 1..15000",
  ),
  Options.withDefault(10_000),
)
const smoke = Options.boolean("smoke").pipe(
  Options.withDescription("the tiny smoke scenarios only (npm test runs them)"),
)

const bench = Command.make(
  "bench",
  { scenarios: scenarioList, servers, out, rounds, stormClients, smoke },
  (o) =>
    Effect.gen(function* () {
      const ids = new Set(o.scenarios.split(",").map((s) => s.trim().toUpperCase()))
      const kinds = new Set(o.servers.split(",").map((s) => s.trim()))
      const chosen = (o.smoke ? [smokeScenario] : scenarios.filter((s) => ids.has(s.id))).map((s) => ({
        ...s,
        servers: s.servers.filter((spec) => kinds.has(spec.kind)),
      }))
      // G and H measure their own way (bench/lib/storm.ts, attack.ts).
      const only = <S extends { readonly scenario: Scenario }>(spec: S): S => ({
        ...spec,
        scenario: { ...spec.scenario, servers: spec.scenario.servers.filter((s) => kinds.has(s.kind)) },
      })
      const sized = (spec: StormSpec, n: number): StormSpec =>
        n === spec.scenario.connections
          ? spec
          : {
              ...spec,
              scenario: {
                ...spec.scenario,
                connections: n,
                title: spec.scenario.title.replace("10,000", n.toLocaleString("en-US")),
              },
            }
      const custom = o.smoke
        ? [stormCustom(only(smokeStormSpec)), attackCustom(only(smokeAttackSpec))]
        : [
            ...(ids.has("G") ? [stormCustom(only(sized(stormSpec, o.stormClients)))] : []),
            ...(ids.has("H") ? [attackCustom(only(attackSpec))] : []),
          ]
      const results = yield* runBench({
        scenarios: chosen,
        custom,
        cluster: !o.smoke && ids.has("F"),
        rounds: o.rounds,
        outDir: o.out,
        log: (line) => process.stderr.write(`${line}\n`),
      })
      yield* Console.log(`done in ${results.elapsedSec.toFixed(0)} s`)
    }),
)

const run = Command.run(bench, { name: "quotecast bench", version: "0.1.0" })(process.argv)

// Colour on a terminal only, as the load runner's (no escape codes in a pipe, a file or CI).
colourOnTerminal(run).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
