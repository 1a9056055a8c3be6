/**
 * Validation of ingested trading states:
 *
 * - market_status: `market` KOSPI or KOSDAQ, `status` pre_open, open, closed or halted.
 * - instrument_status: `code` a stock; `status` trading, halted or vi; a `vi` needs `vi_type`,
 *   `reference_price` and `expected_end`, which the other statuses must not carry; an absent
 *   `reason` becomes "set by ingest".
 */
import { Either } from "effect"
import type { MarketEvent } from "../../protocol/server.js"
import { type IngestContext, notAStock, timestampOf } from "./context.js"
import { decodeInstrumentStatus, decodeStatus } from "./inputs.js"
import type { Reason } from "./reasons.js"

export const validateStatus = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodeStatus(raw, detailed), (e) =>
    Either.map(
      timestampOf(e.timestamp, ctx.now),
      (timestamp): MarketEvent => ({ type: "market_status", market: e.market, status: e.status, timestamp }),
    ),
  )

export const validateInstrumentStatus = (
  raw: unknown,
  ctx: IngestContext,
  detailed: boolean,
): Either.Either<MarketEvent, Reason> =>
  Either.flatMap(decodeInstrumentStatus(raw, detailed), (e): Either.Either<MarketEvent, Reason> => {
    const notStock = notAStock(ctx, e.code, "trading state (use market_status)")
    if (notStock !== undefined) return Either.left(notStock)
    if (e.status === "vi") {
      const missing = (["vi_type", "reference_price", "expected_end"] as const).filter(
        (f) => e[f] === undefined,
      )
      if (missing.length > 0) return Either.left(`status vi needs ${missing.join(", ")}`)
    } else if (e.vi_type !== undefined || e.reference_price !== undefined) {
      return Either.left(`vi_type/reference_price: only a status vi carries them, not ${e.status}`)
    }
    return Either.flatMap(timestampOf(e.timestamp, ctx.now), (timestamp) => {
      const end =
        e.expected_end === undefined ? Either.right(undefined) : timestampOf(e.expected_end, ctx.now)
      return Either.map(
        Either.mapLeft(end, (reason) => `expected_end${reason.slice("timestamp".length)}`),
        (expected_end): MarketEvent => ({
          type: "instrument_status",
          code: e.code,
          status: e.status,
          ...(e.vi_type === undefined ? {} : { vi_type: e.vi_type }),
          ...(e.reference_price === undefined ? {} : { reference_price: e.reference_price }),
          ...(expected_end === undefined ? {} : { expected_end }),
          reason: e.reason ?? "set by ingest",
          timestamp,
        }),
      )
    })
  })
