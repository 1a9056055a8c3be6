/**
 * The scenarios (A-F) and the smoke scenario npm test runs. Sizes are the issue's;
 * windows are short so that the whole suite stays under 10 minutes on this machine.
 */
import type { Scenario } from "./scenario.js"

const GB = 1024 ** 3
const all3 = [{ kind: "quotecast" }, { kind: "ws" }, { kind: "socketio" }] as const
/** With the bare server plus a fiber and a Scope per connection: what the fixed shape costs alone. */
const withFloor = [{ kind: "quotecast" }, { kind: "ws" }, { kind: "ws-fiber" }, { kind: "socketio" }] as const

export const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "A",
    title: "10,000 connections x 20 subscriptions over 200 codes, 200 ticks/s",
    connections: 10_000,
    subscriptions: 20,
    codes: 200,
    feedRate: 200,
    compression: false,
    servers: all3,
    warmupSec: 4,
    windowSec: 15,
    rssKillBytes: 3 * GB,
    targets: "quotecast >= 0.85 x bare ws msg/s, p99 <= 1.2 x bare ws p99, >= 3 x Socket.IO msg/s",
  },
  {
    id: "B",
    title: "1,000 connections x 20 over 200 codes, 2,000 ticks/s",
    connections: 1_000,
    subscriptions: 20,
    codes: 200,
    feedRate: 2_000,
    compression: false,
    servers: all3,
    warmupSec: 3,
    windowSec: 15,
    rssKillBytes: 3 * GB,
    targets: "quotecast p99 < 100 ms",
  },
  {
    id: "C",
    title: "10,000 idle connections (20 subscriptions each, no feed)",
    connections: 10_000,
    subscriptions: 20,
    codes: 200,
    feedRate: 0,
    compression: false,
    servers: withFloor,
    warmupSec: 2,
    windowSec: 3,
    rssKillBytes: 3 * GB,
    // Relative to the floor of the fixed shape (issue 12): the bare server with a fiber, a
    // Scope and an inbox per connection (ws-fiber).
    targets:
      "quotecast live memory per connection <= 1.15 x bare ws + Effect fiber, RSS per connection after GC <= 1.3 x it",
  },
  {
    id: "D",
    title: "Scenario B with permessage-deflate negotiated by every client",
    connections: 1_000,
    subscriptions: 20,
    codes: 200,
    feedRate: 2_000,
    compression: true,
    servers: [
      { kind: "quotecast" },
      { kind: "ws", name: "bare ws + ws deflate", env: { BENCH_DEFLATE: "on" } },
    ],
    warmupSec: 3,
    windowSec: 15,
    rssKillBytes: 3 * GB,
    targets: "quotecast >= 0.8 x offered msg/s, p99 < 250 ms, <= 64 KB per connection",
  },
  {
    id: "E",
    title: "Overload: scenario A at 2,000 ticks/s (2,000,000 msg/s offered)",
    connections: 10_000,
    subscriptions: 20,
    codes: 200,
    feedRate: 2_000,
    compression: false,
    servers: [{ kind: "quotecast" }, { kind: "ws" }],
    warmupSec: 3,
    windowSec: 20,
    // Above this the bare server is stopped: it would go on buffering until the machine swaps.
    rssKillBytes: 2.5 * GB,
    targets: "quotecast up, RSS < 1 GB, every connection receiving, p99 < 1 s",
  },
]

/** npm test: tiny, seconds, every server; asserts only that it runs and reports numbers. */
export const smokeScenario: Scenario = {
  id: "smoke",
  title: "smoke: 20 connections x 5 subscriptions over 20 codes, 100 ticks/s",
  connections: 20,
  subscriptions: 5,
  codes: 20,
  feedRate: 100,
  compression: false,
  servers: withFloor,
  warmupSec: 0.5,
  windowSec: 1.5,
  rssKillBytes: 1 * GB,
  targets: "none (smoke)",
}
