/**
 * Candles end to end on a real gateway (embedded, FEED=none): the test is the only source of
 * trades (POST /v1/ingest), observes each one as the `price_update` on its socket (sent one at a
 * time, so none is conflated), and checks, independently of the server's code, that every
 * `closed: true` bar equals the aggregation of the trades it observed in that bar's minute. The
 * same bars come back in a new subscription's snapshot and from GET /v1/candles. A snapshot holds
 * at most CANDLE_SNAPSHOT_BARS closed bars (120 by default), the latest, and the bar in progress.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { candleConfig } from "../../src/config/candleConfig.js"
import { CandleHistoryBody } from "../../src/http/Api.js"
import type { Candle } from "../../src/protocol/server.js"
import {
  connect,
  ErrorBody,
  ingest,
  type MessageOf,
  type RunningGateway,
  readJson,
  sleep,
  useGateway,
  waitFor,
} from "../support/gateway.js"

const gw = useGateway({ marketClock: "always_open" })

const MINUTE = 60_000
const DAY = 86_400_000
const KST = 9 * 3_600_000

interface Observed {
  readonly code: string
  readonly price: number
  readonly qty: number
  readonly at: number
}

/** The bar the trades of one bucket make, computed here from what the socket showed. */
const aggregate = (trades: ReadonlyArray<Observed>, start: number): Candle => {
  const first = trades[0] as Observed
  let high = first.price
  let low = first.price
  let volume = 0
  let value = 0
  for (const t of trades) {
    high = Math.max(high, t.price)
    low = Math.min(low, t.price)
    volume += t.qty
    value += t.price * t.qty
  }
  return {
    time: new Date(start).toISOString(),
    open: first.price,
    high,
    low,
    close: (trades.at(-1) as Observed).price,
    volume,
    value,
    trades: trades.length,
  }
}

const barOf = (m: MessageOf<"candle_update">): Candle => ({
  time: m.time,
  open: m.open,
  high: m.high,
  low: m.low,
  close: m.close,
  volume: m.volume,
  value: m.value,
  trades: m.trades,
})

