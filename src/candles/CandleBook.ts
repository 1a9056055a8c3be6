/**
 * Bar building, pure and synchronous (the Layer around it is `Candles.ts`). A trade is a
 * `price_update` whose cumulative volume went up: its quantity is the increase, its price the
 * update's price, its time the update's timestamp (never later than now, so a clock ahead of
 * ours cannot open bars in the future). A volume that went down is a new trading day: the whole
 * volume is that trade's. An update that does not move the volume (a snapshot, an ingested
 * price without volume, a new feed leader re-announcing prices) is no trade and builds nothing.
 *
 * Each series (code x interval) has at most one bar in progress. A trade of a later bar closes
 * it; so does the time passing its end (`sweep`). A trade stamped before the bar in progress
 * (late, or crossing a boundary while its bar was being closed) joins the bar in progress; one
 * stamped in a bar already closed, with none in progress, counts at the time it arrived (and is
 * dropped, counted in `counters.late`, if that has no bar either). So a bar never changes once closed.
 */
import { CANDLE_INTERVALS, type CandleInterval } from "../protocol/client.js"
import { nowIso } from "../protocol/encode.js"
import type { Candle, CandleUpdate, MarketEvent } from "../protocol/server.js"
import { bucketOf, type Calendar } from "./calendar.js"

export class Bar {
  high: number
  low: number
  close: number
  volume = 0
  value = 0
  trades = 0
  constructor(
    readonly code: string,
    readonly interval: CandleInterval,
    readonly start: number,
    readonly closeAt: number,
    readonly open: number,
  ) {
    this.high = open
    this.low = open
    this.close = open
  }

  get series(): string {
    return `${this.code}:${this.interval}`
  }

  add(price: number, qty: number): void {
    if (price > this.high) this.high = price
    if (price < this.low) this.low = price
    this.close = price
    this.volume += qty
    this.value += price * qty
    this.trades++
  }

  candle(): Candle {
    return {
      time: nowIso(this.start),
      open: this.open,
      high: this.high,
      low: this.low,
      close: this.close,
      volume: this.volume,
      value: this.value,
      trades: this.trades,
    }
  }

  update(closed: boolean, now: number): CandleUpdate {
    return {
      type: "candle_update",
      code: this.code,
      interval: this.interval,
      ...this.candle(),
      closed,
      timestamp: nowIso(now),
    }
  }
}

/** A bar with the series it belongs to, as stored. */
export interface SeriesCandle {
  readonly code: string
  readonly interval: CandleInterval
  readonly candle: Candle
}

export const seriesCandle = (b: Bar): SeriesCandle => ({
  code: b.code,
  interval: b.interval,
  candle: b.candle(),
})

/** What changed since the last `drain`: bars that closed (in order) and bars in progress that moved. */
export interface Drained {
  readonly closed: ReadonlyArray<Bar>
  readonly current: ReadonlyArray<Bar>
}

export interface CandleCounters {
  /** Trades built into bars. */
  trades: number
  barsClosed: number
  /** Trades outside every session (MARKET_CLOCK=krx, nights and weekends): they build no bar. */
  outsideSession: number
  /** Trades stamped in a bar already closed that could not join a later one. */
  late: number
}

export class CandleBook {
  private readonly bars = new Map<string, Bar>()
  private closed: Array<Bar> = []
  private dirty = new Set<Bar>()
  /** Last cumulative volume seen per code: a trade is an increase of it. */
  private readonly volumes = new Map<string, number>()
  /** Start of the last closed bar per series: no trade opens that bar again. */
  private readonly closedStart = new Map<string, number>()
  private lastTimestamp = ""
  private lastMillis = 0

  constructor(
    private readonly calendar: Calendar,
    private readonly closeGraceMs: number,
    /** Counted as they happen (the gateway passes its metrics' counters). */
    readonly counters: CandleCounters = { trades: 0, barsClosed: 0, outsideSession: 0, late: 0 },
  ) {}

  /** The cumulative volume a code stands at, so its next increase is one trade. */
  setVolume(code: string, volume: number): void {
    this.volumes.set(code, volume)
  }

