/**
 * The scenarios (A-F) and the smoke scenario npm test runs. Sizes are the issue's;
 * windows are short so that the whole suite stays under 10 minutes on this machine.
 */

import type { AttackSpec } from "./attack.js"
import type { Scenario } from "./scenario.js"
import type { StormSpec } from "./storm.js"

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

/** Scenario G: 10,000 clients with saved sessions reconnect at once (issue 12, point 6). */
export const stormSpec: StormSpec = {
  scenario: {
    id: "G",
    title:
      "Reconnect storm: 10,000 clients with sessions (20 subscriptions each) cut and reconnecting at once, 100 observers, 100 ticks/s",
    connections: 10_000,
    subscriptions: 20,
    codes: 200,
    feedRate: 100,
    compression: false,
    servers: [{ kind: "quotecast" }, { kind: "ws" }],
    warmupSec: 2,
    windowSec: 3,
    rssKillBytes: 3 * GB,
    targets:
      "every session restored; observers' delivery p99 during the storm < 1 s; storm duration and server CPU per restore reported beside the bare ws handshake cost",
  },
  observers: 100,
  stormLimitSec: 300,
}

/** npm test: scenario G's code paths at a tiny size. */
export const smokeStormSpec: StormSpec = {
  scenario: {
    ...stormSpec.scenario,
    id: "smoke-G",
    title: "smoke: reconnect storm of 30 clients x 5 subscriptions, 5 observers",
    // A small concurrency so that even 30 clients wait for their turn.
    servers: [{ kind: "quotecast", env: { SETUP_CONCURRENCY: "4" } }, { kind: "ws" }],
    connections: 30,
    subscriptions: 5,
    codes: 20,
    warmupSec: 0.5,
    windowSec: 1,
    rssKillBytes: 1 * GB,
    targets: "none (smoke)",
  },
  observers: 5,
  stormLimitSec: 20,
}

/** Scenario H: observers' p99 without and with one attacker at its rate limit (issue 12, point 2). */
export const attackSpec: AttackSpec = {
  scenario: {
    id: "H",
    title:
      "Attack: 200 observers (20 pinging) at 200 ticks/s, without and with one attacker sending worst-case frames at its rate limit; then one user's 500 alerts firing at once",
    connections: 200,
    subscriptions: 20,
    codes: 200,
    feedRate: 200,
    compression: false,
    servers: [{ kind: "quotecast" }],
    warmupSec: 3,
    windowSec: 15,
    rssKillBytes: 3 * GB,
    targets: "the attacker adds <= 50 ms to observers' delivery and pong p99; every answer to it under 4 KB",
  },
  observers: 200,
  pingers: 20,
  pingRate: 10,
  attackRate: 100,
  maxPayloadBytes: 65_536,
  // The variant of issue 12 point 3: 500 alerts of one user with 20 saved sessions fire at once.
  alertRounds: 1,
  alertsPerUser: 500,
  sessionsPerUser: 20,
}

/** npm test: scenario H's code paths at a tiny size. */
export const smokeAttackSpec: AttackSpec = {
  ...attackSpec,
  scenario: {
    ...attackSpec.scenario,
    id: "smoke-H",
    title: "smoke: 5 observers (2 pinging), one attacker",
    connections: 5,
    subscriptions: 5,
    codes: 20,
    warmupSec: 0.5,
    windowSec: 1,
    rssKillBytes: 1 * GB,
    targets: "none (smoke)",
  },
  observers: 5,
  pingers: 2,
  alertsPerUser: 20,
  sessionsPerUser: 2,
}
