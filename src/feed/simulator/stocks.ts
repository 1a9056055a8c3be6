/**
 * The simulator's per-stock state, indexed like the universe's instruments: the latent mid of each
 * stock's random walk, its volatility, jump and news-drift parameters, and its last print. The
 * parameters are drawn from the seed when the engine is built, in a fixed order, so a seed always
 * gives the same day. The continuous session (`SimulatorEngine.ts`) and the auctions
 * (`auctions.ts`) both move this state.
 */
import { Prng } from "../../market/prng.js"
import type { UniverseShape } from "../../market/Universe.js"
import type { MarketStateShape, QuoteView } from "../../pipeline/MarketState.js"
import type { Market } from "../../protocol/server.js"
import { SESSION_SECONDS } from "../simulatorModel.js"
import type { SimulatorOptions } from "./options.js"

export class SimulatedStocks {
  /** Per-tick sigma of a typical stock (dailySigma scaled to its ticks per session). */
  readonly sigma: number
  readonly books: boolean
  /** The day's shape (`SimulatorOptions.dayShape`): opening gaps, jumps, news drifts. */
  readonly shaped: boolean
  readonly rng: Prng
  readonly quotes: ReadonlyArray<QuoteView>
  /** The stocks that trade (`SimulatorOptions.codes`), in universe order. */
  readonly traded: ReadonlyArray<number>
  /** Expected ticks of one trading stock in a session. */
  readonly ticksPerStock: number
  readonly mids: Float64Array
  /** Last price this engine printed per stock, to notice prices set by other sources. */
  readonly printed: Float64Array
  /** Per stock: per-tick sigma, jump probability per tick and jump scale, news drift per tick. */
  readonly sigmas: Float64Array
  readonly jumpP: Float64Array
  readonly jumpB: Float64Array
  readonly drift: Float64Array
  readonly kospi200: Uint8Array
  /** Markets with a print since their index was last updated. */
  readonly dirtyIndex = new Set<Market>()

  constructor(
    universe: UniverseShape,
    readonly state: MarketStateShape,
    options: SimulatorOptions,
  ) {
    this.books = options.books ?? true
    this.rng = new Prng(options.seed)
    this.quotes = universe.instruments.map((i) => {
      const q = state.get(i.code)
      if (q === undefined) throw new Error(`MarketState has no quote for ${i.code}`)
      return q
    })
    const only = options.codes === undefined ? undefined : new Set(options.codes)
    const traded: Array<number> = []
    this.quotes.forEach((q, i) => {
      if (only === undefined || only.has(q.code)) traded.push(i)
    })
    this.traded = traded
    // Expected ticks of one trading stock in a session: rate / n per second over SESSION_SECONDS.
    this.ticksPerStock = Math.max(1, (options.rate / Math.max(1, traded.length)) * SESSION_SECONDS)
    const daily = options.dailySigma ?? 0.02
    this.sigma = daily / Math.sqrt(this.ticksPerStock)
    this.shaped = options.dayShape ?? true
    const n = this.quotes.length
    this.mids = Float64Array.from(this.quotes, (q) => q.last)
    this.printed = Float64Array.from(this.quotes, (q) => q.last)
    this.drift = new Float64Array(n)
    this.kospi200 = Uint8Array.from(universe.instruments, (i) => (i.kospi200 ? 1 : 0))
    this.sigmas = new Float64Array(n)
    this.jumpP = new Float64Array(n)
    this.jumpB = new Float64Array(n)
    universe.instruments.forEach((inst, i) => {
      if (!this.shaped) {
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
}
