/**
 * The dashboard's entry, bundled by `src/http/dashboard.ts` into `/assets/dashboard.js`. The page
 * is an ordinary client of the public WebSocket API through the SDK (`connection.ts`): messages
 * update plain state (`state.ts`), the panels (`panels/`) draw it once per animation frame
 * (`render.ts`).
 *
 * Colours follow the Korean convention: up (상승) is red, down (하락) is blue.
 */
import { watchlistFrom } from "./catalog.js"
import { type Connection, makeConnection } from "./connection.js"
import { type DashboardHook, HOOK_NAME } from "./hook.js"
import { type ChartPanel, makeChart } from "./panels/chart.js"
import { makeFooter } from "./panels/footer.js"
import { makeOpsPanel } from "./panels/ops.js"
import { makeRenderer } from "./render.js"
import { readSession } from "./session.js"
import { makeState } from "./state.js"

const params = new URLSearchParams(location.search)
const state = makeState(watchlistFrom(params.get("watch")))

/** `/v1/ws` next to the page, so the page also works behind a proxy that serves it under a prefix. */
const wsUrl = (() => {
  const url = new URL("v1/ws", location.href)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  url.search = ""
  url.hash = ""
  return url.toString()
})()

// A click selects through the connection (an off-watchlist stock needs a subscription), and
// the chart follows the selection.
const renderer = makeRenderer(state, (code) => {
  connection.select(code)
  chart.show(state.selected)
})
const chart: ChartPanel = makeChart(
  state.selected,
  (from, to) => connection.retargetCandles(from, to),
  (code, interval) => new URL(`v1/candles/${code}?interval=${interval}&limit=200`, location.href).toString(),
)
const connection: Connection = makeConnection({
  url: wsUrl,
  token: params.get("token") ?? undefined,
  state,
  schedule: renderer.schedule,
  candles: () => chart,
})

const updateFooter = makeFooter(state)
setInterval(() => updateFooter(connection.lastSequence()), 1000)
// Next to the page too, like the socket; it never rejects (a failure shows on the panel).
const updateOps = makeOpsPanel(new URL("v1/metrics/summary", location.href).toString())
void updateOps()
setInterval(() => void updateOps(), 2000)
setInterval(connection.measureRtt, 5000)

const hook: DashboardHook = {
  dropConnection: connection.dropSocket,
  state: () => ({
    view: state.view,
    sessionId: connection.sessionId(),
    lastSequence: connection.lastSequence(),
    reconnects: state.stats.reconnects,
    booksVerified: state.stats.booksVerified,
    checksumMismatches: state.stats.checksumMismatches,
  }),
}
Object.assign(window, { [HOOK_NAME]: hook })

renderer.renderNow()
connection.start(readSession())
