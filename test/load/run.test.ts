/**
 * The load runner against an in-test feed on loopback: small, short runs (the machine is shared).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { defaultLoadConfig, type LoadConfig, type Progress, runLoad } from "../../load/lib/index.js"
import { fakeFeed } from "./fakeFeed.js"

const small = (url: string, extra: Partial<LoadConfig> = {}): LoadConfig => ({
  ...defaultLoadConfig,
  url,
  connections: 20,
  batchSize: 5,
  rampUpSec: 0.2,
  durationSec: 1.2,
  subscriptions: 3,
  sample: 2,
  closeTimeoutSec: 2,
  ...extra,
})

describe("runLoad", () => {
  it.scopedLive("connects, counts messages, measures latency and reports progress", () =>
    Effect.gen(function* () {
      const feed = yield* fakeFeed({ intervalMs: 30, perTick: 5, ageMs: 20 })
      const progress: Array<Progress> = []
      const report = yield* runLoad(small(feed.url), { onProgress: (p) => progress.push(p) })

      expect(report.connections).toMatchObject({
        attempted: 20,
        established: 20,
        failed: 0,
        peakOpen: 20,
        dropped: 0,
      })
      expect(report.messages.subscribedTargets).toBe(60)
      // Batches carry several messages (20 connections x 5 codes every 30 ms); no rate is asserted.
      expect(report.messages.perFrame).toBeGreaterThan(3)
      expect(report.messages.total).toBeGreaterThan(report.messages.window)
      expect(report.sequence).toEqual({ gaps: 0, missing: 0, nonConsecutiveBatches: 0 })
      // Timestamps are 20 ms old when sent, snapshots (60 s old) are excluded.
      expect(report.latency.count).toBeGreaterThan(100)
      expect(report.latency.p50).toBeGreaterThanOrEqual(19)
      expect(report.messages.sampledTypes.price_update).toBeGreaterThan(0)
      expect(report.errors).toEqual({})
      expect(report.closes).toEqual({})
      expect(progress.length).toBeGreaterThanOrEqual(1)
      expect(progress.at(-1)?.open).toBe(20)
      expect(feed.conns.size).toBe(0)
    }),
  )

  it.scopedLive("reports gaps, server errors and unexpected closes by code", () =>
    Effect.gen(function* () {
      const feed = yield* fakeFeed({ intervalMs: 30, perTick: 2 })
      const fiber = yield* Effect.fork(
        runLoad(small(feed.url, { connections: 6, batchSize: 6, rampUpSec: 0 })),
      )
      yield* Effect.sleep("500 millis")
      feed.skipNext = 4
      yield* Effect.sleep("100 millis")
      feed.errorNext = true
      yield* Effect.sleep("100 millis")
      const [victim] = feed.conns
      victim?.socket.close(1013, "slow consumer")
      const report = yield* fiber.await.pipe(Effect.flatten)

      expect(report.sequence.gaps).toBe(6)
      expect(report.sequence.missing).toBe(24)
      expect(report.errors).toEqual({ RATE_LIMIT_EXCEEDED: expect.any(Number) })
      expect(report.errors.RATE_LIMIT_EXCEEDED).toBeGreaterThanOrEqual(5)
      expect(report.closes).toEqual({ "1013": 1 })
      expect(report.connections.dropped).toBe(1)
    }),
  )

  it.scopedLive("counts refused connections by reason", () =>
    Effect.gen(function* () {
      const report = yield* runLoad(
        small("ws://127.0.0.1:9/v1/ws", { connections: 4, durationSec: 0.2, rampUpSec: 0 }),
      )
      expect(report.connections).toMatchObject({ attempted: 4, established: 0, failed: 4 })
      expect(report.connections.connectErrors).toEqual({ ECONNREFUSED: 4 })
    }),
  )

  it.scopedLive(
    "inflates compressed frames synchronously when the server agrees to no context takeover",
    () =>
      Effect.gen(function* () {
        const feed = yield* fakeFeed({ intervalMs: 30, perTick: 5, compression: true })
        const report = yield* runLoad(small(feed.url, { connections: 5, compression: true }))
        expect(report.connections.established).toBe(5)
        expect(report.connections.syncInflate).toBe(5)
        expect(report.messages.unparsableFrames).toBe(0)
        expect(report.messages.subscribedTargets).toBe(15)
        expect(report.sequence.gaps).toBe(0)
        expect(report.messages.window).toBeGreaterThan(100)
      }),
  )

  it.scopedLive("spreads source addresses over 127.0.0.x", () =>
    Effect.gen(function* () {
      const feed = yield* fakeFeed({ intervalMs: 50, perTick: 1 })
      const sources = new Set<string>()
      feed.wss.on("connection", (_socket, request) => sources.add(request.socket.remoteAddress ?? ""))
      const report = yield* runLoad(small(feed.url, { connections: 6, sourceIps: 3, durationSec: 0.3 }))
      expect(report.connections.established).toBe(6)
      expect([...sources].sort()).toEqual(["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    }),
  )

  it.live("refuses a remote URL before opening anything", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(runLoad(small("ws://203.0.113.5:8000/v1/ws")))
      expect(error._tag).toBe("LoadConfigError")
    }),
  )
})
