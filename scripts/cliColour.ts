/**
 * Colour for the project's command-line tools (the load runner, the token helper): @effect/cli
 * styles its help and its messages unconditionally, which shows as escape codes in a pipe, a file
 * or a CI log. `colourOnTerminal` keeps them on a terminal only, and never with NO_COLOR set
 * (https://no-color.org).
 */
import { Console, type Effect } from "effect"

/** SGR sequences (colour, bold) as @effect/cli writes them around its help and error text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts every sequence matched here
const SGR = /\x1b\[[0-9;]*m/g
const plain = (args: ReadonlyArray<unknown>) =>
  args.map((a) => (typeof a === "string" ? a.replace(SGR, "") : a))

/** Runs `effect` with a Console that drops colour codes. */
export const withoutColour = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((current) =>
    Console.withConsole(effect, {
      ...current,
      log: (...args) => current.log(...plain(args)),
      error: (...args) => current.error(...plain(args)),
    }),
  )

/** `effect` as is on a terminal (stdout a TTY, NO_COLOR unset), without colour codes otherwise. */
export const colourOnTerminal = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  process.stdout.isTTY === true && process.env.NO_COLOR === undefined ? effect : withoutColour(effect)
