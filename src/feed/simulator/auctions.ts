/**
 * The simulator's single-price auctions (KRX): the day's opening auction, the closing auction at
 * 15:30, and the 2-minute auction of a volatility interruption (rules in `volatility.ts`), each
 * ending in one execution per stock. Also the check a continuous-session print goes through first:
 * whether it would call a VI instead of printing. Holds what those auctions need: each stock's
 * static VI base price, the VI auctions running, and which trading day was opened and closed.
 */
import { orderbookChecksum } from "../../market/checksum.js"
import { dailyLimits, floorToTick } from "../../market/tickSize.js"
import type { QuoteView } from "../../pipeline/MarketState.js"
import { nowIso } from "../../protocol/encode.js"
import type { InstrumentStatus, Market, MarketEvent } from "../../protocol/server.js"
import type { KrxSessionPoint } from "../MarketClock.js"
import { buildBook, orderbookUpdateOf, priceUpdateOf, quoteAround } from "../simulatorModel.js"
import {
  breaches,
  dynamicViPermil,
  STATIC_VI_PERMIL,
  VI_DURATION_MS,
  type ViTrigger,
  viTriggerAt,
} from "../volatility.js"
import type { SimulatedStocks } from "./stocks.js"

/** Ticks of one stock in a closing auction's 10 minutes, relative to a whole session. */
const CLOSING_AUCTION_SHARE = 10 / (6.5 * 60)

export class Auctions {
  /** Per stock: the static VI base price (the last single-price auction price of the day). */
  private readonly base: Float64Array
  /** Per stock: when its VI auction ends (epoch ms), 0 when none. */
  private readonly viUntil: Float64Array
  private readonly inVi = new Set<number>()
  /** `dayOpen` of the last trading day opened (opening auction run), and of the last one closed. */
  private openedDay = Number.NaN
  private closedDay = Number.NaN

  constructor(private readonly stocks: SimulatedStocks) {
    this.base = Float64Array.from(stocks.quotes, (q) => q.prevClose)
    this.viUntil = new Float64Array(stocks.quotes.length)
  }

  /** Whether stock `i` is in a VI auction: it does not trade until the auction ends. */
  inAuction(i: number): boolean {
    return this.inVi.has(i)
  }

  /** The VI that a continuous-session print of stock `i` at `price` would call, or undefined. */
  continuousTrigger(i: number, price: number, lastExecution: number): ViTrigger | undefined {
    // Most ticks move a tick or two: a cheap band check first, the full rule only near a threshold.
    const kospi200 = this.stocks.kospi200[i] === 1
    const near =
      breaches(price, this.base[i] as number, STATIC_VI_PERMIL) ||
      breaches(price, lastExecution, dynamicViPermil(kospi200, "continuous"))
    return near
      ? viTriggerAt({
          price,
          staticBase: this.base[i] as number,
          lastExecution,
          kospi200,
          phase: "continuous",
        })
      : undefined
  }

  /** The `price_update` (and book) of an execution at `price` adding `quantity` shares. */
  private execute(i: number, price: number, quantity: number, now: number, out: Array<MarketEvent>): void {
    const s = this.stocks
    const q = s.quotes[i] as QuoteView
    const { lower, upper } = dailyLimits(q.prevClose)
    const { bid, ask } = quoteAround(price, lower, upper)
    const book = buildBook(s.rng, bid, ask, lower, upper)
    const checksum = orderbookChecksum(book.bids, book.asks)
    s.state.recordBook(q.code, book.bids, book.asks, checksum)
    const volume = q.volume + quantity
    s.state.recordTrade(q.code, price, volume, now)
    s.printed[i] = price
    const timestamp = nowIso(now)
    out.push(priceUpdateOf(q, price, volume, timestamp))
    if (s.books) out.push(orderbookUpdateOf(q.code, book, timestamp, checksum))
    s.dirtyIndex.add(q.market)
  }

