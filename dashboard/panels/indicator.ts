/** The connection indicator in the header; while not live, the page's numbers are dimmed. */
import { byId } from "../dom.js"
import type { ConnectionView } from "../hook.js"
import type { State } from "../state.js"

const LABELS: Readonly<Record<ConnectionView, string>> = {
  connecting: "Connecting",
  live: "Live",
  restored: "Live · session restored",
  "new-session": "Live · new session",
  reconnecting: "Reconnecting",
  closed: "Disconnected",
}

export const showConnection = (state: State, next: ConnectionView, detail: string): void => {
  state.view = next
  const conn = byId("conn")
  conn.dataset.state = next
  byId("conn-label").textContent = LABELS[next]
  byId("conn-detail").textContent = detail
  document.body.classList.toggle(
    "stale",
    next === "connecting" || next === "reconnecting" || next === "closed",
  )
}
