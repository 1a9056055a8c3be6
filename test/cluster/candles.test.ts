/**
 * Candles in cluster mode: the feed's leader builds every bar once and keeps them in Redis, so
 * every instance serves the same history (snapshot and GET /v1/candles), and a bar in progress
 * survives the leader's death: the next leader continues it from Redis.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { CandleHistoryBody } from "../../src/http/Api.js"
import { parsePrometheusText } from "../metrics/prometheusText.js"
import { connect, type GatewayProcess, type MessageOf, readJson, sleep } from "../support/gateway.js"
import { kill, leaderOf, useCluster, waitFor } from "./support.js"

const cluster = useCluster({
  instances: 2,
  env: { FEED: "simulator", FEED_RATE: "200", LEADER_LEASE_MS: "3000", UNIVERSE_SIZE: "40" },
})
beforeAll(() => waitFor(() => leaderOf(cluster.nodes) !== undefined, 10_000, "a feed leader"))

const SERIES = "KOSPI"

const historyOf = async (node: GatewayProcess, interval: string) =>
  readJson(
    await fetch(`${node.httpUrl}/v1/candles/${SERIES}?interval=${interval}&limit=400`),
    CandleHistoryBody,
  )

/** Closed bars from two instances, read until no bar closed between the reads. */
const sameMoment = async (a: GatewayProcess, b: GatewayProcess, interval: string) => {
  for (let i = 0; i < 20; i++) {
    const first = await historyOf(a, interval)
    const other = await historyOf(b, interval)
    const again = await historyOf(a, interval)
    if (JSON.stringify(first.bars) === JSON.stringify(again.bars)) return { a: first.bars, b: other.bars }
  }
  throw new Error("bars kept closing between reads")
}

/** `quotecast_candle_trades_total` of one instance: trades it built into bars itself. */
const tradesBuiltInto = async (node: GatewayProcess): Promise<number> => {
  const family = parsePrometheusText(await (await fetch(`${node.httpUrl}/metrics`)).text()).get(
    "quotecast_candle_trades_total",
  )
  if (family === undefined) throw new Error("no quotecast_candle_trades_total in /metrics")
  return family.samples.reduce((sum, s) => sum + s.value, 0)
}

describe("candles in a cluster", () => {
  it("every instance serves the same bars, built once; a new leader continues the bar in progress", async () => {
    const leader = leaderOf(cluster.nodes) as GatewayProcess
    const follower = cluster.nodes.find((n) => n !== leader) as GatewayProcess
    // Live bars on both instances: the same closed bar reaches a client of each, once.
    const clients = await Promise.all([connect(leader), connect(follower)])
    for (const { client } of clients) {
      client.send({ type: "subscribe", subscription_type: "candle", targets: [`${SERIES}:1m`] })
      await client.nextMustBe("subscribed")
      await client.nextMustBe("candle_snapshot")
    }
    const isClosed = (m: { type: string }): m is MessageOf<"candle_update"> =>
      m.type === "candle_update" && (m as MessageOf<"candle_update">).closed
    // A minute ends (at most 60 s, plus the pass).
    const [a, b] = clients
    if (a === undefined || b === undefined) throw new Error("two clients")
    const [onLeader, onFollower] = await Promise.all([
      a.client.next(isClosed, 75_000),
      b.client.next(isClosed, 75_000),
    ])
    expect(onFollower).toEqual({ ...onLeader, sequence: onFollower.sequence })

    const both = await sameMoment(leader, follower, "1m")
    expect(both.a.length).toBeGreaterThan(0)
    expect(both.b).toEqual(both.a)
    expect(both.a.at(-1)).toEqual({
      time: onLeader.time,
      open: onLeader.open,
      high: onLeader.high,
      low: onLeader.low,
      close: onLeader.close,
      volume: onLeader.volume,
      value: onLeader.value,
      trades: onLeader.trades,
    })
    // Built once: every trade went into bars on the leader, none on the follower.
    const [builtByLeader, builtByFollower] = await Promise.all([leader, follower].map(tradesBuiltInto))
    expect(builtByLeader).toBeGreaterThan(0)
    expect(builtByFollower).toBe(0)

    // A follower's subscriber starts from the same snapshot.
    const { client: late } = await connect(follower)
    late.send({ type: "subscribe", subscription_type: "candle", targets: [`${SERIES}:1m`] })
    await late.nextMustBe("subscribed")
    const snap = await late.nextMustBe("candle_snapshot")
    expect(snap.bars.slice(0, both.a.length)).toEqual(both.a)

    // The leader dies; the day's bar in progress is continued by the next leader, not restarted.
    // Not within 30 s of midnight in Seoul: the day's bar must stay the same one across the failover.
    const inDay = (Date.now() + 9 * 3_600_000) % 86_400_000
    if (inDay > 86_400_000 - 30_000) await sleep(86_400_000 - inDay + 2_000)
    const dayBefore = (await historyOf(follower, "1d")).current
    expect(dayBefore).not.toBeNull()
    await kill(leader)
    await waitFor(() => leaderOf([follower]) !== undefined, 10_000, "the follower to take the lead")
    const trades = dayBefore?.trades ?? 0
    await waitFor(
      async () => ((await historyOf(follower, "1d")).current?.trades ?? 0) > trades,
      15_000,
      "the new leader's trades in the day's bar",
    )
    const dayAfter = (await historyOf(follower, "1d")).current
    expect(dayAfter?.time).toBe(dayBefore?.time)
    expect(dayAfter?.open).toBe(dayBefore?.open)
    expect(dayAfter?.high).toBeGreaterThanOrEqual(dayBefore?.high ?? 0)
    expect(dayAfter?.low).toBeLessThanOrEqual(dayBefore?.low ?? Number.POSITIVE_INFINITY)
    // The closed bars outlive the instance that built them, and a new instance serves them too.
    const [fresh] = await cluster.add(1)
    const afterRestart = await sameMoment(follower, fresh as GatewayProcess, "1m")
    expect(afterRestart.a.slice(0, both.a.length)).toEqual(both.a)
    expect(afterRestart.b).toEqual(afterRestart.a)
    for (const { client } of clients) await client.close().catch(() => undefined)
    await late.close()
  }, 200_000)
})
