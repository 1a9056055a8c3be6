/** The watchlist table: one row per stock, a flash when its price moves; a click selects its book. */
import { LISTINGS, type Listing } from "../catalog.js"
import { byId, el, flash } from "../dom.js"
import { direction, intFmt, pct, signedChange } from "../format.js"
import type { State } from "../state.js"

interface Row {
  readonly tr: HTMLTableRowElement
  readonly price: HTMLElement
  readonly change: HTMLElement
  readonly percent: HTMLElement
  readonly volume: HTMLElement
  shown: number | undefined
  ticks: number
}

export interface WatchlistPanel {
  readonly renderRow: (code: string) => void
  readonly renderSelection: () => void
}

const nameCell = (listing: Listing | undefined, code: string) => {
  const td = el("td", "name")
  td.append(el("span", "ko", listing?.nameKo ?? code))
  td.append(el("span", "en", listing?.name ?? ""))
  td.append(el("span", "code", `${code} · ${listing?.market ?? ""}`))
  return td
}

/** Builds a row per watchlist stock into `#watchlist`. */
export const makeWatchlist = (state: State, onSelect: (code: string) => void): WatchlistPanel => {
  const rows = new Map<string, Row>()
  for (const code of state.watchlist) {
    const tr = el("tr")
    tr.dataset.code = code
    tr.tabIndex = 0
    tr.title = "Show the order book"
    const price = el("td", "num price", "–")
    const change = el("td", "num change")
    const percent = el("td", "num percent")
    const volume = el("td", "num volume")
    tr.append(nameCell(LISTINGS.get(code), code), price, change, percent, volume)
    tr.addEventListener("click", () => onSelect(code))
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") onSelect(code)
    })
    byId("watchlist").append(tr)
    rows.set(code, { tr, price, change, percent, volume, shown: undefined, ticks: 0 })
  }

  const renderRow = (code: string) => {
    const row = rows.get(code)
    const q = state.quotes.get(code)
    if (row === undefined || q === undefined) return
    row.tr.dataset.dir = direction(q.change)
    row.price.textContent = intFmt.format(q.price)
    row.price.dataset.price = String(q.price)
    row.change.textContent = signedChange(q.change, intFmt)
    row.percent.textContent = pct(q.change_percent)
    row.volume.textContent = intFmt.format(q.volume)
    if (row.shown !== undefined && row.shown !== q.price) {
      flash(row.price, q.price > row.shown ? "up" : "down")
      row.ticks += 1
      row.tr.dataset.ticks = String(row.ticks)
    }
    row.shown = q.price
  }

  const renderSelection = () => {
    for (const [code, row] of rows) row.tr.classList.toggle("selected", code === state.selected)
  }

  return { renderRow, renderSelection }
}
