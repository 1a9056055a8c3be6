/**
 * The render loop: the panels redraw what the state marks as changed, at most once per animation
 * frame, so a burst of messages costs one render, not one per message.
 */
import { makeBook } from "./panels/book.js"
import { makeMarkets } from "./panels/markets.js"
import { makeSectors } from "./panels/sectors.js"
import { makeTradingState } from "./panels/tradingState.js"
import { makeWatchlist } from "./panels/watchlist.js"
import type { State } from "./state.js"

export interface Renderer {
  /** Asks for a render at the next animation frame (once, however often it is called before). */
  readonly schedule: () => void
  readonly renderNow: () => void
}

/** Builds every panel; `onSelect` is what a click on a stock does. */
export const makeRenderer = (state: State, onSelect: (code: string) => void): Renderer => {
  const renderMarkets = makeMarkets(state)
  const watchlist = makeWatchlist(state, onSelect)
  const renderBook = makeBook(state)
  const renderSector = makeSectors(state, onSelect)
  const renderTradingState = makeTradingState(state)

  const renderNow = () => {
    const { dirty } = state
    for (const code of dirty.quotes) watchlist.renderRow(code)
    dirty.quotes.clear()
    for (const sector of dirty.sectors) renderSector(sector)
    dirty.sectors.clear()
    if (dirty.markets) renderMarkets()
    dirty.markets = false
    if (dirty.selection) watchlist.renderSelection()
    dirty.selection = false
    if (dirty.book) {
      renderBook()
      renderTradingState()
    }
    dirty.book = false
  }

  let requested = false
  const schedule = () => {
    if (requested) return
    requested = true
    requestAnimationFrame(() => {
      requested = false
      renderNow()
    })
  }

  return { schedule, renderNow }
}
