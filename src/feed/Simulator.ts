/**
 * The built-in market simulator (FEED=simulator): a seeded random walk per instrument on the KRX
 * tick grid, a 10-level order book around each trade, and KOSPI/KOSDAQ index levels derived from
 * their constituents. Everything goes out through MarketPipeline.publish.
 *
 * Rate: FEED_RATE counts trade ticks per second over the whole universe. One trade tick is one
 * `price_update` plus one `orderbook_update` for the same stock (only the `price_update` with
 * FEED_BOOKS=off), so the pipeline carries about 2 × FEED_RATE stock events per second, plus index
 * `price_update`s (each open market at most once per `indexIntervalMs`). Ticks are emitted in groups every `intervalMs` on the Effect Clock, so
 * large rates cost one publish per group and TestClock drives the whole thing in tests.
 *
 * Model:
 * - Each stock has a latent continuous mid price doing a log-normal random walk whose per-tick
 *   sigma scales the stock's own daily sigma (around 2%: lower for KOSPI 200 constituents, higher
 *   on KOSDAQ) to the expected number of ticks of that stock in a 6.5 h session, plus rare
 *   fat-tailed jumps and, for a few small caps a day, a news drift. The latent mid is clamped to
 *   the daily limit band (±30% of the previous close).
 * - The day opens with a single-price auction (one execution per stock, with an overnight gap);
 *   under KRX sessions the closing auction executes once at 15:30 and the trade rate is U-shaped.
 * - A tick whose price would breach a VI threshold (`volatility.ts`) starts a 2-minute VI auction
 *   instead of printing; it ends in one execution at the auction price (`instrument_status`
 *   `vi`, then `trading`). Stocks in a VI, halted by ingest, or of a market that is not open do
 *   not trade.
 * - The book: best bid = the mid rounded down to the grid, best ask = the next grid price above;
 *   then up to 9 more levels per side, one tick apart, never outside the limit band.
 * - The trade prints at the best bid or ask, the ask with probability (mid − bid)/(ask − bid), so
 *   the expected print is the mid (a realistic bid/ask bounce, always on the grid).
 * - Trade size is exponential around a share count worth ~50M KRW; cumulative volume only grows.
 * - Index level = index previous close × the equal-weighted mean of constituents' last/prevClose,
 *   rounded to 2 decimals; index volume = sum of constituent volumes.
 * - If another source (ingest) moved a stock's price, the walk continues from that price.
 */
