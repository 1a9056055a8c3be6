import type { Market } from "../protocol/server.js"

/**
 * The fixed sector list (docs/market-data.md). Every instrument belongs to exactly one;
 * `sector` subscriptions accept exactly these names.
 */
export const SECTORS = [
  "IT",
  "FINANCE",
  "HEALTHCARE",
  "AUTO",
  "BATTERY",
  "CHEMICALS",
  "MATERIALS",
  "ENERGY",
  "INDUSTRIALS",
  "CONSUMER",
  "TELECOM",
  "MEDIA",
] as const
export type Sector = (typeof SECTORS)[number]

export interface Instrument {
  /** 6-digit KRX short code. */
  readonly code: string
  readonly name: string
  readonly nameKo: string
  readonly market: Market
  readonly sector: Sector
  /** Reference previous close in KRW, on the tick grid; the simulator starts here. */
  readonly prevClose: number
  /** True for instruments added by UNIVERSE_SIZE for load tests. */
  readonly synthetic: boolean
  /** A KOSPI 200 constituent (data/kospi200.ts): its dynamic VI threshold is ±3%, not ±6%. */
  readonly kospi200: boolean
}

export interface IndexDef {
  readonly code: Market
  readonly name: string
  readonly prevClose: number
}
