/**
 * The order book (호가) of the selected stock: 10 asks above 10 bids with depth bars, spread and
 * totals, and whether the page's own CRC-32 agreed with the server's checksum.
 */
import { LISTINGS } from "../catalog.js"
import { hex32 } from "../crc32.js"
import { byId, el } from "../dom.js"
import { direction, intFmt, pct } from "../format.js"
import type { State } from "../state.js"

const DEPTH = 10

interface BookRow {
  readonly tr: HTMLTableRowElement
  readonly askQty: HTMLElement
  readonly price: HTMLElement
  readonly bidQty: HTMLElement
}

interface Level {
  readonly price: number
  readonly quantity: number
}

const fillLevel = (
  row: BookRow,
  level: Level | undefined,
  side: "ask" | "bid",
  maxQty: number,
  prevClose: number | undefined,
  last: number | undefined,
) => {
  const qtyCell = side === "ask" ? row.askQty : row.bidQty
  const other = side === "ask" ? row.bidQty : row.askQty
  other.textContent = ""
  other.style.removeProperty("--w")
  if (level === undefined) {
    qtyCell.textContent = ""
    qtyCell.style.removeProperty("--w")
    row.price.textContent = ""
    row.tr.classList.remove("last")
    row.price.removeAttribute("data-dir")
    return
  }
  qtyCell.textContent = intFmt.format(level.quantity)
  qtyCell.style.setProperty("--w", `${Math.round((100 * level.quantity) / maxQty)}%`)
  row.price.textContent = intFmt.format(level.price)
  row.price.dataset.dir = prevClose === undefined ? "flat" : direction(level.price - prevClose)
  row.tr.classList.toggle("last", level.price === last)
}

/** Builds the ladder's rows into `#book`; returns its render. */
export const makeBook = (state: State): (() => void) => {
  const body = byId("book")
  const makeRow = (side: "ask" | "bid"): BookRow => {
    const tr = el("tr", side)
    const askQty = el("td", "qty ask-qty")
    const price = el("td", "level-price")
    const bidQty = el("td", "qty bid-qty")
    tr.append(askQty, price, bidQty)
    body.append(tr)
    return { tr, askQty, price, bidQty }
  }
  // Asks on top (highest first, so the best ask sits just above the best bid), then bids best first.
  const askRows = Array.from({ length: DEPTH }, () => makeRow("ask")).reverse()
  const bidRows = Array.from({ length: DEPTH }, () => makeRow("bid"))

  return () => {
    const { selected, stats } = state
    const listing = LISTINGS.get(selected)
    const q = state.quotes.get(selected)
    byId("book-name").textContent = listing === undefined ? selected : `${listing.nameKo} ${listing.name}`
    byId("book-code").textContent = selected
    const quote = byId("book-quote")
    if (q !== undefined) {
      quote.dataset.dir = direction(q.change)
      quote.textContent = `${intFmt.format(q.price)}  ${pct(q.change_percent)}`
    } else {
      quote.textContent = ""
    }
    byId("book-panel").dataset.code = selected
    const checked = state.books.get(selected)
    const check = byId("book-check")
    const prevClose = q === undefined ? undefined : q.price - q.change
    const last = q?.price
    if (checked === undefined) {
      for (const r of [...askRows, ...bidRows]) fillLevel(r, undefined, "ask", 1, prevClose, last)
      check.dataset.state = "waiting"
      check.textContent = "waiting for the book…"
      byId("book-summary").textContent = ""
      return
    }
    const { book, computed, ok } = checked
    const maxQty = Math.max(1, ...book.asks.map((l) => l.quantity), ...book.bids.map((l) => l.quantity))
    askRows.forEach((r, i) => {
      fillLevel(r, book.asks[i], "ask", maxQty, prevClose, last)
    })
    bidRows.forEach((r, i) => {
      fillLevel(r, book.bids[i], "bid", maxQty, prevClose, last)
    })
    const bestAsk = book.asks[0]?.price
    const bestBid = book.bids[0]?.price
    const totalAsk = book.asks.reduce((s, l) => s + l.quantity, 0)
    const totalBid = book.bids.reduce((s, l) => s + l.quantity, 0)
    byId("book-summary").textContent =
      `spread ${bestAsk !== undefined && bestBid !== undefined ? intFmt.format(bestAsk - bestBid) : "–"}` +
      ` · asks 매도 ${intFmt.format(totalAsk)} · bids 매수 ${intFmt.format(totalBid)}`
    check.dataset.state = ok ? "ok" : "mismatch"
    check.textContent = ok
      ? `✓ CRC-32 ${hex32(computed)} verified`
      : `✗ checksum mismatch: server ${hex32(book.checksum)}, computed ${hex32(computed)}`
    check.title = `${intFmt.format(stats.booksVerified)} books verified, ${stats.checksumMismatches} mismatches`
  }
}
