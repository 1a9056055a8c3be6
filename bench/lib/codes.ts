import { builtinCodes } from "../../load/lib/index.js"

/**
 * The codes the load subscribes to: the first `n` shipped codes, the same list the servers' feed
 * trades (bench/servers/feed.ts `benchCodes` takes the first `n` instruments of the universe,
 * which starts with the shipped codes in the same order).
 */
export const benchCodeList = (n: number): ReadonlyArray<string> => builtinCodes.slice(0, n)