import { Clock, Duration, Effect, Layer, Option, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { DeliveryPass } from "../lifecycle/DeliveryPass.js"
import { yieldingToIo } from "../lifecycle/EventLoop.js"
import { orderbookChecksum } from "../market/checksum.js"
import { Prng } from "../market/prng.js"
import { dailyLimits, floorToTick } from "../market/tickSize.js"
import { Universe, type UniverseShape } from "../market/Universe.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState, type MarketStateShape, type QuoteView } from "../pipeline/MarketState.js"
import { nowIso } from "../protocol/encode.js"
import type { InstrumentStatus, Market, MarketEvent } from "../protocol/server.js"
import { FeedLeadership } from "./FeedLeadership.js"
import { krxSessionAt, MarketClock } from "./MarketClock.js"
import {
  buildBook,
  indexLevel,
  orderbookUpdateOf,
  priceUpdateOf,
  quoteAround,
  SESSION_SECONDS,
  stepInstrument,
} from "./simulatorModel.js"
import {
  breaches,
  dynamicViPermil,
  STATIC_VI_PERMIL,
  VI_DURATION_MS,
  type ViTrigger,
  viTriggerAt,
} from "./volatility.js"

export interface SimulatorOptions {
  readonly seed: number
  /** Trade ticks per second over the whole universe (FEED_RATE). */
  readonly rate: number
  /** Group interval in ms. */
  readonly intervalMs?: number
  /** Minimum ms between two index updates of a market. */
  readonly indexIntervalMs?: number
  /**
   * Daily volatility (standard deviation of the daily log return) of a typical stock; each stock
   * gets its own around it (KOSPI 200 constituents lower, KOSDAQ higher).
   */
  readonly dailySigma?: number
  /**
   * Whether a trade tick also emits an `orderbook_update` (FEED_BOOKS, default true). Off, a tick
   * is exactly one message per subscriber, which is what the benchmark's baselines are fed. The
   * book is still computed (and recorded in MarketState), so the PRNG sequence does not change.
   */
  readonly books?: boolean
  /**
   * Only these stocks trade (benchmarks: the same N codes in every server). Unknown codes are
   * ignored; undefined means the whole universe.
   */
  readonly codes?: ReadonlyArray<string>
  /**
   * KRX sessions (MARKET_CLOCK=krx): opening auction at 09:00, closing auction 15:20-15:30 with
   * its single execution at 15:30, and the U-shaped trade rate across the continuous session.
   * Off (always_open), the day opens when the engine starts and never closes.
   */
  readonly krxSessions?: boolean
  /** The day's shape: opening gaps, jumps and a few news-driven small caps (default true). */
  readonly dayShape?: boolean
}

/** How late a trade tick may come and still be produced (see `ticksDue`). */
export const MAX_LAG_MS = 250
/** Skipped trades are logged at most this often. */
const SKIP_REPORT_MS = 10_000
/** How many times a tick looks for another stock when it lands on one that cannot trade. */
const REPICKS = 4
/** Ticks of one stock in a closing auction's 10 minutes, relative to a whole session. */
const CLOSING_AUCTION_SHARE = 10 / (6.5 * 60)

/**
 * The trade rate's U shape across the continuous session: twice the mean at the open and the
 * close, half of it at midday (a + b(2p-1)^2 with mean 1 over the session).
 */
export const uShape = (progress: number): number => 0.5 + 1.5 * (2 * progress - 1) ** 2

/** Laplace(0, b): the fat-tailed size of a jump. */
const laplace = (rng: Prng, b: number): number => {
  const u = rng.next() - 0.5
  return -b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u))
}

/**
 * The simulator's state machine over MarketState. Deterministic for a given seed, universe and
 * sequence of calls; `advance` is what the live loop calls every interval.
 */
export class SimulatorEngine {
  readonly intervalMs: number
  readonly indexIntervalMs: number
  /** Per-tick sigma of a typical stock (dailySigma scaled to its ticks per session). */
  readonly sigma: number
  readonly books: boolean
  private readonly rng: Prng
  private readonly quotes: ReadonlyArray<QuoteView>
  private readonly mids: Float64Array
  /** Last price this engine printed per stock, to notice prices set by other sources. */
  private readonly printed: Float64Array
  /** Per stock: per-tick sigma, jump probability per tick and jump scale, news drift per tick. */
  private readonly sigmas: Float64Array
  private readonly jumpP: Float64Array
  private readonly jumpB: Float64Array
  private readonly drift: Float64Array
  /** Per stock: the static VI base price (the last single-price auction price of the day). */
  private readonly base: Float64Array
  /** Per stock: when its VI auction ends (epoch ms), 0 when none. */
  private readonly viUntil: Float64Array
  private readonly inVi = new Set<number>()
  private readonly kospi200: Uint8Array
  private readonly ticksPerStock: number
  private readonly pools: ReadonlyMap<string, ReadonlyArray<number>>
  private readonly traded: ReadonlyArray<number>
  private readonly dirtyIndex = new Set<Market>()
  private readonly lastIndexAt = new Map<Market, number>()
  private carry = 0
  /** Most ticks owed before the rest is skipped (`ticksDue`): MAX_LAG_MS worth. */
  private readonly maxBacklog: number
  /** `dayOpen` of the last trading day opened (opening auction run), and of the last one closed. */
  private openedDay = Number.NaN
  private closedDay = Number.NaN
  /** Ticks produced so far. */
  produced = 0
  /** Ticks skipped because calls came late: what an overloaded process did not simulate. */
  skipped = 0
  private lastAdvance: number | undefined

