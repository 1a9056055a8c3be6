/**
 * The trading-state badge beside the order book's title: VI (static or dynamic) or halt, with the
 * reason as its tooltip and a countdown to the auction's expected end, ticking once a second while
 * shown.
 */
import { byId } from "../dom.js"
import type { State } from "../state.js"
import { badgeOf } from "../tradingState.js"

export const makeTradingState = (state: State): (() => void) => {
  const badge = byId("book-state")
  let timer: ReturnType<typeof setInterval> | undefined
  const render = () => {
    const b = badgeOf(state.statuses.get(state.selected), Date.now())
    if (b === undefined) {
      badge.hidden = true
      badge.removeAttribute("data-kind")
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      return
    }
    badge.hidden = false
    badge.dataset.kind = b.kind
    badge.title = b.title
    badge.textContent = b.countdown === "" ? b.label : `${b.label} ${b.countdown}`
    if (timer === undefined && b.countdown !== "") timer = setInterval(render, 1000)
  }
  return render
}
