/**
 * Live per-code market state shared by the simulator, ingest validation, sector aggregation and
 * alerts: previous close, last price, cumulative volume, the trading day's open/high/low and
 * traded value, the last order book and the trading state, for every stock and both indices. Plain mutable records behind synchronous accessors: it is read and written on
 * the tick hot path, where an Effect per access would cost more than the work.
 *
 * Writers: the simulator records its own ticks; `MarketStateSyncLive` applies every event that
 * goes through the MarketPipeline (ingest included), so whatever the source, the state follows
 * what subscribers were sent.
 */
import { Context, Effect, Layer } from "effect"
import type { Sector } from "../market/types.js"
import { Universe, type UniverseShape } from "../market/Universe.js"
import type { InstrumentStatusValue, Level, Market, MarketEvent } from "../protocol/server.js"
import { MarketPipeline } from "./MarketPipeline.js"

export interface QuoteView {
  readonly code: string
  readonly name: string
  readonly market: Market
  readonly kind: "stock" | "index"
  /** Undefined for indices. */
  readonly sector: Sector | undefined
  readonly prevClose: number
  readonly last: number
  /** Cumulative volume of the current session. */
  readonly volume: number
  readonly bids: ReadonlyArray<Level>
  readonly asks: ReadonlyArray<Level>
  /** Checksum of the last book, undefined before the first one. */
  readonly checksum: number | undefined
  /** Epoch millis of the last price update, 0 when none since start or rollover. */
  readonly updatedAt: number
  /** The trading day's first price, undefined before it (start or rollover). */
  readonly open: number | undefined
  readonly high: number | undefined
  readonly low: number | undefined
  /** Cumulative traded value of the day in KRW (sum of price x quantity). */
  readonly value: number
  /** Trading state of a stock (`trading` for indices): the last `instrument_status`. */
  readonly status: InstrumentStatusValue
}

/** What the day's ticker follows from: the figures so far and the cumulative volume they cover. */
export interface DaySoFar {
  readonly open: number | undefined
  readonly high: number | undefined
  readonly low: number | undefined
  readonly value: number
  readonly volume: number
}

/** The day's open/high/low/value after a print at `price` that brings the volume to `volume`. */
export interface DayTicker {
  readonly open: number
  readonly high: number
  readonly low: number
  readonly value: number
}

/**
 * Pure: the ticker after one more print. A price counts in the range even without volume (an
 * index level, a corrected price); value grows by price x the volume added (never shrinks when a
 * source reports a smaller cumulative volume). Integer KRW for stocks.
 */
export const nextDayTicker = (q: DaySoFar, price: number, volume: number): DayTicker => ({
  open: q.open ?? price,
  high: q.high === undefined ? price : Math.max(q.high, price),
  low: q.low === undefined ? price : Math.min(q.low, price),
  value: q.value + price * Math.max(0, volume - q.volume),
})

class Quote implements QuoteView {
  last: number
  volume = 0
  bids: ReadonlyArray<Level> = []
  asks: ReadonlyArray<Level> = []
  checksum: number | undefined = undefined
  updatedAt = 0
  open: number | undefined = undefined
  high: number | undefined = undefined
  low: number | undefined = undefined
  value = 0
  status: InstrumentStatusValue = "trading"
  constructor(
    readonly code: string,
    readonly name: string,
    readonly market: Market,
    readonly kind: "stock" | "index",
    readonly sector: Sector | undefined,
    public prevClose: number,
  ) {
    this.last = prevClose
  }
}

export interface MarketStateShape {
  readonly get: (code: string) => QuoteView | undefined
  readonly stocks: ReadonlyArray<QuoteView>
  readonly indices: ReadonlyArray<QuoteView>
  readonly stocksOf: (market: Market) => ReadonlyArray<QuoteView>
  /**
   * Records a trade: last price and cumulative volume, and the day's open/high/low/value that
   * follow from them (`nextDayTicker`). Unknown codes are ignored.
   */
  readonly recordTrade: (code: string, price: number, volume: number, at: number) => void
  /** Records a full top of book. Unknown codes are ignored. */
  readonly recordBook: (
    code: string,
    bids: ReadonlyArray<Level>,
    asks: ReadonlyArray<Level>,
    checksum: number,
  ) => void
  /** Records a stock's trading state. Unknown codes are ignored. */
  readonly recordStatus: (code: string, status: InstrumentStatusValue) => void
  /** Applies one pipeline event (price and book updates; other types carry no per-code state). */
  readonly apply: (event: MarketEvent) => void
  readonly applyAll: (events: ReadonlyArray<MarketEvent>) => void
  /**
   * Starts a new session for a market: previous close := last price, volume and value := 0, no
   * open/high/low yet.
   * The KRX clock calls it when a trading day begins.
   */
  readonly rollover: (market: Market) => void
}