  /** Stock `i`'s `instrument_status`: `vi` for a trigger, `trading` without one (recorded too). */
  statusEvent(i: number, now: number, trigger: ViTrigger | undefined, reason: string): InstrumentStatus {
    const q = this.stocks.quotes[i] as QuoteView
    const timestamp = nowIso(now)
    if (trigger === undefined) {
      this.stocks.state.recordStatus(q.code, "trading")
      return { type: "instrument_status", code: q.code, status: "trading", reason, timestamp }
    }
    this.stocks.state.recordStatus(q.code, "vi")
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

  /** Starts a VI auction for stock `i`: no trades until it ends (`endDue`). */
  startVi(i: number, now: number, trigger: ViTrigger, out: Array<MarketEvent>): void {
    this.viUntil[i] = now + VI_DURATION_MS
    this.inVi.add(i)
    out.push(this.statusEvent(i, now, trigger, trigger.reason))
  }

  /** An auction's clearing price: the latent mid on the grid, inside the limit band. */
  private auctionPrice(i: number, moveSigma: number): number {
    const s = this.stocks
    const q = s.quotes[i] as QuoteView
    const { lower, upper } = dailyLimits(q.prevClose)
    const mid = Math.min(upper, Math.max(lower, (s.mids[i] as number) * Math.exp(moveSigma * s.rng.normal())))
    s.mids[i] = mid
    return Math.min(upper, Math.max(lower, floorToTick(mid)))
  }

  /** Shares of an auction execution: many ordinary trades' worth. */
  private auctionQuantity(price: number, trades: number): number {
    return Math.max(1, Math.round((50_000_000 / price) * trades * (0.5 + this.stocks.rng.next())))
  }

  /** Ends the VI auctions due by `now`: one execution at the auction price each, then `trading`. */
  endDue(now: number, isHalted: (m: Market) => boolean, out: Array<MarketEvent>): void {
    for (const i of this.inVi) {
      if ((this.viUntil[i] as number) > now) continue
      const q = this.stocks.quotes[i] as QuoteView
      if (isHalted(q.market)) continue // the auction resumes with the market
      this.inVi.delete(i)
      this.viUntil[i] = 0
      const price = this.auctionPrice(i, (this.stocks.sigmas[i] as number) * 5)
      this.base[i] = price
      this.execute(i, price, this.auctionQuantity(price, 20), now, out)
      out.push(this.statusEvent(i, now, undefined, `VI auction ended: one execution at ${price}`))
    }
  }

  /**
   * Under KRX sessions, the day's auctions due at `session`: the opening auction once the day is
   * in progress, the closing auction once its 15:30 has passed.
   */
  sessionDue(session: KrxSessionPoint, now: number, out: Array<MarketEvent>): void {
    const inDay = session.session === "continuous" || session.session === "closing_auction"
    if (inDay && this.openedDay !== session.dayOpen) this.openDay(now, session.dayOpen, out)
    // The closing auction executes once the day's 15:30 has passed (the day was opened).
    if (
      session.session === "closed" &&
      session.progress === 1 &&
      this.openedDay === session.dayOpen &&
      this.closedDay !== session.dayOpen
    ) {
      this.closeDay(now, out)
      this.closedDay = session.dayOpen
    }
  }

  /**
   * The opening single-price auction of the day that opens at `dayOpen` (NaN: a day outside KRX
   * sessions): one execution per stock at its opening price (yesterday's level plus an overnight
   * gap when the day is shaped), which becomes the static base; an opening price 10% or more from
   * the previous close calls a static VI first. Picks the day's news stocks. A stock that already
   * has an open (the day went on under another feed leader) is left as it is.
   */
  openDay(now: number, dayOpen: number, out: Array<MarketEvent>): void {
    const s = this.stocks
    for (const i of s.traded) {
      const q = s.quotes[i] as QuoteView
      s.mids[i] = q.last
      s.drift[i] = 0
      // Already open today (a new feed leader taking over the shared state): no second opening.
      if (q.open !== undefined) {
        this.base[i] = q.last
        continue
      }
      this.base[i] = q.prevClose
      let gap = 0
      if (s.shaped) {
        gap = 0.6 * (s.sigmas[i] as number) * Math.sqrt(s.ticksPerStock) * s.rng.normal()
        // A few small caps have news: a gap and a drift that can take them to a limit within the day.
        if (s.kospi200[i] === 0 && s.rng.next() < 0.02) {
          const dir = s.rng.next() < 0.65 ? 1 : -1
          gap += dir * (0.03 + 0.09 * s.rng.next())
          s.drift[i] = (dir * Math.log(1.35)) / (s.ticksPerStock * (0.3 + 0.5 * s.rng.next()))
        }
      }
      s.mids[i] = q.last * Math.exp(gap)
      const price = this.auctionPrice(i, 0)
      if (q.status === "halted") continue
      const trigger = viTriggerAt({
        price,
        staticBase: this.base[i] as number,
        lastExecution: this.base[i] as number,
        kospi200: s.kospi200[i] === 1,
        phase: "continuous",
      })
      if (trigger?.viType === "static") {
        this.startVi(i, now, trigger, out)
        continue
      }
      this.base[i] = price
      this.execute(i, price, this.auctionQuantity(price, 50), now, out)
    }
    this.openedDay = dayOpen
  }

  /**
   * The closing single-price auction (run at 15:30): one execution per stock at its closing price;
   * a closing price past the closing-auction thresholds (static 10%, dynamic 2% / 4%) calls a VI,
   * whose auction execution then closes the stock.
   */
  private closeDay(now: number, out: Array<MarketEvent>): void {
    const s = this.stocks
    for (const i of s.traded) {
      const q = s.quotes[i] as QuoteView
      if (this.inVi.has(i) || q.status !== "trading") continue
      if (q.last !== s.printed[i]) s.mids[i] = q.last
      const move = (s.sigmas[i] as number) * Math.sqrt(s.ticksPerStock * CLOSING_AUCTION_SHARE)
      const price = this.auctionPrice(i, move)
      const trigger = viTriggerAt({
        price,
        staticBase: this.base[i] as number,
        lastExecution: q.last,
        kospi200: s.kospi200[i] === 1,
        phase: "closing_auction",
      })
      if (trigger !== undefined) this.startVi(i, now, trigger, out)
      else this.execute(i, price, this.auctionQuantity(price, 40), now, out)
    }
  }
}