  constructor(
    universe: UniverseShape,
    private readonly state: MarketStateShape,
    readonly options: SimulatorOptions,
  ) {
    this.intervalMs = options.intervalMs ?? 25
    this.maxBacklog = Math.max(1, (options.rate * MAX_LAG_MS) / 1000)
    this.indexIntervalMs = options.indexIntervalMs ?? 1000
    this.books = options.books ?? true
    this.rng = new Prng(options.seed)
    this.quotes = universe.instruments.map((i) => {
      const q = state.get(i.code)
      if (q === undefined) throw new Error(`MarketState has no quote for ${i.code}`)
      return q
    })
    const all: Array<number> = []
    const kospi: Array<number> = []
    const kosdaq: Array<number> = []
    const only = options.codes === undefined ? undefined : new Set(options.codes)
    this.quotes.forEach((q, i) => {
      if (only !== undefined && !only.has(q.code)) return
      all.push(i)
      ;(q.market === "KOSPI" ? kospi : kosdaq).push(i)
    })
    this.traded = all
    this.pools = new Map([
      ["KOSPI,KOSDAQ", all],
      ["KOSPI", kospi],
      ["KOSDAQ", kosdaq],
      ["", []],
    ])
    // Expected ticks of one trading stock in a session: rate / n per second over SESSION_SECONDS.
    this.ticksPerStock = Math.max(1, (options.rate / Math.max(1, all.length)) * SESSION_SECONDS)
    const daily = options.dailySigma ?? 0.02
    this.sigma = daily / Math.sqrt(this.ticksPerStock)
    const shaped = options.dayShape ?? true
    const n = this.quotes.length
    this.mids = Float64Array.from(this.quotes, (q) => q.last)
    this.printed = Float64Array.from(this.quotes, (q) => q.last)
    this.base = Float64Array.from(this.quotes, (q) => q.prevClose)
    this.viUntil = new Float64Array(n)
    this.drift = new Float64Array(n)
    this.kospi200 = Uint8Array.from(universe.instruments, (i) => (i.kospi200 ? 1 : 0))
    this.sigmas = new Float64Array(n)
    this.jumpP = new Float64Array(n)
    this.jumpB = new Float64Array(n)
    universe.instruments.forEach((inst, i) => {
      if (!shaped) {
        this.sigmas[i] = this.sigma
        return
      }
      // Large caps move about 1.5% a day, other KOSPI stocks 2.2%, KOSDAQ 2.8%, each spread ±30%.
      const scale = inst.kospi200 ? 0.75 : inst.market === "KOSPI" ? 1.1 : 1.4
      this.sigmas[i] = (daily * scale * Math.exp(0.3 * this.rng.normal())) / Math.sqrt(this.ticksPerStock)
      // Jumps (a large order sweeping the book): about one a day on a large cap with a 0.8% scale,
      // three on a small cap with 2%; the tail past 3% or 6% is what calls a dynamic VI.
      this.jumpP[i] = (inst.kospi200 ? 1 : 3) / this.ticksPerStock
      this.jumpB[i] = inst.kospi200 ? 0.008 : 0.02
    })
  }

  private get shaped(): boolean {
    return this.options.dayShape ?? true
  }

  /** The `price_update` (and book) of an execution at `price` adding `quantity` shares. */
  private execute(i: number, price: number, quantity: number, now: number, out: Array<MarketEvent>): void {
    const q = this.quotes[i] as QuoteView
    const { lower, upper } = dailyLimits(q.prevClose)
    const { bid, ask } = quoteAround(price, lower, upper)
    const book = buildBook(this.rng, bid, ask, lower, upper)
    const checksum = orderbookChecksum(book.bids, book.asks)
    this.state.recordBook(q.code, book.bids, book.asks, checksum)
    const volume = q.volume + quantity
    this.state.recordTrade(q.code, price, volume, now)
    this.printed[i] = price
    const timestamp = nowIso(now)
    out.push(priceUpdateOf(q, price, volume, timestamp))
    if (this.books) out.push(orderbookUpdateOf(q.code, book, timestamp, checksum))
    this.dirtyIndex.add(q.market)
  }

