/**
 * The dashboard's browser code, bundled by `src/http/dashboard.ts` into `/assets/dashboard.js`.
 * It is an ordinary client of the public WebSocket API through the SDK's `QuotecastClient`:
 * subscribe to both markets, a watchlist and every sector, then render what arrives.
 *
 * Messages only update plain state; the DOM is redrawn at most once per animation frame, so a
 * burst of updates costs one render, not one per message.
 *
 * Colours follow the Korean convention: up (상승) is red, down (하락) is blue.
 */
import { QuotecastClient, type ServerMessageOf } from "../../client/index.js"
import {
  LISTINGS,
  type Listing,
  MARKETS,
  SECTOR_KO,
  SECTORS,
  STATUS_LABEL,
  watchlistFrom,
} from "./catalog.js"
import { bookChecksum, hex32 } from "./crc32.js"

type PriceUpdate = ServerMessageOf<"price_update">
type OrderbookUpdate = ServerMessageOf<"orderbook_update">
type SectorUpdate = ServerMessageOf<"sector_update">
type MarketStatus = ServerMessageOf<"market_status">

/** What the connection indicator shows; also its `data-state`, which the browser test waits on. */
export type ConnectionView = "connecting" | "live" | "restored" | "new-session" | "reconnecting" | "closed"

/** `window.quotecastDashboard`: a small hook for the browser test and for poking at it by hand. */
export interface DashboardHook {
  /** Closes the current socket as a network drop would; the SDK then reconnects and restores. */
  readonly dropConnection: () => boolean
  readonly state: () => {
    readonly view: ConnectionView
    readonly sessionId: string | undefined
    readonly lastSequence: number
    readonly reconnects: number
    readonly booksVerified: number
    readonly checksumMismatches: number
  }
}

// ---------------------------------------------------------------- setup

const params = new URLSearchParams(location.search)
const watchlist = watchlistFrom(params.get("watch"))
const token = params.get("token") ?? undefined
const SESSION_KEY = "quotecast.dashboard.session"

/** `/v1/ws` next to the page, so the page also works behind a proxy that serves it under a prefix. */
const wsUrl = (() => {
  const url = new URL("v1/ws", location.href)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  url.search = ""
  url.hash = ""
  return url.toString()
})()

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`dashboard markup has no #${id}`)
  return found as T
}

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag)
  if (className !== undefined) e.className = className
  if (text !== undefined) e.textContent = text
  return e
}

// ---------------------------------------------------------------- formatting

const intFmt = new Intl.NumberFormat("ko-KR")
const indexFmt = new Intl.NumberFormat("ko-KR", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const compactFmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 })

type Direction = "up" | "down" | "flat"
const direction = (n: number): Direction => (n > 0 ? "up" : n < 0 ? "down" : "flat")
const arrow = (d: Direction) => (d === "up" ? "▲" : d === "down" ? "▼" : "–")
const pct = (n: number) => `${n > 0 ? "+" : ""}${n.toFixed(2)}%`
const signedChange = (n: number, format: Intl.NumberFormat) =>
  `${arrow(direction(n))} ${format.format(Math.abs(n))}`

const flashColours = (() => {
  const css = getComputedStyle(document.documentElement)
  return {
    up: css.getPropertyValue("--flash-up").trim() || "rgba(239, 68, 68, 0.55)",
    down: css.getPropertyValue("--flash-down").trim() || "rgba(59, 130, 246, 0.55)",
  }
})()

/** A background pulse; the Web Animations API restarts cleanly however often a price moves. */
const flash = (target: HTMLElement, d: "up" | "down") => {
  target.animate([{ backgroundColor: flashColours[d] }, { backgroundColor: "transparent" }], {
    duration: 800,
    easing: "ease-out",
  })
}

// ---------------------------------------------------------------- state

