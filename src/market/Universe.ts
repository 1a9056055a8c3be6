/**
 * The instrument universe: which stocks, markets and sectors exist. Subscription validation,
 * names in `price_update` and sector membership all come from here.
 */
import { Context, Effect, Layer, Option } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { CANDLE_INTERVALS, type SubscriptionType } from "../protocol/client.js"
import { MARKETS, type Market } from "../protocol/server.js"
import { type Topic, topicOf } from "../protocol/topics.js"
import { INDEX_ROWS, INSTRUMENT_ROWS } from "./data/instruments.js"
import { KOSPI200_CODES } from "./data/kospi200.js"
import { floorToTick } from "./tickSize.js"
import { type IndexDef, type Instrument, SECTORS, type Sector } from "./types.js"

export interface UniverseShape {
  readonly instruments: ReadonlyArray<Instrument>
  readonly byCode: ReadonlyMap<string, Instrument>
  readonly indices: ReadonlyArray<IndexDef>
  readonly sectors: ReadonlyArray<Sector>
  readonly membersOf: (sector: string) => ReadonlyArray<Instrument>
  /**
   * The topic of a known target, undefined for an unknown one. Always the same string per
   * target, so 10,000 connections subscribed to a code share one topic string instead of
   * holding a copy each.
   */
  readonly topic: (type: SubscriptionType, target: string) => Topic | undefined
}

export const makeUniverse = (size: Option.Option<number>): UniverseShape => {
  const real: Array<Instrument> = INSTRUMENT_ROWS.map(([code, name, nameKo, market, sector, prevClose]) => ({
    code,
    name,
    nameKo,
    market,
    sector,
    prevClose,
    synthetic: false,
    kospi200: KOSPI200_CODES.has(code),
  }))
  const target = Option.getOrElse(size, () => real.length)
  const instruments = [...real]
  // Synthetic instruments: codes 9xxxxx (unused by KRX short codes), spread over markets and sectors.
  for (let i = 0; instruments.length < target; i++) {
    const code = String(900000 + i)
    const sector = SECTORS[i % SECTORS.length] as Sector
    const market: Market = i % 3 === 0 ? "KOSDAQ" : "KOSPI"
    instruments.push({
      code,
      name: `Synthetic ${code}`,
      nameKo: `합성 ${code}`,
      market,
      sector,
      prevClose: floorToTick(5_000 + ((i * 7919) % 200_000)),
      synthetic: true,
      kospi200: false,
    })
  }
  const byCode = new Map(instruments.map((i) => [i.code, i]))
  const bySector = new Map<string, Array<Instrument>>(SECTORS.map((s) => [s, []]))
  for (const i of instruments) bySector.get(i.sector)?.push(i)
  const indices: ReadonlyArray<IndexDef> = INDEX_ROWS.map(([code, name, prevClose]) => ({
    code,
    name,
    prevClose,
  }))
  const topicsOf = (type: SubscriptionType, targets: ReadonlyArray<string>) =>
    new Map(targets.map((t) => [t, topicOf(type, t)]))
  const topics: Record<SubscriptionType, ReadonlyMap<string, Topic>> = {
    stock: topicsOf(
      "stock",
      instruments.map((i) => i.code),
    ),
    market: topicsOf("market", MARKETS),
    sector: topicsOf("sector", SECTORS),
    // `code:interval` for every stock and index.
    candle: topicsOf(
      "candle",
      [...instruments.map((i) => i.code), ...indices.map((d) => d.code)].flatMap((code) =>
        CANDLE_INTERVALS.map((interval) => `${code}:${interval}`),
      ),
    ),
  }
  return {
    instruments,
    byCode,
    indices,
    sectors: SECTORS,
    membersOf: (sector) => bySector.get(sector) ?? [],
    topic: (type, target) => topics[type].get(target),
  }
}

export class Universe extends Context.Tag("quotecast/Universe")<Universe, UniverseShape>() {
  static readonly layer = Layer.effect(
    Universe,
    Effect.map(AppConfig, (c) => makeUniverse(c.universeSize)),
  )
}