  private statusEvent(
    i: number,
    now: number,
    trigger: ViTrigger | undefined,
    reason: string,
  ): InstrumentStatus {
    const q = this.quotes[i] as QuoteView
    const timestamp = nowIso(now)
    if (trigger === undefined) {
      this.state.recordStatus(q.code, "trading")
      return { type: "instrument_status", code: q.code, status: "trading", reason, timestamp }
    }
    this.state.recordStatus(q.code, "vi")
    return {
      type: "instrument_status",
      code: q.code,
      status: "vi",
      vi_type: trigger.viType,
      reference_price: trigger.reference,
      expected_end: nowIso(now + VI_DURATION_MS),
      reason: trigger.reason,
      timestamp,
    }
  }

  /** Starts a VI auction for stock `i`: no trades until it ends (`endAuctions`). */
  private startVi(i: number, now: number, trigger: ViTrigger, out: Array<MarketEvent>): void {
    this.viUntil[i] = now + VI_DURATION_MS
    this.inVi.add(i)
    out.push(this.statusEvent(i, now, trigger, trigger.reason))
  }

  /** An auction's clearing price: the latent mid on the grid, inside the limit band. */
  private auctionPrice(i: number, moveSigma: number): number {
    const q = this.quotes[i] as QuoteView
    const { lower, upper } = dailyLimits(q.prevClose)
    const mid = Math.min(
      upper,
      Math.max(lower, (this.mids[i] as number) * Math.exp(moveSigma * this.rng.normal())),
    )
    this.mids[i] = mid
    return Math.min(upper, Math.max(lower, floorToTick(mid)))
  }

  /** Shares of an auction execution: many ordinary trades' worth. */
  private auctionQuantity(price: number, trades: number): number {
    return Math.max(1, Math.round((50_000_000 / price) * trades * (0.5 + this.rng.next())))
  }

  /** Ends the VI auctions due by `now`: one execution at the auction price each, then `trading`. */
  private endAuctions(now: number, isHalted: (m: Market) => boolean, out: Array<MarketEvent>): void {
    for (const i of this.inVi) {
      if ((this.viUntil[i] as number) > now) continue
      const q = this.quotes[i] as QuoteView
      if (isHalted(q.market)) continue // the auction resumes with the market
      this.inVi.delete(i)
      this.viUntil[i] = 0
      const price = this.auctionPrice(i, (this.sigmas[i] as number) * 5)
      this.base[i] = price
      this.execute(i, price, this.auctionQuantity(price, 20), now, out)
      out.push(this.statusEvent(i, now, undefined, `VI auction ended: one execution at ${price}`))
    }
  }

  /**
   * The opening single-price auction: one execution per stock at its opening price (yesterday's
   * level plus an overnight gap when the day is shaped), which becomes the static base; an opening
   * price 10% or more from the previous close calls a static VI first. Picks the day's news stocks.
   * A stock that already has an open (the day went on under another feed leader) is left as it is.
   */
  private openDay(now: number, out: Array<MarketEvent>): void {
    for (const i of this.traded) {
      const q = this.quotes[i] as QuoteView
      this.mids[i] = q.last
      this.drift[i] = 0
      // Already open today (a new feed leader taking over the shared state): no second opening.
      if (q.open !== undefined) {
        this.base[i] = q.last
        continue
      }
      this.base[i] = q.prevClose
      let gap = 0
      if (this.shaped) {
        gap = 0.6 * (this.sigmas[i] as number) * Math.sqrt(this.ticksPerStock) * this.rng.normal()
        // A few small caps have news: a gap and a drift that can take them to a limit within the day.
        if (this.kospi200[i] === 0 && this.rng.next() < 0.02) {
          const dir = this.rng.next() < 0.65 ? 1 : -1
          gap += dir * (0.03 + 0.09 * this.rng.next())
          this.drift[i] = (dir * Math.log(1.35)) / (this.ticksPerStock * (0.3 + 0.5 * this.rng.next()))
        }
      }
      this.mids[i] = q.last * Math.exp(gap)
      const price = this.auctionPrice(i, 0)
      if (q.status === "halted") continue
      const trigger = viTriggerAt({
        price,
        staticBase: this.base[i] as number,
        lastExecution: this.base[i] as number,
        kospi200: this.kospi200[i] === 1,
        phase: "continuous",
      })
      if (trigger?.viType === "static") {
        this.startVi(i, now, trigger, out)
        continue
      }
      this.base[i] = price
      this.execute(i, price, this.auctionQuantity(price, 50), now, out)
    }
  }