describe("candles over a real socket", () => {
  const clients: Array<{ close: () => Promise<unknown> }> = []
  afterAll(async () => {
    for (const c of clients) await c.close()
  })

  it("rejects an unknown code or interval like any unknown target", async () => {
    const { client } = await connect(gw)
    clients.push(client)
    client.send({
      type: "subscribe",
      subscription_type: "candle",
      targets: ["005930:1m", "005930:2m", "999999:1m", "005930"],
    })
    expect(await client.nextMustBe("subscribed")).toMatchObject({
      subscription_type: "candle",
      targets: ["005930:1m"],
    })
    const snapshot = await client.nextMustBe("candle_snapshot")
    expect(snapshot).toMatchObject({ code: "005930", interval: "1m" })
    const error = await client.nextOfType("error")
    expect(error.code).toBe("SUBSCRIPTION_FAILED")
    expect(error.details.rejected).toEqual([
      { target: "005930:2m", reason: "unknown_target" },
      { target: "999999:1m", reason: "unknown_target" },
      { target: "005930", reason: "unknown_target" },
    ])
  })

  it("closes every bar as the aggregation of the trades the client saw, and serves the same history", async () => {
    const { client } = await connect(gw)
    clients.push(client)
    const codes = ["000660", "035420"] as const
    client.send({ type: "subscribe", subscription_type: "stock", targets: [...codes] })
    await client.nextMustBe("subscribed")
    // FEED=none: no trade yet, so no price snapshot; cumulative volumes start at 0.
    const volumes = new Map<string, number>()
    client.send({ type: "subscribe", subscription_type: "candle", targets: codes.map((c) => `${c}:1m`) })
    await client.nextMustBe("subscribed")
    for (const _ of codes) expect((await client.nextMustBe("candle_snapshot")).current).toBeNull()

    const observed: Array<Observed> = []
    const basePrice: Record<string, number> = { "000660": 145_000, "035420": 200_000 }
    const step: Record<string, number> = { "000660": 100, "035420": 500 }
    const startMinute = Math.floor(Date.now() / MINUTE)
    // Trades until a minute with trades has ended (at most 150 s of trading, one trade at a time).
    for (
      let i = 0;
      i < 600 && (Math.floor(Date.now() / MINUTE) <= startMinute || observed.length === 0);
      i++
    ) {
      // Not within a second of a minute's end: which bar a trade at the boundary joins is the
      // server's to decide (the time it arrives), not something to assert.
      const inMinute = Date.now() % MINUTE
      if (inMinute > MINUTE - 1_000 || inMinute < 300) {
        await sleep(inMinute < 300 ? 400 - inMinute : MINUTE - inMinute + 400)
        continue
      }
      const code = codes[i % codes.length] as string
      const price = (basePrice[code] as number) + (((i * 7) % 11) - 5) * (step[code] as number)
      const qty = 1 + ((i * 13) % 50)
      const volume = (volumes.get(code) ?? 0) + qty
      volumes.set(code, volume)
      const res = await ingest(gw, [{ type: "price_update", code, price, volume }])
      expect(res.status).toBe(202)
      const seen = await client.next(
        (m): m is MessageOf<"price_update"> =>
          m.type === "price_update" && m.code === code && m.volume === volume,
      )
      observed.push({ code, price: seen.price, qty, at: Date.parse(seen.timestamp) })
      await sleep(100)
    }

    // Every minute with trades has ended: each closes (at the builder's next pass), once.
    const expected = new Map<string, Candle>()
    for (const t of observed) {
      const m = Math.floor(t.at / MINUTE)
      const key = `${t.code}|${m}`
      if (expected.has(key)) continue
      const trades = observed.filter((x) => x.code === t.code && Math.floor(x.at / MINUTE) === m)
      expected.set(key, aggregate(trades, m * MINUTE))
    }
    const closedUpdates = () =>
      client.messages.filter((m): m is MessageOf<"candle_update"> => m.type === "candle_update" && m.closed)
    // A liveness bound, not a speed check: bars close at their minute's end, one builder pass later.
    await waitFor(() => closedUpdates().length >= expected.size, 45_000, "every bar to close").catch((e) => {
      const got = closedUpdates().map((m) => `${m.code}|${Date.parse(m.time) / MINUTE}`)
      throw new Error(
        `${e}; expected closed ${[...expected.keys()].join(",")}; got ${got.join(",") || "none"}`,
      )
    })
    const closed = new Map<string, Candle>()
    for (const m of closedUpdates()) {
      const key = `${m.code}|${Date.parse(m.time) / MINUTE}`
      expect(closed.has(key)).toBe(false) // a bar closes once
      closed.set(key, barOf(m))
    }
    expect(closed).toEqual(expected)
    // The bar in progress went out too, before its close.
    expect(client.messages.some((m) => m.type === "candle_update" && !m.closed)).toBe(true)

    // A new subscriber's snapshot and the HTTP history hold the same closed bars.
    const { client: late } = await connect(gw)
    clients.push(late)
    late.send({ type: "subscribe", subscription_type: "candle", targets: ["000660:1m"] })
    await late.nextMustBe("subscribed")
    const snapshot = await late.nextMustBe("candle_snapshot")
    const wanted = [...expected.entries()].filter(([k]) => k.startsWith("000660|")).map(([, v]) => v)
    expect(snapshot.bars).toEqual(wanted)
    const res = await fetch(`${gw.httpUrl}/v1/candles/000660?interval=1m&limit=200`)
    expect(res.status).toBe(200)
    const body = await readJson(res, CandleHistoryBody)
    expect(body.bars).toEqual(wanted)

    // The day bar in progress is every trade of the Seoul day so far.
    const today = Math.floor((Date.now() + KST) / DAY)
    const dayTrades = observed.filter((t) => t.code === "000660" && Math.floor((t.at + KST) / DAY) === today)
    if (dayTrades.length > 0) {
      const dayRes = await fetch(`${gw.httpUrl}/v1/candles/000660?interval=1d`)
      const day = await readJson(dayRes, CandleHistoryBody)
      expect(day.current).toEqual(aggregate(dayTrades, today * DAY - KST))
    }
  }, 200_000)

  it("answers 400 for a bad interval or limit and 404 for an unknown code", async () => {
    const bad = async (query: string, status: number) => {
      const res = await fetch(`${gw.httpUrl}/v1/candles/${query}`)
      expect(res.status).toBe(status)
      return Schema.decodeUnknownSync(ErrorBody)(await res.json())
    }
    await bad("005930?interval=2m", 400)
    await bad("005930?interval=1m&limit=0", 400)
    await bad("005930?interval=1m&limit=abc", 400)
    expect((await bad("005930?interval=1m&limit=401", 400)).message).toContain("CANDLE_HISTORY_BARS")
    await bad("999999?interval=1m", 404)
    const ok = await fetch(`${gw.httpUrl}/v1/candles/005930`)
    expect(await readJson(ok, CandleHistoryBody)).toEqual({
      code: "005930",
      interval: "1m",
      bars: [],
      current: null,
    })
  })
})

