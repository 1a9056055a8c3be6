/**
 * The harness's control channel to a benchmark server (bench/servers/control.ts), against real
 * server processes: the feed runs from start-feed until stop-feed, and a gc reply carries the
 * server's live memory.
 */
import { Duration, Effect } from "effect"
import { describe, expect, it } from "vitest"
import { startServer } from "../../bench/lib/server.js"

const produced = (kind: "quotecast" | "ws") =>
  Effect.scoped(
    Effect.gen(function* () {
      const server = yield* startServer(kind, { BENCH_FEED_RATE: "200", BENCH_CODES: "20" })
      const counter = Effect.map(server.feedCounters, (c) => c?.produced ?? -1)
      const before = yield* counter
      yield* server.command("start-feed")
      yield* Effect.sleep(Duration.millis(400))
      const running = yield* counter
      yield* server.command("stop-feed")
      const stopped = yield* counter
      yield* Effect.sleep(Duration.millis(400))
      const later = yield* counter
      const gc = yield* server.command("gc")
      return { before, running, stopped, later, memory: gc.memory }
    }),
  )

describe("bench control channel", () => {
  for (const kind of ["quotecast", "ws"] as const) {
    it(`${kind}: the feed produces from start-feed until stop-feed; gc answers with live memory`, {
      timeout: 60_000,
    }, async () => {
      const r = await Effect.runPromise(produced(kind))
      expect(r.before).toBe(0)
      expect(r.running).toBeGreaterThan(0)
      expect(r.later).toBe(r.stopped)
      expect(r.memory?.heapUsedBytes).toBeGreaterThan(0)
      expect(r.memory?.externalBytes).toBeGreaterThan(0)
    })
  }
})