  /**
   * The closing single-price auction (run at 15:30): one execution per stock at its closing price;
   * a closing price past the closing-auction thresholds (static 10%, dynamic 2% / 4%) calls a VI,
   * whose auction execution then closes the stock.
   */
  private closeDay(now: number, out: Array<MarketEvent>): void {
    for (const i of this.traded) {
      const q = this.quotes[i] as QuoteView
      if (this.inVi.has(i) || q.status !== "trading") continue
      if (q.last !== this.printed[i]) this.mids[i] = q.last
      const move = (this.sigmas[i] as number) * Math.sqrt(this.ticksPerStock * CLOSING_AUCTION_SHARE)
      const price = this.auctionPrice(i, move)
      const trigger = viTriggerAt({
        price,
        staticBase: this.base[i] as number,
        lastExecution: q.last,
        kospi200: this.kospi200[i] === 1,
        phase: "closing_auction",
      })
      if (trigger !== undefined) this.startVi(i, now, trigger, out)
      else this.execute(i, price, this.auctionQuantity(price, 40), now, out)
    }
  }

  /**
   * The first events: under a day in progress (always_open, or krx between 09:00 and 15:30) the
   * opening auction's executions; otherwise the current prices as they stand. Then every stock's
   * trading state and a book for any stock still without one, then both indices.
   */
  initialEvents(now: number): Array<MarketEvent> {
    const out: Array<MarketEvent> = []
    const opening: Array<MarketEvent> = []
    const timestamp = nowIso(now)
    const session = this.options.krxSessions === true ? krxSessionAt(now) : undefined
    const opens =
      session === undefined || session.session === "continuous" || session.session === "closing_auction"
    if (opens) {
      this.openDay(now, opening)
      this.openedDay = session?.dayOpen ?? Number.NaN
    }
    const executed = new Set<string>()
    for (const e of opening) if (e.type === "price_update") executed.add(e.code)
    for (const q of this.quotes) {
      if (executed.has(q.code)) continue
      const { lower, upper } = dailyLimits(q.prevClose)
      const { bid, ask } = quoteAround(q.last, lower, upper)
      const book = buildBook(this.rng, bid, ask, lower, upper)
      const checksum = orderbookChecksum(book.bids, book.asks)
      this.state.recordBook(q.code, book.bids, book.asks, checksum)
      // Not an execution: the current price as it stands (open/high/low only once the day has them).
      out.push(
        priceUpdateOf(q, q.last, q.volume, timestamp),
        orderbookUpdateOf(q.code, book, timestamp, checksum),
      )
    }
    // Reference prices first, so a stock whose opening calls a VI has a price before its status.
    for (const e of opening) out.push(e)
    this.quotes.forEach((q, i) => {
      if (!this.inVi.has(i) && q.status !== "halted") out.push(this.statusEvent(i, now, undefined, "trading"))
    })
    for (const idx of this.state.indices) {
      this.dirtyIndex.add(idx.market)
      this.lastIndexAt.delete(idx.market)
    }
    out.push(...this.indexEvents(now, () => true))
    return out
  }