/**
 * `closed` closed 1m bars of `code`, one trade in each of the minutes before this one (ingested
 * with their timestamps: each trade of a later minute closes the bar before it), then a trade now:
 * the bar in progress. Returns once the history holds them all, not within 5 s of a minute's end
 * (so that no bar closes by itself while the test reads).
 */
const tradeMinutes = async (gateway: RunningGateway, code: string, closed: number) => {
  if (Date.now() % MINUTE > MINUTE - 5_000) await sleep(MINUTE - (Date.now() % MINUTE) + 500)
  const minute = Math.floor(Date.now() / MINUTE) * MINUTE
  const events = []
  for (let i = 0; i <= closed; i++)
    events.push({
      type: "price_update",
      code,
      price: 40_000 + 50 * (i % 7), // inside the daily band of both codes used (Kakao 42,000, DB HiTek 40,000)
      volume: 10 * (i + 1),
      ...(i < closed ? { timestamp: new Date(minute - (closed - i) * MINUTE).toISOString() } : {}),
    })
  expect((await ingest(gateway, events)).status).toBe(202)
  const all = async () =>
    readJson(await fetch(`${gateway.httpUrl}/v1/candles/${code}?interval=1m&limit=400`), CandleHistoryBody)
  await waitFor(async () => (await all()).bars.length === closed, 5_000, `${closed} closed bars of ${code}`)
  return { minute, history: await all() }
}

/** A new subscriber's snapshot of `code`:1m. */
const snapshotOf = async (gateway: RunningGateway, code: string) => {
  const { client } = await connect(gateway)
  client.send({ type: "subscribe", subscription_type: "candle", targets: [`${code}:1m`] })
  await client.nextMustBe("subscribed")
  const snapshot = await client.nextMustBe("candle_snapshot")
  await client.close()
  return snapshot
}

describe("the size of a candle snapshot (CANDLE_SNAPSHOT_BARS)", () => {
  it("holds the latest 120 closed bars by default once more exist, and the bar in progress", async () => {
    const { minute, history } = await tradeMinutes(gw, "035720", 130)
    const snapshot = await snapshotOf(gw, "035720")
    expect(snapshot.bars).toHaveLength(120)
    expect(snapshot.bars).toEqual(history.bars.slice(-120))
    expect(snapshot.bars.at(-1)?.time).toBe(new Date(minute - MINUTE).toISOString())
    expect(snapshot.bars[0]?.time).toBe(new Date(minute - 120 * MINUTE).toISOString())
    expect(snapshot.current).toMatchObject({ time: new Date(minute).toISOString(), trades: 1 })
    // The history endpoint's default limit is the same N.
    const body = await readJson(await fetch(`${gw.httpUrl}/v1/candles/035720?interval=1m`), CandleHistoryBody)
    expect(body.bars).toEqual(snapshot.bars)
  }, 30_000)

  describe("configured smaller", () => {
    const small = useGateway({
      marketClock: "always_open",
      candles: { ...Effect.runSync(candleConfig), snapshotBars: 5 },
    })

    it("caps the snapshot at N closed bars, the latest, and holds all of fewer", async () => {
      const few = await tradeMinutes(small, "035720", 3)
      expect((await snapshotOf(small, "035720")).bars).toEqual(few.history.bars)
      const { minute, history } = await tradeMinutes(small, "000990", 12)
      const snapshot = await snapshotOf(small, "000990")
      expect(snapshot.bars).toHaveLength(5)
      expect(snapshot.bars).toEqual(history.bars.slice(-5))
      expect(snapshot.bars.at(-1)?.time).toBe(new Date(minute - MINUTE).toISOString())
      expect(snapshot.current).toMatchObject({ time: new Date(minute).toISOString(), trades: 1 })
    }, 30_000)
  })
})
