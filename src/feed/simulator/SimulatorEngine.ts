/**
 * The simulator as plain synchronous code, no Effect (the model is described in `../Simulator.ts`):
 * the day's first events, the continuous session's trade ticks at FEED_RATE (U-shaped under KRX
 * sessions, never bunching more than MAX_LAG_MS of them), the index levels, and the auctions of
 * `auctions.ts` when they are due. The live loop, the tests and the benchmark's feed drive it
 * directly with the time.
 */
import { orderbookChecksum } from "../../market/checksum.js"
import type { Prng } from "../../market/prng.js"
import { dailyLimits } from "../../market/tickSize.js"
import type { UniverseShape } from "../../market/Universe.js"
import type { MarketStateShape, QuoteView } from "../../pipeline/MarketState.js"
import { nowIso } from "../../protocol/encode.js"
import type { Market, MarketEvent } from "../../protocol/server.js"
import { krxSessionAt } from "../MarketClock.js"
import {
  buildBook,
  indexLevel,
  orderbookUpdateOf,
  priceUpdateOf,
  quoteAround,
  stepInstrument,
} from "../simulatorModel.js"
import { Auctions } from "./auctions.js"
import type { SimulatorOptions } from "./options.js"
import { SimulatedStocks } from "./stocks.js"

/** How late a trade tick may come and still be produced (see `ticksDue`). */
export const MAX_LAG_MS = 250
/** How many times a tick looks for another stock when it lands on one that cannot trade. */
const REPICKS = 4

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
  private readonly stocks: SimulatedStocks
  private readonly auctions: Auctions
  private readonly pools: ReadonlyMap<string, ReadonlyArray<number>>
  private readonly lastIndexAt = new Map<Market, number>()
  private carry = 0
  /** Most ticks owed before the rest is skipped (`ticksDue`): MAX_LAG_MS worth. */
  private readonly maxBacklog: number
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
    this.stocks = new SimulatedStocks(universe, state, options)
    this.sigma = this.stocks.sigma
    this.books = this.stocks.books
    this.auctions = new Auctions(this.stocks)
    const { traded, quotes } = this.stocks
    const of = (m: Market) => traded.filter((i) => (quotes[i] as QuoteView).market === m)
    this.pools = new Map([
      ["KOSPI,KOSDAQ", traded],
      ["KOSPI", of("KOSPI")],
      ["KOSDAQ", of("KOSDAQ")],
      ["", []],
    ])
  }

  /**
   * The first events: under a day in progress (always_open, or krx between 09:00 and 15:30) the
   * opening auction's executions; otherwise the current prices as they stand. Then every stock's
   * trading state and a book for any stock still without one, then both indices.
   */
  initialEvents(now: number): Array<MarketEvent> {
    const { quotes, rng } = this.stocks
    const out: Array<MarketEvent> = []
    const opening: Array<MarketEvent> = []
    const timestamp = nowIso(now)
    const session = this.options.krxSessions === true ? krxSessionAt(now) : undefined
    const opens =
      session === undefined || session.session === "continuous" || session.session === "closing_auction"
    if (opens) this.auctions.openDay(now, session?.dayOpen ?? Number.NaN, opening)
    const executed = new Set<string>()
    for (const e of opening) if (e.type === "price_update") executed.add(e.code)
    for (const q of quotes) {
      if (executed.has(q.code)) continue
      const { lower, upper } = dailyLimits(q.prevClose)
      const { bid, ask } = quoteAround(q.last, lower, upper)
      const book = buildBook(rng, bid, ask, lower, upper)
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
    quotes.forEach((q, i) => {
      if (!this.auctions.inAuction(i) && q.status !== "halted")
        out.push(this.auctions.statusEvent(i, now, undefined, "trading"))
    })
    for (const idx of this.state.indices) {
      this.stocks.dirtyIndex.add(idx.market)
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
    const s = this.stocks
    const auctions = this.auctions
    const timestamp = nowIso(now)
    for (let k = 0; k < count; k++) {
      let i = pool[s.rng.int(pool.length)] as number
      for (
        let r = 0;
        r < REPICKS && (auctions.inAuction(i) || (s.quotes[i] as QuoteView).status !== "trading");
        r++
      )
        i = pool[s.rng.int(pool.length)] as number
      const q = s.quotes[i] as QuoteView
      if (auctions.inAuction(i) || q.status !== "trading") continue
      // Another source moved the price since our last print: continue the walk from there.
      if (q.last !== s.printed[i]) {
        s.mids[i] = q.last
        s.printed[i] = q.last
      }
      let mid = s.mids[i] as number
      const drift = s.drift[i] as number
      if (drift !== 0) mid *= Math.exp(drift)
      if (s.shaped && s.rng.next() < (s.jumpP[i] as number))
        mid *= Math.exp(laplace(s.rng, s.jumpB[i] as number))
      const t = stepInstrument(s.rng, { prevClose: q.prevClose, mid, sigma: s.sigmas[i] as number })
      s.mids[i] = t.mid
      const trigger = auctions.continuousTrigger(i, t.price, q.last)
      if (trigger !== undefined) {
        auctions.startVi(i, now, trigger, out)
        continue
      }
      s.printed[i] = t.price
      const volume = q.volume + t.quantity
      this.state.recordTrade(q.code, t.price, volume, now)
      const checksum = orderbookChecksum(t.book.bids, t.book.asks)
      this.state.recordBook(q.code, t.book.bids, t.book.asks, checksum)
      out.push(priceUpdateOf(q, t.price, volume, timestamp))
      if (s.books) out.push(orderbookUpdateOf(q.code, t.book, timestamp, checksum))
      s.dirtyIndex.add(q.market)
    }
    return out
  }

  /** Index updates for markets that moved, at most once per indexIntervalMs each. */
  indexEvents(now: number, isOpen: (m: Market) => boolean): Array<MarketEvent> {
    const dirtyIndex = this.stocks.dirtyIndex
    const out: Array<MarketEvent> = []
    for (const idx of this.state.indices) {
      const m = idx.market
      if (!dirtyIndex.has(m) || !isOpen(m)) continue
      const last = this.lastIndexAt.get(m)
      if (last !== undefined && now - last < this.indexIntervalMs) continue
      const members = this.state.stocksOf(m)
      const level = indexLevel(idx.prevClose, members)
      let volume = 0
      for (const s of members) volume += s.volume
      this.state.recordTrade(idx.code, level, volume, now)
      out.push(priceUpdateOf(idx, level, volume, nowIso(now)))
      dirtyIndex.delete(m)
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
      this.auctions.sessionDue(s, now, out)
      continuous = s.session === "continuous"
      factor = this.stocks.shaped ? uShape(s.progress) : 1
    }
    this.auctions.endDue(now, isHalted, out)
    const due = this.ticksDue(now, factor)
    if (continuous) for (const e of this.step(now, due, isOpen)) out.push(e)
    for (const e of this.indexEvents(now, isOpen)) out.push(e)
    return out
  }
}