  /**
   * `count` trade ticks spread uniformly over the stocks of open markets (continuous session).
   * A tick that lands on a stock in a VI auction or halted looks for another one; a tick whose
   * price would breach a VI threshold starts that VI instead of printing.
   */
  step(now: number, count: number, isOpen: (m: Market) => boolean): Array<MarketEvent> {
    const key = [isOpen("KOSPI") ? "KOSPI" : "", isOpen("KOSDAQ") ? "KOSDAQ" : ""].filter((s) => s).join(",")
    const pool = this.pools.get(key) ?? []
    const out: Array<MarketEvent> = []
    if (pool.length === 0 || count <= 0) return out
    const timestamp = nowIso(now)
    for (let k = 0; k < count; k++) {
      let i = pool[this.rng.int(pool.length)] as number
      for (
        let r = 0;
        r < REPICKS && (this.inVi.has(i) || (this.quotes[i] as QuoteView).status !== "trading");
        r++
      )
        i = pool[this.rng.int(pool.length)] as number
      const q = this.quotes[i] as QuoteView
      if (this.inVi.has(i) || q.status !== "trading") continue
      // Another source moved the price since our last print: continue the walk from there.
      if (q.last !== this.printed[i]) {
        this.mids[i] = q.last
        this.printed[i] = q.last
      }
      let mid = this.mids[i] as number
      const drift = this.drift[i] as number
      if (drift !== 0) mid *= Math.exp(drift)
      if (this.shaped && this.rng.next() < (this.jumpP[i] as number))
        mid *= Math.exp(laplace(this.rng, this.jumpB[i] as number))
      const t = stepInstrument(this.rng, { prevClose: q.prevClose, mid, sigma: this.sigmas[i] as number })
      this.mids[i] = t.mid
      // Most ticks move a tick or two: a cheap band check first, the full rule only near a threshold.
      const kospi200 = this.kospi200[i] === 1
      const near =
        breaches(t.price, this.base[i] as number, STATIC_VI_PERMIL) ||
        breaches(t.price, q.last, dynamicViPermil(kospi200, "continuous"))
      const trigger = near
        ? viTriggerAt({
            price: t.price,
            staticBase: this.base[i] as number,
            lastExecution: q.last,
            kospi200,
            phase: "continuous",
          })
        : undefined
      if (trigger !== undefined) {
        this.startVi(i, now, trigger, out)
        continue
      }
      this.printed[i] = t.price
      const volume = q.volume + t.quantity
      this.state.recordTrade(q.code, t.price, volume, now)
      const checksum = orderbookChecksum(t.book.bids, t.book.asks)
      this.state.recordBook(q.code, t.book.bids, t.book.asks, checksum)
      out.push(priceUpdateOf(q, t.price, volume, timestamp))
      if (this.books) out.push(orderbookUpdateOf(q.code, t.book, timestamp, checksum))
      this.dirtyIndex.add(q.market)
    }
    return out
  }

  /** Index updates for markets that moved, at most once per indexIntervalMs each. */
  indexEvents(now: number, isOpen: (m: Market) => boolean): Array<MarketEvent> {
    const out: Array<MarketEvent> = []
    for (const idx of this.state.indices) {
      const m = idx.market
      if (!this.dirtyIndex.has(m) || !isOpen(m)) continue
      const last = this.lastIndexAt.get(m)
      if (last !== undefined && now - last < this.indexIntervalMs) continue
      const members = this.state.stocksOf(m)
      const level = indexLevel(idx.prevClose, members)
      let volume = 0
      for (const s of members) volume += s.volume
      this.state.recordTrade(idx.code, level, volume, now)
      out.push(priceUpdateOf(idx, level, volume, nowIso(now)))
      this.dirtyIndex.delete(m)
      this.lastIndexAt.set(m, now)
    }
    return out
  }

  /**
   * Trade ticks owed for the time since the previous call (fractional remainder carried), at
   * `factor` times FEED_RATE (the session's U shape). A late call gets what it owes for at most the
   * last MAX_LAG_MS; older ticks are skipped and counted.
   * Late calls are normal at 10,000 connections (a flush pass takes a few hundred ms, and the
   * feed's timer waits for it), so the window covers that. Beyond it the process cannot keep up,
   * and bunching more would make it later still: a second's trades at 2,000 ticks/s over 10,000
   * subscribers is two million deliveries in one go, which blocked the event loop for over a
   * second, made the next call as late, and timed out every heartbeat (benchmark scenario E).
   * Real feeds enter through ingest, where TCP paces the publisher instead.
   */
  ticksDue(now: number, factor = 1): number {
    const elapsed = this.lastAdvance === undefined ? 0 : Math.max(0, now - this.lastAdvance)
    this.lastAdvance = now
    const owed = this.carry + (this.options.rate * factor * elapsed) / 1000
    const backlog = this.maxBacklog * Math.max(1, factor)
    this.skipped += Math.max(0, owed - backlog)
    const due = Math.min(owed, backlog)
    const n = Math.floor(due)
    this.produced += n
    this.carry = due - n
    return n
  }

