/**
 * The `npm run load -- <options>` command line (@effect/cli). `makeCommand` takes the handler
 * so tests can parse arguments without running a load.
 */
import { Command, Options } from "@effect/cli"
import { Console, Data, Effect, Option } from "effect"
import { colourOnTerminal } from "../scripts/cliColour.js"
import { defaults, type LoadConfig, LoadConfigError, limits, resolveCodes } from "./lib/config.js"
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

/**
 * `text (default: value)`: @effect/cli's help names no default of its own (only "This setting is
 * optional."), so each description carries it.
 */
const described = (text: string, fallback: string | number) =>
  `${text.replace(/\.$/, "")} (default: ${fallback}).`

const options = {
  url: Options.text("url").pipe(
    Options.withDefault(defaults.url),
    Options.withDescription(
      described("The gateway's WebSocket URL; localhost is dialled as 127.0.0.1.", defaults.url),
    ),
  ),
  connections: Options.integer("connections").pipe(
    Options.withDefault(defaults.connections),
    Options.withDescription(
      described(`Connections to open, 1 to ${limits.maxConnections}.`, defaults.connections),
    ),
  ),
  duration: Options.float("duration").pipe(
    Options.withDefault(defaults.durationSec),
    Options.withDescription(
      described(
        `Seconds to hold the connections open after the ramp-up, the measurement window; at most ${limits.maxDurationSec}.`,
        defaults.durationSec,
      ),
    ),
  ),
  rampUp: Options.float("ramp-up").pipe(
    Options.withDefault(defaults.rampUpSec),
    Options.withDescription(
      described(
        `Seconds over which the connections are opened; at most ${limits.maxRampUpSec}.`,
        defaults.rampUpSec,
      ),
    ),
  ),
  batchSize: Options.integer("batch-size").pipe(
    Options.withDefault(defaults.batchSize),
    Options.withDescription(
      described(
        "Connections opened together; the batches are spread evenly over the ramp-up.",
        defaults.batchSize,
      ),
    ),
  ),
  subscriptions: Options.integer("subscriptions").pipe(
    Options.withDefault(defaults.subscriptions),
    Options.withDescription(
      described(
        `Stock codes each connection subscribes to, 0 to ${limits.maxSubscriptions}; connection i takes the codes from i x subscriptions on, wrapping.`,
        defaults.subscriptions,
      ),
    ),
  ),
  codes: Options.text("codes").pipe(
    Options.optional,
    Options.withDescription(
      described("Comma-separated stock codes to subscribe to.", "the gateway's shipped codes"),
    ),
  ),
  universe: Options.integer("universe").pipe(
    Options.optional,
    Options.withDescription(
      described(
        "Subscribe to the codes of a gateway started with UNIVERSE_SIZE=N: the shipped codes, then 900000, 900001, ... up to N. Not with --codes.",
        "unset",
      ),
    ),
  ),
  compression: Options.choice("compression", ["on", "off"]).pipe(
    Options.withDefault("off" as const),
    Options.withDescription(
      described(
        "With on, offer permessage-deflate with no context takeover either way (frames are inflated synchronously).",
        "off",
      ),
    ),
  ),
  token: Options.text("token").pipe(
    Options.optional,
    Options.withDescription(described("A JWT sent as ?token= on every connection.", "none")),
  ),
  sample: Options.integer("sample").pipe(
    Options.withDefault(defaults.sample),
    Options.withDescription(
      described(
        "Fully parse one frame in N (latency, message types); the others are only counted.",
        defaults.sample,
      ),
    ),
  ),
  json: Options.boolean("json").pipe(
    Options.withDescription(
      described("Print the final report as JSON on stdout (progress stays on stderr).", "off"),
    ),
  ),
  quiet: Options.boolean("quiet").pipe(Options.withDescription(described("Print no progress line.", "off"))),
  maxP99Ms: Options.float("max-p99-ms").pipe(
    Options.optional,
    Options.withDescription(
      described(
        "Exit 1 when the p99 latency is above this many milliseconds (or when there was no latency sample).",
        "no limit",
      ),
    ),
  ),
  minConnected: Options.integer("min-connected").pipe(
    Options.optional,
    Options.withDescription(
      described("Exit 1 when fewer connections than this were established.", "no limit"),
    ),
  ),
  sourceIps: Options.integer("source-ips").pipe(
    Options.withDefault(defaults.sourceIps),
    Options.withDescription(
      described(
        `Bind connection i to 127.0.0.(1 + i mod N), N at most ${limits.maxSourceIps}: each source address has its own ~28,000 ephemeral ports.`,
        defaults.sourceIps,
      ),
    ),
  ),
  allowRemote: Options.boolean("allow-remote").pipe(
    Options.withDescription(described("Allow a --url that is not on loopback.", "off")),
  ),
  connectTimeout: Options.float("connect-timeout").pipe(
    Options.withDefault(defaults.connectTimeoutSec),
    Options.withDescription(
      described("Seconds allowed for each opening handshake.", defaults.connectTimeoutSec),
    ),
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

const run = Command.run(loadCommand, { name: "quotecast-load", version: "0.1.0" })

/** Colour on a terminal only (scripts/cliColour.ts). */
export const cli = (argv: ReadonlyArray<string>) => colourOnTerminal(run(argv))
