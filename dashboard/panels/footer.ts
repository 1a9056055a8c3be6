/** The stats line: message rate, sequence, round trip, books verified, gaps and the last error. */
import { byId } from "../dom.js"
import { intFmt } from "../format.js"
import type { State } from "../state.js"

/** Returns the once-a-second update; the rate is the messages counted since the previous call. */
export const makeFooter = (state: State): ((lastSequence: number) => void) => {
  let countedAt = state.stats.messages
  const put = (id: string, text: string) => {
    byId(id).textContent = text
  }
  return (lastSequence) => {
    const { stats } = state
    const lastSecond = stats.messages - countedAt
    countedAt = stats.messages
    put("stat-rate", `${intFmt.format(lastSecond)} msg/s`)
    put("stat-seq", `seq ${intFmt.format(lastSequence)}`)
    put("stat-rtt", stats.rttMillis === undefined ? "rtt –" : `rtt ${stats.rttMillis.toFixed(0)} ms`)
    put("stat-books", `${intFmt.format(stats.booksVerified)} books verified, ${stats.checksumMismatches} bad`)
    put("stat-gaps", `${stats.gaps} gaps · ${stats.reconnects} reconnects`)
    put("stat-error", stats.lastError)
  }
}