  /**
   * One loop iteration: under KRX sessions the day's auctions when due; VI auctions that ended;
   * the ticks owed since the last call (continuous session only); then any index updates due.
   * `isHalted` (a market halted by ingest) holds its VI auctions until it resumes.
   */
  advance(
    now: number,
    isOpen: (m: Market) => boolean,
    isHalted: (m: Market) => boolean = () => false,
  ): Array<MarketEvent> {
    const out: Array<MarketEvent> = []
    let continuous = true
    let factor = 1
    if (this.options.krxSessions === true) {
      const s = krxSessionAt(now)
      const inDay = s.session === "continuous" || s.session === "closing_auction"
      if (inDay && this.openedDay !== s.dayOpen) {
        this.openDay(now, out)
        this.openedDay = s.dayOpen
      }
      // The closing auction executes once the day's 15:30 has passed (the day was opened).
      if (
        s.session === "closed" &&
        s.progress === 1 &&
        this.openedDay === s.dayOpen &&
        this.closedDay !== s.dayOpen
      ) {
        this.closeDay(now, out)
        this.closedDay = s.dayOpen
      }
      continuous = s.session === "continuous"
      factor = this.shaped ? uShape(s.progress) : 1
    }
    this.endAuctions(now, isHalted, out)
    const due = this.ticksDue(now, factor)
    if (continuous) for (const e of this.step(now, due, isOpen)) out.push(e)
    for (const e of this.indexEvents(now, isOpen)) out.push(e)
    return out
  }
}

/**
 * Builds the engine over the live services and publishes the initial prices and books (so every
 * stock and index has a snapshot before any trade); returns the loop, which runs until interrupted.
 */
export const startSimulator: Effect.Effect<
  Effect.Effect<void>,
  never,
  AppConfig | Universe | MarketState | MarketClock | MarketPipeline
> = Effect.gen(function* () {
  const config = yield* AppConfig
  const universe = yield* Universe
  const state = yield* MarketState
  const clock = yield* MarketClock
  const pipeline = yield* MarketPipeline
  const delivery = yield* DeliveryPass
  const start = yield* Clock.currentTimeMillis
  const seed = Option.getOrElse(config.feedSeed, () => start % 2_147_483_647)
  const engine = new SimulatorEngine(universe, state, {
    seed,
    rate: config.feedRate,
    books: config.feedBooks,
    krxSessions: config.marketClock === "krx",
  })
  yield* pipeline.publish(engine.initialEvents(start))
  yield* Effect.logInfo("simulator started").pipe(
    Effect.annotateLogs({ seed, rate: config.feedRate, instruments: universe.instruments.length }),
  )
  const isHalted = (m: Market) => clock.status(m) === "halted"
  let reported = { skipped: 0, at: Number.NEGATIVE_INFINITY }
  const tick = Effect.gen(function* () {
    // A flush pass in progress goes first (DeliveryPass); the trades are then timed after it.
    yield* delivery.idle
    const now = yield* Clock.currentTimeMillis
    const events = engine.advance(now, clock.isOpen, isHalted)
    if (events.length > 0) yield* pipeline.publish(events)
    if (engine.skipped > reported.skipped && now - reported.at >= SKIP_REPORT_MS) {
      yield* Effect.logWarning("simulator running late: trades skipped").pipe(
        Effect.annotateLogs({ skipped: Math.round(engine.skipped - reported.skipped) }),
      )
      reported = { skipped: engine.skipped, at: now }
    }
  }).pipe(
    // A bug in one iteration must not stop the feed for the rest of the process's life.
    Effect.catchAllDefect((defect) => Effect.logError("simulator tick failed", defect)),
  )
  return Effect.asVoid(Effect.repeat(tick, yieldingToIo(Schedule.fixed(Duration.millis(engine.intervalMs)))))
})

/** Runs the simulator for the lifetime of the layer when FEED=simulator; a no-op otherwise. */
export const SimulatorLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.feed !== "simulator") return
    // Cluster mode: only the feed leader simulates, restarting from the shared state on takeover.
    const leadership = yield* FeedLeadership
    yield* leadership.lead(startSimulator)
  }),
)
