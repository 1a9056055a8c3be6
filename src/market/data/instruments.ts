/**
 * KRX-listed companies shipped with quotecast: [code, English name, Korean name, market, sector, reference close KRW].
 * Reference closes are round figures near recent levels, on the tick grid; they seed the simulator.
 */
import type { Market } from "../../protocol/server.js"
import type { Sector } from "../types.js"

export type InstrumentRow = readonly [string, string, string, Market, Sector, number]

export const INSTRUMENT_ROWS: ReadonlyArray<InstrumentRow> = [
  ["005930", "Samsung Electronics", "삼성전자", "KOSPI", "IT", 73000],
  ["000660", "SK hynix", "SK하이닉스", "KOSPI", "IT", 145000],
  ["035420", "NAVER", "NAVER", "KOSPI", "IT", 190000],
  ["035720", "Kakao", "카카오", "KOSPI", "IT", 42000],
  ["066570", "LG Electronics", "LG전자", "KOSPI", "IT", 95000],
  ["105560", "KB Financial Group", "KB금융", "KOSPI", "FINANCE", 78000],
  ["055550", "Shinhan Financial Group", "신한지주", "KOSPI", "FINANCE", 50000],
  ["086790", "Hana Financial Group", "하나금융지주", "KOSPI", "FINANCE", 60000],
  ["316140", "Woori Financial Group", "우리금융지주", "KOSPI", "FINANCE", 15000],
  ["032830", "Samsung Life Insurance", "삼성생명", "KOSPI", "FINANCE", 90000],
  ["207940", "Samsung Biologics", "삼성바이오로직스", "KOSPI", "HEALTHCARE", 800000],
  ["068270", "Celltrion", "셀트리온", "KOSPI", "HEALTHCARE", 180000],
  ["005380", "Hyundai Motor", "현대차", "KOSPI", "AUTO", 210000],
  ["000270", "Kia", "기아", "KOSPI", "AUTO", 95000],
  ["012330", "Hyundai Mobis", "현대모비스", "KOSPI", "AUTO", 230000],
  ["373220", "LG Energy Solution", "LG에너지솔루션", "KOSPI", "BATTERY", 350000],
  ["006400", "Samsung SDI", "삼성SDI", "KOSPI", "BATTERY", 300000],
  ["051910", "LG Chem", "LG화학", "KOSPI", "CHEMICALS", 320000],
  ["005490", "POSCO Holdings", "POSCO홀딩스", "KOSPI", "MATERIALS", 380000],
  ["096770", "SK Innovation", "SK이노베이션", "KOSPI", "ENERGY", 110000],
  ["017670", "SK Telecom", "SK텔레콤", "KOSPI", "TELECOM", 52000],
  ["030200", "KT", "KT", "KOSPI", "TELECOM", 38000],
  ["247540", "EcoPro BM", "에코프로비엠", "KOSDAQ", "BATTERY", 180000],
  ["086520", "EcoPro", "에코프로", "KOSDAQ", "BATTERY", 90000],
  ["196170", "Alteogen", "알테오젠", "KOSDAQ", "HEALTHCARE", 320000],
  ["028300", "HLB", "에이치엘비", "KOSDAQ", "HEALTHCARE", 70000],
  ["263750", "Pearl Abyss", "펄어비스", "KOSDAQ", "MEDIA", 35000],
  ["035900", "JYP Entertainment", "JYP Ent.", "KOSDAQ", "MEDIA", 60000],
  ["041510", "SM Entertainment", "에스엠", "KOSDAQ", "MEDIA", 75000],
  ["293490", "Kakao Games", "카카오게임즈", "KOSDAQ", "MEDIA", 20000],
]

export const INDEX_ROWS: ReadonlyArray<readonly [Market, string, number]> = [
  ["KOSPI", "KOSPI Composite Index", 2600],
  ["KOSDAQ", "KOSDAQ Composite Index", 850],
]