const quotes = new Map<string, PriceUpdate>()
interface CheckedBook {
  readonly book: OrderbookUpdate
  readonly computed: number
  readonly ok: boolean
}
const books = new Map<string, CheckedBook>()
const sectorState = new Map<string, SectorUpdate>()
const marketStatus = new Map<string, MarketStatus["status"]>()
const indexQuotes = new Map<string, PriceUpdate>()

let selected: string = watchlist[0] ?? "005930"
/** A stock shown in the order book without being on the watchlist (picked from a sector tile). */
let extra: string | undefined

const stats = {
  messages: 0,
  messagesLastSecond: 0,
  gaps: 0,
  reconnects: 0,
  booksVerified: 0,
  checksumMismatches: 0,
  rttMillis: undefined as number | undefined,
  lastError: "",
}

const dirty = {
  quotes: new Set<string>(),
  book: true,
  sectors: new Set<string>(),
  markets: true,
}

let frameRequested = false
const schedule = () => {
  if (frameRequested) return
  frameRequested = true
  requestAnimationFrame(() => {
    frameRequested = false
    render()
  })
}

// ---------------------------------------------------------------- markets

interface MarketCard {
  readonly root: HTMLElement
  readonly status: HTMLElement
  readonly value: HTMLElement
  readonly change: HTMLElement
}
const marketCards = new Map<string, MarketCard>()
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
  marketCards.set(m.code, { root, status, value, change })
}

const renderMarkets = () => {
  for (const [code, card] of marketCards) {
    const status = marketStatus.get(code)
    card.status.textContent = status === undefined ? "–" : (STATUS_LABEL[status] ?? status)
    card.status.dataset.status = status ?? ""
    const q = indexQuotes.get(code)
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

// ---------------------------------------------------------------- watchlist

interface Row {
  readonly tr: HTMLTableRowElement
  readonly price: HTMLElement
  readonly change: HTMLElement
  readonly percent: HTMLElement
  readonly volume: HTMLElement
  shown: number | undefined
  ticks: number
}
const rows = new Map<string, Row>()

const nameCell = (listing: Listing | undefined, code: string) => {
  const td = el("td", "name")
  td.append(el("span", "ko", listing?.nameKo ?? code))
  td.append(el("span", "en", listing?.name ?? ""))
  td.append(el("span", "code", `${code} · ${listing?.market ?? ""}`))
  return td
}

for (const code of watchlist) {
  const tr = el("tr")
  tr.dataset.code = code
  tr.tabIndex = 0
  tr.title = "Show the order book"
  const price = el("td", "num price", "–")
  const change = el("td", "num change")
  const percent = el("td", "num percent")
  const volume = el("td", "num volume")
  tr.append(nameCell(LISTINGS.get(code), code), price, change, percent, volume)
  tr.addEventListener("click", () => select(code))
  tr.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") select(code)
  })
  byId("watchlist").append(tr)
  rows.set(code, { tr, price, change, percent, volume, shown: undefined, ticks: 0 })
}

const renderRow = (code: string) => {
  const row = rows.get(code)
  const q = quotes.get(code)
  if (row === undefined || q === undefined) return
  const d = direction(q.change)
  row.tr.dataset.dir = d
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
  for (const [code, row] of rows) row.tr.classList.toggle("selected", code === selected)
}

// ---------------------------------------------------------------- order book

const DEPTH = 10
interface BookRow {
  readonly tr: HTMLTableRowElement
  readonly askQty: HTMLElement
  readonly price: HTMLElement
  readonly bidQty: HTMLElement
}
const bookBody = byId("book")
const makeBookRow = (side: "ask" | "bid"): BookRow => {
  const tr = el("tr", side)
  const askQty = el("td", "qty ask-qty")
  const price = el("td", "level-price")
  const bidQty = el("td", "qty bid-qty")
  tr.append(askQty, price, bidQty)
  bookBody.append(tr)
  return { tr, askQty, price, bidQty }
}
// Asks on top (highest first, so the best ask sits just above the best bid), then bids best first.
const askRows = Array.from({ length: DEPTH }, () => makeBookRow("ask")).reverse()
const bidRows = Array.from({ length: DEPTH }, () => makeBookRow("bid"))

