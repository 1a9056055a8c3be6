/** The header's market cards: KOSPI and KOSDAQ status (`market_status`) and index value. */
import { MARKETS, STATUS_LABEL } from "../catalog.js"
import { byId, el, flash } from "../dom.js"
import { direction, indexFmt, pct, signedChange } from "../format.js"
import type { State } from "../state.js"

interface MarketCard {
  readonly root: HTMLElement
  readonly status: HTMLElement
  readonly value: HTMLElement
  readonly change: HTMLElement
}

/** Builds the cards into `#markets`; returns their render. */
export const makeMarkets = (state: State): (() => void) => {
  const cards = new Map<string, MarketCard>()
  for (const m of MARKETS) {
    const root = el("div", "market")
    root.id = `market-${m.code}`
    const head = el("div", "market-head")
    head.append(el("span", "market-name", m.code), el("span", "market-ko", m.nameKo))
    const status = el("span", "badge", "–")
    head.append(status)
    const value = el("div", "market-value", "–")
    const change = el("div", "market-change", "")
    root.append(head, value, change)
    byId("markets").append(root)
    cards.set(m.code, { root, status, value, change })
  }

  return () => {
    for (const [code, card] of cards) {
      const status = state.marketStatus.get(code)
      card.status.textContent = status === undefined ? "–" : (STATUS_LABEL[status] ?? status)
      card.status.dataset.status = status ?? ""
      const q = state.indexQuotes.get(code)
      if (q === undefined) continue
      const shown = card.value.dataset.value
      card.value.textContent = indexFmt.format(q.price)
      card.value.dataset.value = String(q.price)
      if (shown !== undefined && Number(shown) !== q.price)
        flash(card.value, q.price > Number(shown) ? "up" : "down")
      card.root.dataset.dir = direction(q.change)
      card.change.textContent = `${signedChange(q.change, indexFmt)}  ${pct(q.change_percent)}`
    }
  }
}