  /**
   * Follows published events. `build` false (not the feed's leader): volumes are followed, so
   * taking the lead later starts from the right place, but no bar is built.
   */
  observe(events: ReadonlyArray<MarketEvent>, now: number, build: boolean): void {
    for (const e of events) {
      if (e.type !== "price_update") continue
      const before = this.volumes.get(e.code)
      this.volumes.set(e.code, e.volume)
      if (before === undefined || e.volume === before || !build) continue
      const qty = e.volume > before ? e.volume - before : e.volume
      if (qty > 0) this.trade(e.code, e.price, qty, Math.min(this.millisOf(e.timestamp), now), now)
    }
  }

  /** One trade at `t` into every interval of its code (`now`: when it arrived). */
  trade(code: string, price: number, qty: number, t: number, now: number): void {
    let built = false
    for (const interval of CANDLE_INTERVALS) {
      const series = `${code}:${interval}`
      let bar = this.bars.get(series)
      let bucket = bucketOf(this.calendar, interval, t, this.closeGraceMs)
      const closed = this.closedStart.get(series)
      if (bar === undefined && bucket !== undefined && closed !== undefined && bucket.start <= closed) {
        bucket = bucketOf(this.calendar, interval, now, this.closeGraceMs)
        if (bucket === undefined || bucket.start <= closed) {
          this.counters.late++
          continue
        }
      }
      if (bucket === undefined) {
        if (interval === "1d") this.counters.outsideSession++
        continue
      }
      if (bar !== undefined && bucket.start > bar.start) {
        this.close(series, bar)
        bar = undefined
      }
      if (bar === undefined) {
        bar = new Bar(code, interval, bucket.start, bucket.closeAt, price)
        this.bars.set(series, bar)
      }
      bar.add(price, qty)
      this.dirty.add(bar)
      built = true
    }
    if (built) this.counters.trades++
  }

  /** Closes every bar whose end has come. */
  sweep(now: number): void {
    for (const [series, bar] of this.bars) if (bar.closeAt <= now) this.close(series, bar)
  }

  /** Takes what changed since the last call. */
  drain(): Drained {
    const out = { closed: this.closed, current: [...this.dirty] }
    this.closed = []
    this.dirty = new Set()
    return out
  }

  /** Whether bars moved or closed since the last `drain`. */
  get pending(): boolean {
    return this.dirty.size > 0 || this.closed.length > 0
  }

  /** When the next bar in progress ends (undefined: none in progress). */
  nextCloseAt(): number | undefined {
    let next: number | undefined
    for (const bar of this.bars.values()) if (next === undefined || bar.closeAt < next) next = bar.closeAt
    return next
  }

  /** The bar in progress of a series, if any. */
  inProgress(code: string, interval: CandleInterval): Bar | undefined {
    return this.bars.get(`${code}:${interval}`)
  }

  /** Forgets every bar in progress (leadership lost: the next leader continues from the store). */
  clear(): void {
    this.bars.clear()
    this.closed = []
    this.dirty = new Set()
  }

  /**
   * Continues bars in progress saved by an earlier leader. A bar whose end has passed is closed
   * at the next `sweep`, and sent then, as any other.
   */
  restore(saved: ReadonlyArray<SeriesCandle>): void {
    for (const { code, interval, candle } of saved) {
      const start = Date.parse(candle.time)
      const bucket = bucketOf(this.calendar, interval, start, this.closeGraceMs)
      if (bucket === undefined || bucket.start !== start) continue
      const bar = new Bar(code, interval, start, bucket.closeAt, candle.open)
      bar.high = candle.high
      bar.low = candle.low
      bar.close = candle.close
      bar.volume = candle.volume
      bar.value = candle.value
      bar.trades = candle.trades
      this.bars.set(bar.series, bar)
    }
  }

  private close(series: string, bar: Bar): void {
    this.bars.delete(series)
    this.closedStart.set(series, bar.start)
    this.counters.barsClosed++
    this.dirty.delete(bar)
    this.closed.push(bar)
  }

  // Events of one publish share a timestamp: parse it once.
  private millisOf(timestamp: string): number {
    if (timestamp !== this.lastTimestamp) {
      this.lastTimestamp = timestamp
      this.lastMillis = Date.parse(timestamp)
    }
    return this.lastMillis
  }
}
