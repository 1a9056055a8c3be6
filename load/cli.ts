/**
 * The `npm run load -- <options>` command line (@effect/cli). `makeCommand` takes the handler
 * so tests can parse arguments without running a load.
 */
import { Command, Options } from "@effect/cli"
import { Console, Data, Effect, Option } from "effect"
import { defaults, type LoadConfig, LoadConfigError, resolveCodes } from "./lib/config.js"
import {
  checkThresholds,
  formatProgress,
  formatReport,
  type Progress,
  type Thresholds,
} from "./lib/report.js"
import { runLoad } from "./lib/run.js"

export interface CliArgs {
  readonly config: LoadConfig
  readonly json: boolean
  readonly quiet: boolean
  readonly thresholds: Thresholds
}

export class ThresholdsViolated extends Data.TaggedError("ThresholdsViolated")<{
  readonly violations: ReadonlyArray<string>
}> {}

const options = {
  url: Options.text("url").pipe(
    Options.withDefault(defaults.url),
    Options.withDescription("gateway WebSocket URL"),
  ),
  connections: Options.integer("connections").pipe(
    Options.withDefault(defaults.connections),
    Options.withDescription("concurrent connections"),
  ),
  duration: Options.float("duration").pipe(
    Options.withDefault(defaults.durationSec),
    Options.withDescription("seconds to hold the connections after the ramp-up (the measurement window)"),
  ),
  rampUp: Options.float("ramp-up").pipe(
    Options.withDefault(defaults.rampUpSec),
    Options.withDescription("seconds over which connections are opened"),
  ),
  batchSize: Options.integer("batch-size").pipe(
    Options.withDefault(defaults.batchSize),
    Options.withDescription("connections opened together per ramp step"),
  ),
  subscriptions: Options.integer("subscriptions").pipe(
    Options.withDefault(defaults.subscriptions),
    Options.withDescription("stock codes subscribed per connection"),
  ),
  codes: Options.text("codes").pipe(
    Options.optional,
    Options.withDescription("comma-separated codes (default: the gateway's shipped codes)"),
  ),
  universe: Options.integer("universe").pipe(
    Options.optional,
    Options.withDescription(
      "codes of a gateway run with UNIVERSE_SIZE=N: shipped codes, then 900000, 900001, ...",
    ),
  ),
  compression: Options.choice("compression", ["on", "off"]).pipe(
    Options.withDefault("off" as const),
    Options.withDescription("offer permessage-deflate (no context takeover; inflated synchronously)"),
  ),
  token: Options.text("token").pipe(Options.optional, Options.withDescription("JWT sent as ?token=")),
  sample: Options.integer("sample").pipe(
    Options.withDefault(defaults.sample),
    Options.withDescription("fully parse one frame in N (latency, types); others are only counted"),
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print the final report as JSON")),
  quiet: Options.boolean("quiet").pipe(Options.withDescription("no progress line")),
  maxP99Ms: Options.float("max-p99-ms").pipe(
    Options.optional,
    Options.withDescription("exit 1 when p99 latency exceeds this"),
  ),
  minConnected: Options.integer("min-connected").pipe(
    Options.optional,
    Options.withDescription("exit 1 when fewer connections were established"),
  ),
  sourceIps: Options.integer("source-ips").pipe(
    Options.withDefault(defaults.sourceIps),
    Options.withDescription("spread source addresses over 127.0.0.1..127.0.0.N (more ephemeral ports)"),
  ),
  allowRemote: Options.boolean("allow-remote").pipe(Options.withDescription("allow a non-loopback --url")),
  connectTimeout: Options.float("connect-timeout").pipe(
    Options.withDefault(defaults.connectTimeoutSec),
    Options.withDescription("seconds allowed for each opening handshake"),
  ),
}

type Parsed = Command.Command.ParseConfig<typeof options>

/** Parsed options -> a run configuration (validation of ranges and the URL happens in `runLoad`). */
export const toCliArgs = (p: Parsed): Effect.Effect<CliArgs, LoadConfigError> =>
  Effect.gen(function* () {
    const codes = Option.getOrUndefined(p.codes)
    const universe = Option.getOrUndefined(p.universe)
    if (codes !== undefined && universe !== undefined) {
      return yield* new LoadConfigError({ message: "use either --codes or --universe, not both" })
    }
    return {
      config: {
        url: p.url,
        connections: p.connections,
        durationSec: p.duration,
        rampUpSec: p.rampUp,
        batchSize: p.batchSize,
        subscriptions: p.subscriptions,
        codes: resolveCodes(codes, universe),
        compression: p.compression === "on",
        token: Option.getOrUndefined(p.token),
        sample: p.sample,
        sourceIps: p.sourceIps,
        allowRemote: p.allowRemote,
        connectTimeoutSec: p.connectTimeout,
        closeTimeoutSec: defaults.closeTimeoutSec,
      },
      json: p.json,
      quiet: p.quiet,
      thresholds: {
        maxP99Ms: Option.getOrUndefined(p.maxP99Ms),
        minConnected: Option.getOrUndefined(p.minConnected),
      },
    }
  })

export const makeCommand = <E, R>(handler: (args: CliArgs) => Effect.Effect<void, E, R>) =>
  Command.make("load", options, (parsed) => Effect.flatMap(toCliArgs(parsed), handler)).pipe(
    Command.withDescription(
      "Load-test a quotecast gateway over WebSocket (loopback only unless --allow-remote)",
    ),
  )

/** On a terminal the progress line rewrites itself; in logs it is one line per second. */
const progressPrinter = (): ((p: Progress) => void) => {
  const tty = process.stderr.isTTY === true
  return (p) => process.stderr.write(tty ? `\r\x1b[2K${formatProgress(p)}` : `${formatProgress(p)}\n`)
}

export const runCli = (args: CliArgs) =>
  Effect.gen(function* () {
    const report = yield* runLoad(args.config, { onProgress: args.quiet ? undefined : progressPrinter() })
    if (!args.quiet && process.stderr.isTTY === true) process.stderr.write("\n")
    const violations = checkThresholds(report, args.thresholds)
    if (args.json) {
      yield* Console.log(
        JSON.stringify(
          { ...report, thresholds: { ...args.thresholds, violations }, passed: violations.length === 0 },
          null,
          2,
        ),
      )
    } else {
      yield* Console.log(formatReport(report, violations))
    }
    if (violations.length > 0) return yield* new ThresholdsViolated({ violations })
  })

export const loadCommand = makeCommand(runCli)

export const cli = Command.run(loadCommand, { name: "quotecast-load", version: "0.1.0" })
