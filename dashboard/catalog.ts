/**
 * Static reference data for the page: names come from the instrument list the server ships
 * (bundled in, so the page shows Korean names without an extra request), labels are the page's own.
 */
import { INDEX_ROWS, INSTRUMENT_ROWS } from "../src/market/data/instruments.js"
import { SECTORS, type Sector } from "../src/market/types.js"
import type { Market } from "../src/protocol/server.js"

export interface Listing {
  readonly code: string
  readonly name: string
  readonly nameKo: string
  readonly market: Market
  readonly sector: Sector
}

export const LISTINGS: ReadonlyMap<string, Listing> = new Map(
  INSTRUMENT_ROWS.map(([code, name, nameKo, market, sector]) => [
    code,
    { code, name, nameKo, market, sector },
  ]),
)

/** Twelve large, well-known names across sectors and both markets. `?watch=` overrides it. */
export const DEFAULT_WATCHLIST: ReadonlyArray<string> = [
  "005930", // Samsung Electronics
  "000660", // SK hynix
  "373220", // LG Energy Solution
  "207940", // Samsung Biologics
  "005380", // Hyundai Motor
  "000270", // Kia
  "068270", // Celltrion
  "035420", // NAVER
  "035720", // Kakao
  "105560", // KB Financial Group
  "247540", // EcoPro BM (KOSDAQ)
  "196170", // Alteogen (KOSDAQ)
]

/** Longest watchlist `?watch=` may ask for: one subscribe message holds at most 100 targets. */
export const MAX_WATCHLIST = 40

export const MARKETS: ReadonlyArray<{ readonly code: Market; readonly nameKo: string }> = INDEX_ROWS.map(
  ([code]) => ({ code, nameKo: code === "KOSPI" ? "코스피" : "코스닥" }),
)

export { SECTORS }

export const SECTOR_KO: Readonly<Record<Sector, string>> = {
  IT: "IT",
  FINANCE: "금융",
  HEALTHCARE: "헬스케어",
  AUTO: "자동차",
  BATTERY: "2차전지",
  CHEMICALS: "화학",
  MATERIALS: "철강·소재",
  ENERGY: "에너지",
  INDUSTRIALS: "산업재",
  CONSUMER: "소비재",
  TELECOM: "통신",
  MEDIA: "미디어",
}

export const STATUS_LABEL: Readonly<Record<string, string>> = {
  pre_open: "Pre-open · 장전",
  open: "Open · 장중",
  closed: "Closed · 장마감",
  halted: "Halted · 거래정지",
}

/** The watchlist from `?watch=005930,000660`, keeping only known codes; the default otherwise. */
export const watchlistFrom = (param: string | null): ReadonlyArray<string> => {
  if (param === null) return DEFAULT_WATCHLIST
  const codes = [...new Set(param.split(",").map((c) => c.trim()))].filter((c) => LISTINGS.has(c))
  return codes.length === 0 ? DEFAULT_WATCHLIST : codes.slice(0, MAX_WATCHLIST)
}