const fillLevel = (
  row: BookRow,
  level: { readonly price: number; readonly quantity: number } | undefined,
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

const renderBook = () => {
  const listing = LISTINGS.get(selected)
  const q = quotes.get(selected)
  byId("book-name").textContent = listing === undefined ? selected : `${listing.nameKo} ${listing.name}`
  byId("book-code").textContent = selected
  const quote = byId("book-quote")
  if (q !== undefined) {
    quote.dataset.dir = direction(q.change)
    quote.textContent = `${intFmt.format(q.price)}  ${pct(q.change_percent)}`
  } else {
    quote.textContent = ""
  }
  const panel = byId("book-panel")
  panel.dataset.code = selected
  const checked = books.get(selected)
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

// ---------------------------------------------------------------- sector heat map

interface Tile {
  readonly root: HTMLElement
  readonly percent: HTMLElement
  readonly breadth: HTMLElement
  readonly volume: HTMLElement
  readonly movers: HTMLElement
}
const tiles = new Map<string, Tile>()
for (const sector of SECTORS) {
  const root = el("div", "tile")
  root.dataset.sector = sector
  const head = el("div", "tile-head")
  head.append(el("span", "tile-name", sector), el("span", "tile-ko", SECTOR_KO[sector]))
  const percent = el("div", "tile-pct", "–")
  const breadth = el("div", "tile-breadth")
  const volume = el("div", "tile-volume")
  const movers = el("ol", "tile-movers")
  root.append(head, percent, breadth, volume, movers)
  byId("heatmap").append(root)
  tiles.set(sector, { root, percent, breadth, volume, movers })
}

/** Full colour at ±2% (a big day for a whole sector), a faint tint for any move at all. */
const heat = (changePercent: number): string => {
  if (changePercent === 0) return "var(--tile)"
  const strength = Math.round(12 + 78 * Math.min(1, Math.abs(changePercent) / 2))
  const colour = changePercent > 0 ? "var(--up)" : "var(--down)"
  return `color-mix(in srgb, ${colour} ${strength}%, var(--tile))`
}

const renderSector = (sector: string) => {
  const tile = tiles.get(sector)
  const s = sectorState.get(sector)
  if (tile === undefined || s === undefined) return
  tile.root.style.background = heat(s.change_percent)
  tile.root.dataset.pct = String(s.change_percent)
  tile.percent.textContent = pct(s.change_percent)
  tile.breadth.textContent = `▲${s.advancers} ▼${s.decliners} –${s.unchanged}`
  tile.volume.textContent = `vol ${compactFmt.format(s.volume)}`
  tile.movers.replaceChildren(
    ...s.top_movers.slice(0, 3).map((m) => {
      const li = el("li")
      const listing = LISTINGS.get(m.code)
      const name = el("button", "mover", listing?.nameKo ?? m.code)
      name.type = "button"
      name.title = `${listing?.name ?? m.code} (${m.code}): show the order book`
      name.addEventListener("click", () => select(m.code))
      li.append(name, el("span", `mover-pct ${direction(m.change_percent)}`, pct(m.change_percent)))
      return li
    }),
  )
}

// ---------------------------------------------------------------- connection indicator

let view: ConnectionView = "connecting"
let everLive = false

const setConnection = (next: ConnectionView, detail: string) => {
  view = next
  const conn = byId("conn")
  conn.dataset.state = next
  const labels: Record<ConnectionView, string> = {
    connecting: "Connecting",
    live: "Live",
    restored: "Live · session restored",
    "new-session": "Live · new session",
    reconnecting: "Reconnecting",
    closed: "Disconnected",
  }
  byId("conn-label").textContent = labels[next]
  byId("conn-detail").textContent = detail
  document.body.classList.toggle(
    "stale",
    next === "connecting" || next === "reconnecting" || next === "closed",
  )
}

// ---------------------------------------------------------------- the client

/** The socket the SDK is using now, so the test hook can drop it like a network failure would. */
let socket: WebSocket | undefined
class TrackedWebSocket extends WebSocket {
  constructor(url: string) {
    super(url)
    socket = this
  }
}

let client: QuotecastClient | undefined

const readSession = (): string | undefined => {
  try {
    return sessionStorage.getItem(SESSION_KEY) ?? undefined
  } catch {
    return undefined // storage can be disabled; the page then just starts a new session
  }
}
const saveSession = (id: string | undefined) => {
  try {
    if (id === undefined) sessionStorage.removeItem(SESSION_KEY)
    else sessionStorage.setItem(SESSION_KEY, id)
  } catch {
    // as above
  }
}

/** Re-subscribing sends a fresh snapshot; asked for when a book fails its checksum. */
const lastResync = new Map<string, number>()
const resync = (code: string) => {
  const now = Date.now()
  if (now - (lastResync.get(code) ?? 0) < 2000) return
  lastResync.set(code, now)
  void client?.subscribe("stock", [code]).catch(() => undefined)
}

const select = (code: string) => {
  if (code === selected) return
  const c = client
  if (!watchlist.includes(code) && code !== extra) {
    // Keep at most one off-watchlist stock subscribed: the one whose book is shown.
    if (extra !== undefined) void c?.unsubscribe("stock", [extra]).catch(() => undefined)
    extra = code
    void c?.subscribe("stock", [code]).catch(() => undefined)
  } else if (watchlist.includes(code) && extra !== undefined) {
    void c?.unsubscribe("stock", [extra]).catch(() => undefined)
    quotes.delete(extra)
    books.delete(extra)
    extra = undefined
  }
  selected = code
  dirty.book = true
  renderSelection()
  schedule()
}

const describeError = (error: unknown): string =>
  error instanceof Error
    ? `${(error as { _tag?: string })._tag ?? error.name}: ${error.message}`
    : String(error)

const start = (sessionId: string | undefined) => {
  const c = new QuotecastClient({
    url: wsUrl,
    token,
    sessionId,
    WebSocket: TrackedWebSocket,
    // The page may load while the server restarts; keep trying instead of giving up.
    retryInitialConnect: true,
  })
  client = c
  let handshake: "fresh" | "restored" | "new-session" = "fresh"
  let missed = 0

  c.on("message", () => {
    stats.messages += 1
  })
  c.on("price_update", (m) => {
    if (m.code === "KOSPI" || m.code === "KOSDAQ") {
      indexQuotes.set(m.code, m)
      dirty.markets = true
    } else {
      quotes.set(m.code, m)
      dirty.quotes.add(m.code)
      if (m.code === selected) dirty.book = true
    }
    schedule()
  })
  c.on("orderbook_update", (m) => {
    const computed = bookChecksum(m.asks, m.bids)
    const ok = computed === m.checksum
    if (ok) stats.booksVerified += 1
    else {
      stats.checksumMismatches += 1
      resync(m.code)
    }
    books.set(m.code, { book: m, computed, ok })
    if (m.code === selected) {
      dirty.book = true
      schedule()
    }
  })
  c.on("market_status", (m) => {
    marketStatus.set(m.market, m.status)
    dirty.markets = true
    schedule()
  })
  c.on("sector_update", (m) => {
    sectorState.set(m.sector, m)
    dirty.sectors.add(m.sector)
    schedule()
  })
  c.on("error", (m) => {
    stats.lastError = `${m.code}: ${m.message}`
  })
  c.on("gap", (g) => {
    stats.gaps += Math.max(1, g.received - g.expected)
  })

  c.on("connected", () => {
    handshake = "fresh"
  })
  c.on("reconnected", (m) => {
    handshake = "restored"
    missed = m.missed_messages_count
  })
  c.on("restore_failed", () => {
    handshake = "new-session"
  })
  c.on("ready", ({ sessionId }) => {
    saveSession(sessionId)
    const short = sessionId.slice(0, 8)
    if (handshake === "restored")
      setConnection("restored", `session ${short} · ${missed} missed messages replayed`)
    else if (handshake === "new-session")
      setConnection("new-session", `session ${short} · restore failed, resubscribed`)
    else setConnection("live", `session ${short}`)
    everLive = true
    measureRtt()
  })
  c.on("disconnect", ({ code, willReconnect }) => {
    if (willReconnect) {
      stats.reconnects += 1
      setConnection("reconnecting", `socket closed (${code})`)
    }
  })
  c.on("reconnecting", ({ attempt, delayMillis }) => {
    setConnection(
      everLive ? "reconnecting" : "connecting",
      `attempt ${attempt}, retrying in ${(delayMillis / 1000).toFixed(1)} s`,
    )
  })
  c.on("close", ({ error }) => {
    if (c !== client) return
    if (error === undefined) return setConnection("closed", "closed")
    if (error._tag === "SessionTakenOver") {
      // Another tab restored this session (a duplicated tab copies sessionStorage): start our own.
      saveSession(undefined)
      setConnection("reconnecting", "session taken over by another tab; starting a new one")
      setTimeout(() => start(undefined), 500)
      return
    }
    setConnection("closed", describeError(error))
  })

  // Subscriptions made before connect() are the client's initial set, sent after the handshake
  // (and re-sent by the SDK only if a restore fails).
  void c.subscribe(
    "market",
    MARKETS.map((m) => m.code),
  )
  void c.subscribe("stock", extra === undefined ? watchlist : [...watchlist, extra])
  void c.subscribe("sector", SECTORS)
  setConnection("connecting", sessionId === undefined ? "" : `restoring session ${sessionId.slice(0, 8)}`)
  c.connect().catch((error: unknown) => {
    if (c === client) setConnection("closed", describeError(error))
  })
}

// ---------------------------------------------------------------- render loop and stats

const render = () => {
  for (const code of dirty.quotes) renderRow(code)
  dirty.quotes.clear()
  for (const sector of dirty.sectors) renderSector(sector)
  dirty.sectors.clear()
  if (dirty.markets) renderMarkets()
  dirty.markets = false
  if (dirty.book) renderBook()
  dirty.book = false
}

let countedAt = stats.messages
setInterval(() => {
  stats.messagesLastSecond = stats.messages - countedAt
  countedAt = stats.messages
  const s = client?.state
  const put = (id: string, text: string) => {
    byId(id).textContent = text
  }
  put("stat-rate", `${intFmt.format(stats.messagesLastSecond)} msg/s`)
  put("stat-seq", `seq ${intFmt.format(s?.lastSequence ?? 0)}`)
  put("stat-rtt", stats.rttMillis === undefined ? "rtt –" : `rtt ${stats.rttMillis.toFixed(0)} ms`)
  put("stat-books", `${intFmt.format(stats.booksVerified)} books verified, ${stats.checksumMismatches} bad`)
  put("stat-gaps", `${stats.gaps} gaps · ${stats.reconnects} reconnects`)
  put("stat-error", stats.lastError)
}, 1000)

const measureRtt = () => {
  const c = client
  if (c === undefined || c.state.status !== "ready") return
  c.ping().then(
    (ms) => {
      stats.rttMillis = ms
    },
    () => undefined, // a ping lost to a reconnect is not worth reporting
  )
}
setInterval(measureRtt, 5000)

const hook: DashboardHook = {
  dropConnection: () => {
    if (socket === undefined || socket.readyState !== WebSocket.OPEN) return false
    socket.close(3000, "dropped by the dashboard test hook")
    return true
  },
  state: () => ({
    view,
    sessionId: client?.state.sessionId,
    lastSequence: client?.state.lastSequence ?? 0,
    reconnects: stats.reconnects,
    booksVerified: stats.booksVerified,
    checksumMismatches: stats.checksumMismatches,
  }),
}
Object.assign(window, { quotecastDashboard: hook })

renderSelection()
renderBook()
start(readSession())
