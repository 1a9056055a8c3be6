/**
 * `npm run load -- --connections 1000 --duration 60`
 * Exit codes: 0 passed, 1 a threshold (--max-p99-ms, --min-connected) was violated or the run
 * failed, 2 invalid options.
 */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit, Option, Predicate } from "effect"
import { cli } from "./cli.js"

const program = cli(process.argv).pipe(
  Effect.tapErrorTag("LoadConfigError", (e) => Console.error(`load: ${e.message}`)),
  Effect.tapErrorTag("LoadRunOverran", (e) =>
    Console.error(`load: run overran its ${e.limitSec} s limit and was stopped`),
  ),
  Effect.provide(NodeContext.layer),
)

NodeRuntime.runMain(program, {
  // Our errors are already reported; only unexpected defects need Effect's pretty printer.
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit)) return onExit(0)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      const invalid = ValidationError.isValidationError(error) || Predicate.isTagged(error, "LoadConfigError")
      return onExit(invalid ? 2 : 1)
    }
    if (!Cause.isInterruptedOnly(exit.cause)) console.error(Cause.pretty(exit.cause))
    return onExit(Cause.isInterruptedOnly(exit.cause) ? 130 : 1)
  },
})
