/**
 * What the validation of every ingested event shares: its context (the universe, the live market
 * state, the time, the day as earlier events of the request leave it), the index codes, and the
 * rule for `timestamp`: absent means now; present must parse as a date and is normalised to
 * ISO 8601 UTC with milliseconds.
 */
import { Either } from "effect"
import type { UniverseShape } from "../../market/Universe.js"
import type { DaySoFar, MarketStateShape } from "../../pipeline/MarketState.js"

export interface IngestContext {
  readonly universe: UniverseShape
  readonly state: MarketStateShape
  /** Epoch millis used for absent timestamps. */
  readonly now: number
  /**
   * The day as earlier accepted events of the same request leave it, per code (validateIngest
   * fills it); codes not in it are read from `state`.
   */
  readonly pending?: Map<string, DaySoFar>
}

export const INDEX_CODES: ReadonlySet<string> = new Set(["KOSPI", "KOSDAQ"])

/**
 * Why `code` is not a stock the event can be about, if it is not: an index (and what it lacks,
 * for the publisher), or no code at all. For the events that only stocks have.
 */
export const notAStock = (ctx: IngestContext, code: string, indexLacks: string): string | undefined =>
  ctx.universe.byCode.has(code)
    ? undefined
    : INDEX_CODES.has(code)
      ? `code: ${code} is an index and has no ${indexLacks}`
      : `code: unknown code "${code}"`

export const timestampOf = (given: string | undefined, now: number): Either.Either<string, string> => {
  if (given === undefined) return Either.right(new Date(now).toISOString())
  const ms = Date.parse(given)
  return Number.isNaN(ms)
    ? Either.left(`timestamp: "${given}" is not an ISO 8601 date`)
    : Either.right(new Date(ms).toISOString())
}
