/**
 * The selected stock's candlestick chart with volume (TradingView's lightweight-charts), and the
 * interval switcher. First paint from GET /v1/candles/{code}; then the `candle` subscription's
 * snapshot and its live `candle_update`s. Bars are kept by time, so the history, the snapshot and
 * an update of the same bar simply agree; one older than the last drawn redraws the series.
 *
 * The chart's axis is UTC: times are shifted by +9 h so it reads Seoul time (KRX hours).
 */
import { Either, Schema } from "effect"
import {
  CandlestickSeries,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts"
import { CANDLE_INTERVALS, type CandleInterval } from "../../src/protocol/client.js"
import { Candle, type CandleSnapshot, type CandleUpdate } from "../../src/protocol/server.js"
import { LISTINGS } from "../catalog.js"
import { byId, el } from "../dom.js"

const KST_SECONDS = 9 * 3600

/** What the chart reads of GET /v1/candles/{code} (the server's CandleHistoryBody), decoded, not trusted. */
const decodeHistory = Schema.decodeUnknownEither(
  Schema.Struct({ bars: Schema.Array(Candle), current: Schema.NullOr(Candle) }),
)

const css = (name: string, fallback: string) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback

export interface ChartPanel {
  /** The `candle` target shown now (`005930:1m`). */
  readonly target: () => string
  /** Shows another stock (the selection changed). */
  readonly show: (code: string) => void
  readonly onSnapshot: (m: CandleSnapshot) => void
  readonly onUpdate: (m: CandleUpdate) => void
}

/**
 * `retarget` is told when the shown series changes, to move the subscription; `historyUrl` is
 * where GET /v1/candles lives (next to the page).
 */
export const makeChart = (
  initialCode: string,
  retarget: (from: string, to: string) => void,
  historyUrl: (code: string, interval: CandleInterval) => string,
): ChartPanel => {
  const panel = byId("chart-panel")
  const up = css("--up", "#f04452")
  const down = css("--down", "#3485fa")
  const chart: IChartApi = createChart(byId("chart"), {
    autoSize: true,
    layout: { background: { color: css("--panel", "#161d28") }, textColor: css("--muted", "#8b97a8") },
    grid: { vertLines: { color: css("--line", "#263142") }, horzLines: { color: css("--line", "#263142") } },
    // A fixed bar width: a fresh series of a few bars stays readable instead of filling the panel.
    timeScale: {
      timeVisible: true,
      secondsVisible: false,
      borderColor: css("--line", "#263142"),
      barSpacing: 9,
      rightOffset: 4,
    },
    rightPriceScale: { borderColor: css("--line", "#263142") },
  })
  const candles: ISeriesApi<"Candlestick"> = chart.addSeries(CandlestickSeries, {
    upColor: up,
    downColor: down,
    borderUpColor: up,
    borderDownColor: down,
    wickUpColor: up,
    wickDownColor: down,
    priceFormat: { type: "price", precision: 0, minMove: 1 },
  })
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } })
  const volume: ISeriesApi<"Histogram"> = chart.addSeries(HistogramSeries, {
    priceFormat: { type: "volume" },
    priceScaleId: "volume",
    lastValueVisible: false,
    priceLineVisible: false,
  })
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } })

  let code = initialCode
  let interval: CandleInterval = "1m"
  /** Bars of the shown series by chart time (seconds, shifted to Seoul). */
  let bars = new Map<number, Candle>()
  let lastTime = 0
  let updates = 0
  /** Answers for an older selection are dropped: the series they belong to is not shown any more. */
  let generation = 0

  const timeOf = (c: Candle) => Date.parse(c.time) / 1000 + KST_SECONDS
  const volumeBar = (c: Candle) => ({
    time: timeOf(c) as UTCTimestamp,
    value: c.volume,
    color: c.close >= c.open ? `${up}88` : `${down}88`,
  })
  const candleBar = (c: Candle) => ({
    time: timeOf(c) as UTCTimestamp,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
  })

  const mark = () => {
    panel.dataset.code = code
    panel.dataset.interval = interval
    panel.dataset.bars = String(bars.size)
    panel.dataset.updates = String(updates)
  }

  const redraw = () => {
    const sorted = [...bars.values()].sort((a, b) => timeOf(a) - timeOf(b))
    candles.setData(sorted.map(candleBar))
    volume.setData(sorted.map(volumeBar))
    lastTime = sorted.length === 0 ? 0 : timeOf(sorted[sorted.length - 1] as Candle)
    mark()
  }

  const merge = (list: ReadonlyArray<Candle>) => {
    for (const c of list) bars.set(timeOf(c), c)
    redraw()
  }

  const put = (c: Candle) => {
    const t = timeOf(c)
    bars.set(t, c)
    if (t >= lastTime) {
      candles.update(candleBar(c))
      volume.update(volumeBar(c))
      lastTime = t
      mark()
    } else redraw()
  }

  const title = () => {
    const listing = LISTINGS.get(code)
    byId("chart-name").textContent = listing === undefined ? "" : `${listing.name} ${listing.nameKo}`
    byId("chart-code").textContent = code
  }

  const load = () => {
    const mine = ++generation
    bars = new Map()
    lastTime = 0
    updates = 0
    redraw()
    title()
    fetch(historyUrl(code, interval))
      .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
      .then((json: unknown) => {
        if (mine !== generation) return
        const decoded = decodeHistory(json)
        if (Either.isLeft(decoded)) throw new Error(`candle history: ${decoded.left.message.slice(0, 200)}`)
        const body = decoded.right
        merge(body.current === null ? body.bars : [...body.bars, body.current])
        chart.timeScale().scrollToRealTime()
      })
      .catch((e: unknown) => {
        panel.dataset.error = e instanceof Error ? e.message : String(e)
      })
  }

  const target = () => `${code}:${interval}`
  const change = (nextCode: string, nextInterval: CandleInterval) => {
    const from = target()
    code = nextCode
    interval = nextInterval
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.interval === interval))
    retarget(from, target())
    load()
  }

  const buttons = CANDLE_INTERVALS.map((iv) => {
    const b = el("button", "interval", iv)
    b.type = "button"
    b.dataset.interval = iv
    b.setAttribute("aria-pressed", String(iv === interval))
    b.addEventListener("click", () => {
      if (iv !== interval) change(code, iv)
    })
    return b
  })
  byId("chart-intervals").append(...buttons)
  load()

  const mine = (m: { readonly code: string; readonly interval: CandleInterval }) =>
    m.code === code && m.interval === interval

  return {
    target,
    show: (next) => {
      if (next !== code) change(next, interval)
    },
    onSnapshot: (m) => {
      if (!mine(m)) return
      merge(m.current === null ? m.bars : [...m.bars, m.current])
    },
    onUpdate: (m) => {
      if (!mine(m)) return
      updates += 1
      put(m)
    },
  }
}
