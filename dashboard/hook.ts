/**
 * `window.quotecastDashboard`: a small hook for the browser test and for poking at the page by hand.
 * No DOM in here: the Chromium test, which is server-side code compiled without the DOM lib, imports
 * the name and decodes what `state()` returns with the Schema below.
 */
import { Schema } from "effect"

export const HOOK_NAME = "quotecastDashboard"

/** What the connection indicator shows; also its `data-state`, which the browser test waits on. */
export const ConnectionView = Schema.Literal(
  "connecting",
  "live",
  "restored",
  "new-session",
  "reconnecting",
  "closed",
)
export type ConnectionView = typeof ConnectionView.Type

export const DashboardSnapshot = Schema.Struct({
  view: ConnectionView,
  sessionId: Schema.optional(Schema.String),
  lastSequence: Schema.Number,
  reconnects: Schema.Number,
  booksVerified: Schema.Number,
  checksumMismatches: Schema.Number,
})
export type DashboardSnapshot = typeof DashboardSnapshot.Type

export interface DashboardHook {
  /** Closes the current socket as a network drop would; the SDK then reconnects and restores. */
  readonly dropConnection: () => boolean
  readonly state: () => DashboardSnapshot
}
