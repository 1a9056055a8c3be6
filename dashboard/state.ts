/**
 * What the page knows: the latest message of each kind per code, the selection, the counters, and
 * what changed since the last render. Messages only update this; the panels draw from it once per
 * animation frame. No DOM here, so the rules are tested in Node (`test/dashboard/state.test.ts`).
 */
import type {
  InstrumentStatus,
  MarketStatusValue,
  OrderbookUpdate,
  PriceUpdate,
  SectorUpdate,
} from "../src/protocol/server.js"
import { bookChecksum } from "./crc32.js"
import type { ConnectionView } from "./hook.js"

/** A book with the checksum the page computed for it. */
export interface CheckedBook {
  readonly book: OrderbookUpdate
  readonly computed: number
  readonly ok: boolean
}

export interface Stats {
  messages: number
  gaps: number
  reconnects: number
  booksVerified: number
  checksumMismatches: number
  rttMillis: number | undefined
  lastError: string
}

/** What to redraw at the next frame; the render loop clears it. */
export interface Dirty {
  readonly quotes: Set<string>
  readonly sectors: Set<string>
  book: boolean
  markets: boolean
  selection: boolean
}

export interface State {
  readonly watchlist: ReadonlyArray<string>
  readonly quotes: Map<string, PriceUpdate>
  readonly indexQuotes: Map<string, PriceUpdate>
  readonly books: Map<string, CheckedBook>
  readonly sectors: Map<string, SectorUpdate>
  readonly marketStatus: Map<string, MarketStatusValue>
  /** Each subscribed stock's last `instrument_status` (the badge shows the selected one's). */
  readonly statuses: Map<string, InstrumentStatus>
  /** The stock whose order book is shown. */
  selected: string
  /** A stock shown in the order book without being on the watchlist (picked from a sector tile). */
  extra: string | undefined
  view: ConnectionView
  readonly stats: Stats
  readonly dirty: Dirty
}

export const makeState = (watchlist: ReadonlyArray<string>): State => ({
  watchlist,
  quotes: new Map(),
  indexQuotes: new Map(),
  books: new Map(),
  sectors: new Map(),
  marketStatus: new Map(),
  statuses: new Map(),
  selected: watchlist[0] ?? "005930",
  extra: undefined,
  view: "connecting",
  stats: {
    messages: 0,
    gaps: 0,
    reconnects: 0,
    booksVerified: 0,
    checksumMismatches: 0,
    rttMillis: undefined,
    lastError: "",
  },
  dirty: { quotes: new Set(), sectors: new Set(), book: true, markets: true, selection: true },
})

/** The stocks to subscribe to: the watchlist and the one shown from off it, if any. */
export const stockTargets = (s: State): ReadonlyArray<string> =>
  s.extra === undefined ? s.watchlist : [...s.watchlist, s.extra]

/** An index's price goes to the market cards; a stock's to the watchlist (and the book's header). */
export const applyPrice = (s: State, m: PriceUpdate): void => {
  if (m.code === "KOSPI" || m.code === "KOSDAQ") {
    s.indexQuotes.set(m.code, m)
    s.dirty.markets = true
    return
  }
  s.quotes.set(m.code, m)
  s.dirty.quotes.add(m.code)
  if (m.code === s.selected) s.dirty.book = true
}

/** Checks the book's CRC-32 and keeps it; a book that fails is kept too, shown as a mismatch. */
export const applyBook = (s: State, m: OrderbookUpdate): CheckedBook => {
  const computed = bookChecksum(m.asks, m.bids)
  const checked = { book: m, computed, ok: computed === m.checksum }
  if (checked.ok) s.stats.booksVerified += 1
  else s.stats.checksumMismatches += 1
  s.books.set(m.code, checked)
  if (m.code === s.selected) s.dirty.book = true
  return checked
}

export const applyMarketStatus = (s: State, market: string, status: MarketStatusValue): void => {
  s.marketStatus.set(market, status)
  s.dirty.markets = true
}

export const applyInstrumentStatus = (s: State, m: InstrumentStatus): void => {
  s.statuses.set(m.code, m)
  if (m.code === s.selected) s.dirty.book = true
}

export const applySector = (s: State, m: SectorUpdate): void => {
  s.sectors.set(m.sector, m)
  s.dirty.sectors.add(m.sector)
}

/** The subscriptions a change of selection needs. */
export interface SelectionChange {
  readonly subscribe: string | undefined
  readonly unsubscribe: string | undefined
}

/**
 * Shows `code`'s order book. At most one off-watchlist stock stays subscribed: the one shown.
 * Returns the subscriptions to change, or undefined when `code` was already shown.
 */
export const select = (s: State, code: string): SelectionChange | undefined => {
  if (code === s.selected) return undefined
  let change: SelectionChange = { subscribe: undefined, unsubscribe: undefined }
  const onWatchlist = s.watchlist.includes(code)
  if (!onWatchlist && code !== s.extra) {
    change = { subscribe: code, unsubscribe: s.extra }
    s.extra = code
  } else if (onWatchlist && s.extra !== undefined) {
    change = { subscribe: undefined, unsubscribe: s.extra }
    s.quotes.delete(s.extra)
    s.books.delete(s.extra)
    s.statuses.delete(s.extra)
    s.extra = undefined
  }
  s.selected = code
  s.dirty.book = true
  s.dirty.selection = true
  return change
}
