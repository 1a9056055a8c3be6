/**
 * The page's connection: the SDK's `QuotecastClient`, subscribed to both markets, the watchlist
 * and every sector. What arrives goes into the state; the handshake's progress goes to the
 * connection indicator. The SDK reconnects with backoff and restores the session.
 */
import { QuotecastClient } from "../src/client/index.js"
import type { CandleSnapshot, CandleUpdate } from "../src/protocol/server.js"
import { MARKETS, SECTORS } from "./catalog.js"
import type { ConnectionView } from "./hook.js"
import { showConnection } from "./panels/indicator.js"
import { saveSession } from "./session.js"
import {
  applyBook,
  applyInstrumentStatus,
  applyMarketStatus,
  applyPrice,
  applySector,
  type State,
  select,
  stockTargets,
} from "./state.js"

export interface Connection {
  readonly start: (sessionId: string | undefined) => void
  /** Shows `code`'s order book, subscribing to it when it is not on the watchlist. */
  readonly select: (code: string) => void
  readonly measureRtt: () => void
  /** Closes the current socket as a network drop would (the test hook); false when none is open. */
  readonly dropSocket: () => boolean
  readonly sessionId: () => string | undefined
  readonly lastSequence: () => number
  /** Moves the chart's `candle` subscription from one series to another. */
  readonly retargetCandles: (from: string, to: string) => void
}

/** What the connection feeds the chart with (`panels/chart.ts`). */
export interface CandleSink {
  readonly target: () => string
  readonly onSnapshot: (m: CandleSnapshot) => void
  readonly onUpdate: (m: CandleUpdate) => void
}

export interface ConnectionOptions {
  readonly url: string
  readonly token: string | undefined
  readonly state: State
  /** Asks for a render of what the state marks as changed. */
  readonly schedule: () => void
  readonly candles: () => CandleSink
}

const describeError = (error: unknown): string =>
  error instanceof Error
    ? `${"_tag" in error && typeof error._tag === "string" ? error._tag : error.name}: ${error.message}`
    : String(error)

/** A re-subscribe to a stock whose book failed its checksum, at most once per 2 s per stock. */
const RESYNC_MILLIS = 2000

export const makeConnection = ({ url, token, state, schedule, candles }: ConnectionOptions): Connection => {
  /** The socket the SDK is using now, so the test hook can drop it like a network failure would. */
  let socket: WebSocket | undefined
  class TrackedWebSocket extends WebSocket {
    constructor(url: string) {
      super(url)
      socket = this
    }
  }

  let client: QuotecastClient | undefined
  let everLive = false
  const show = (view: ConnectionView, detail: string) => showConnection(state, view, detail)
  // Failures of these requests are not worth reporting: a reconnect re-sends the subscriptions.
  const ignore = () => undefined

  /** Re-subscribing sends a fresh snapshot; asked for when a book fails its checksum. */
  const lastResync = new Map<string, number>()
  const resync = (code: string) => {
    const now = Date.now()
    if (now - (lastResync.get(code) ?? 0) < RESYNC_MILLIS) return
    lastResync.set(code, now)
    void client?.subscribe("stock", [code]).catch(ignore)
  }

  const measureRtt = () => {
    const c = client
    if (c === undefined || c.state.status !== "ready") return
    c.ping().then((ms) => {
      state.stats.rttMillis = ms
    }, ignore) // a ping lost to a reconnect is not worth reporting
  }

  const start = (sessionId: string | undefined) => {
    const c = new QuotecastClient({
      url,
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
      state.stats.messages += 1
    })
    c.on("price_update", (m) => {
      applyPrice(state, m)
      schedule()
    })
    c.on("orderbook_update", (m) => {
      if (!applyBook(state, m).ok) resync(m.code)
      if (m.code === state.selected) schedule()
    })
    c.on("instrument_status", (m) => {
      applyInstrumentStatus(state, m)
      schedule()
    })
    c.on("market_status", (m) => {
      applyMarketStatus(state, m.market, m.status)
      schedule()
    })
    c.on("sector_update", (m) => {
      applySector(state, m)
      schedule()
    })
    c.on("candle_snapshot", (m) => candles().onSnapshot(m))
    c.on("candle_update", (m) => candles().onUpdate(m))
    c.on("error", (m) => {
      state.stats.lastError = `${m.code}: ${m.message}`
    })
    c.on("gap", (g) => {
      state.stats.gaps += Math.max(1, g.received - g.expected)
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
      if (handshake === "restored") show("restored", `session ${short} · ${missed} missed messages replayed`)
      else if (handshake === "new-session")
        show("new-session", `session ${short} · restore failed, resubscribed`)
      else show("live", `session ${short}`)
      everLive = true
      measureRtt()
    })
    c.on("disconnect", ({ code, willReconnect }) => {
      if (willReconnect) {
        state.stats.reconnects += 1
        show("reconnecting", `socket closed (${code})`)
      }
    })
    c.on("reconnecting", ({ attempt, delayMillis }) => {
      show(
        everLive ? "reconnecting" : "connecting",
        `attempt ${attempt}, retrying in ${(delayMillis / 1000).toFixed(1)} s`,
      )
    })
    c.on("close", ({ error }) => {
      if (c !== client) return
      if (error === undefined) return show("closed", "closed")
      if (error._tag === "SessionTakenOver") {
        // Another tab restored this session (a duplicated tab copies sessionStorage): start our own.
        saveSession(undefined)
        show("reconnecting", "session taken over by another tab; starting a new one")
        setTimeout(() => start(undefined), 500)
        return
      }
      show("closed", describeError(error))
    })

    // Subscriptions made before connect() are the client's initial set, sent after the handshake
    // (and re-sent by the SDK only if a restore fails).
    void c.subscribe(
      "market",
      MARKETS.map((m) => m.code),
    )
    void c.subscribe("stock", stockTargets(state))
    void c.subscribe("sector", SECTORS)
    void c.subscribe("candle", [candles().target()])
    show("connecting", sessionId === undefined ? "" : `restoring session ${sessionId.slice(0, 8)}`)
    c.connect().catch((error: unknown) => {
      if (c === client) show("closed", describeError(error))
    })
  }

  return {
    start,
    select: (code) => {
      const change = select(state, code)
      if (change === undefined) return
      if (change.unsubscribe !== undefined)
        void client?.unsubscribe("stock", [change.unsubscribe]).catch(ignore)
      if (change.subscribe !== undefined) void client?.subscribe("stock", [change.subscribe]).catch(ignore)
      schedule()
    },
    measureRtt,
    dropSocket: () => {
      if (socket === undefined || socket.readyState !== WebSocket.OPEN) return false
      socket.close(3000, "dropped by the dashboard test hook")
      return true
    },
    retargetCandles: (from, to) => {
      if (from === to) return
      void client?.unsubscribe("candle", [from]).catch(ignore)
      void client?.subscribe("candle", [to]).catch(ignore)
    },
    sessionId: () => client?.state.sessionId,
    lastSequence: () => client?.state.lastSequence ?? 0,
  }
}
