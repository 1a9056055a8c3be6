/**
 * The harness <-> server control channel (Node IPC): the harness starts the feed once every
 * connection is open (ramping 10,000 handshakes under a running feed starves them), stops it
 * after the measurement window, asks for a full GC before reading memory so that every server is
 * measured on what it retains, not on garbage it has not collected yet, and reads the feed's
 * counters: a server too busy to run its feed on time skips trades (SimulatorEngine), and the
 * report says how many, per server.
 */
export type ControlCommand =
  | { readonly cmd: "start-feed" }
  | { readonly cmd: "stop-feed" }
  | { readonly cmd: "gc" }
  | { readonly cmd: "feed-stats" }

/** Trade ticks the server's feed produced and skipped so far, and when (the server's clock, ms). */
export interface FeedCounters {
  readonly produced: number
  readonly skipped: number
  readonly at: number
}

/**
 * The server's live memory right after a full GC: its JS heap in use, and the memory outside the
 * heap that V8 is told about (Buffers, zlib state).
 */
export interface LiveMemory {
  readonly heapUsedBytes: number
  readonly externalBytes: number
}

export interface ControlReply {
  readonly ok: ControlCommand["cmd"]
  readonly feed?: FeedCounters
  /** On "gc" replies. */
  readonly memory?: LiveMemory
}

const COMMANDS: ReadonlyArray<string> = ["start-feed", "stop-feed", "gc", "feed-stats"]
const isCommand = (u: unknown): u is ControlCommand =>
  typeof u === "object" && u !== null && "cmd" in u && COMMANDS.includes(String(u.cmd))

/** Server side: answers the harness's commands; `startFeed` runs at most once and returns its stop. */
export const serveControl = (
  startFeed: () => () => void,
  feed: () => { readonly produced: number; readonly skipped: number },
): void => {
  let stop: (() => void) | undefined
  process.on("message", (m: unknown) => {
    if (!isCommand(m)) return
    if (m.cmd === "start-feed" && stop === undefined) stop = startFeed()
    if (m.cmd === "stop-feed" && stop !== undefined) {
      stop()
      stop = () => {}
    }
    let memory: LiveMemory | undefined
    if (m.cmd === "gc") {
      const gc = (globalThis as { gc?: () => void }).gc
      gc?.()
      const usage = process.memoryUsage()
      memory = { heapUsedBytes: usage.heapUsed, externalBytes: usage.external }
    }
    const counters = feed()
    process.send?.({
      ok: m.cmd,
      feed: { produced: counters.produced, skipped: counters.skipped, at: Date.now() },
      ...(memory === undefined ? {} : { memory }),
    } satisfies ControlReply)
  })
  // The harness going away must not leave a server behind.
  process.on("disconnect", () => process.exit(0))
}

/** The line the harness waits for (the same shape quotecast logs). */
export const announce = (name: string, port: number): void => {
  process.stdout.write(`${name} listening port=${port}\n`)
}