/** A new trading day: yesterday's last becomes the previous close; the day's figures start over. */
const resetDay = (q: Quote) => {
  q.prevClose = q.last
  q.volume = 0
  q.updatedAt = 0
  q.open = undefined
  q.high = undefined
  q.low = undefined
  q.value = 0
}

export const makeMarketState = (universe: UniverseShape): MarketStateShape => {
  const stocks = universe.instruments.map(
    (i) => new Quote(i.code, i.name, i.market, "stock", i.sector, i.prevClose),
  )
  const indices = universe.indices.map(
    (d) => new Quote(d.code, d.name, d.code, "index", undefined, d.prevClose),
  )
  const byCode = new Map<string, Quote>()
  for (const q of stocks) byCode.set(q.code, q)
  for (const q of indices) byCode.set(q.code, q)
  const byMarket = new Map<Market, Array<Quote>>()
  for (const q of stocks) {
    const list = byMarket.get(q.market)
    if (list === undefined) byMarket.set(q.market, [q])
    else list.push(q)
  }
  const recordPrice = (code: string, price: number, volume: number, at: number) => {
    const q = byCode.get(code)
    if (q === undefined) return
    q.last = price
    q.volume = volume
    q.updatedAt = at
  }
  const recordTrade = (code: string, price: number, volume: number, at: number) => {
    const q = byCode.get(code)
    if (q === undefined) return
    // nextDayTicker's arithmetic written in place: this runs on every trade, without an allocation.
    if (q.open === undefined) q.open = price
    q.high = q.high === undefined || price > q.high ? price : q.high
    q.low = q.low === undefined || price < q.low ? price : q.low
    if (volume > q.volume) q.value += price * (volume - q.volume)
    q.last = price
    q.volume = volume
    q.updatedAt = at
  }
  const recordBook = (
    code: string,
    bids: ReadonlyArray<Level>,
    asks: ReadonlyArray<Level>,
    checksum: number,
  ) => {
    const q = byCode.get(code)
    if (q === undefined) return
    q.bids = bids
    q.asks = asks
    q.checksum = checksum
  }
  const recordStatus = (code: string, status: InstrumentStatusValue) => {
    const q = byCode.get(code)
    if (q !== undefined) q.status = status
  }
  // Events of one publish share a timestamp: parse it once, not once per event.
  let lastTimestamp = ""
  let lastMillis = 0
  const millisOf = (timestamp: string) => {
    if (timestamp !== lastTimestamp) {
      lastTimestamp = timestamp
      lastMillis = Date.parse(timestamp)
    }
    return lastMillis
  }
  const apply = (e: MarketEvent) => {
    switch (e.type) {
      case "price_update": {
        // No `open`: a reference price (the last close, before the day's first execution), not a
        // print of the day.
        if (e.open === undefined) {
          recordPrice(e.code, e.price, e.volume, millisOf(e.timestamp))
          return
        }
        recordTrade(e.code, e.price, e.volume, millisOf(e.timestamp))
        // Figures the event states (ingest may supply them) widen the derived ones but never
        // narrow them: an event validated before another source's print still leaves high >= and
        // low <= every price of the day. The simulator's own events equal the derived figures, so
        // applying one twice changes nothing.
        const q = byCode.get(e.code)
        if (q === undefined) return
        if (e.open !== undefined) q.open = e.open
        if (e.high !== undefined) q.high = Math.max(q.high ?? e.high, e.high)
        if (e.low !== undefined) q.low = Math.min(q.low ?? e.low, e.low)
        if (e.value !== undefined) q.value = Math.max(q.value, e.value)
        return
      }
      case "instrument_status":
        recordStatus(e.code, e.status)
        return
      case "orderbook_update":
        recordBook(e.code, e.bids, e.asks, e.checksum)
        return
      default:
        return
    }
  }
  return {
    get: (code) => byCode.get(code),
    stocks,
    indices,
    stocksOf: (market) => byMarket.get(market) ?? [],
    recordTrade,
    recordBook,
    recordStatus,
    apply,
    applyAll: (events) => {
      for (const e of events) apply(e)
    },
    rollover: (market) => {
      for (const q of byMarket.get(market) ?? []) {
        resetDay(q)
      }
      for (const q of indices) {
        if (q.market !== market) continue
        resetDay(q)
      }
    },
  }
}

export class MarketState extends Context.Tag("quotecast/MarketState")<MarketState, MarketStateShape>() {
  static readonly layer = Layer.effect(MarketState, Effect.map(Universe, makeMarketState))
}

/** Keeps MarketState in step with everything published through the pipeline (ingest included). */
export const MarketStateSyncLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const state = yield* MarketState
    const pipeline = yield* MarketPipeline
    yield* pipeline.observe((events) => Effect.sync(() => state.applyAll(events)))
  }),
)
