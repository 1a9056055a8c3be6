/**
 * The load runner's measuring core as a library, for `load/main.ts` and for benchmark harnesses:
 *
 * ```ts
 * const report = await Effect.runPromise(runLoad({ ...defaultLoadConfig, url, connections: 500, durationSec: 10 }))
 * console.log(formatReport(report, checkThresholds(report, { maxP99Ms: 100 })))
 * ```
 */
export {
  builtinCodes,
  codesFor,
  defaults,
  isLoopbackHost,
  type LoadConfig,
  LoadConfigError,
  limits,
  resolveCodes,
  universeCodes,
  validateConfig,
} from "./config.js"
export {
  type FrameScan,
  LATENCY_TYPES,
  type ParsedFrame,
  type ParsedMessage,
  parseFrame,
  readUint,
  Sampler,
  scanFrame,
} from "./frames.js"
export { emptySummary, LatencyHistogram, type LatencySummary } from "./histogram.js"
export { compressionOffer, useSyncInflate } from "./inflate.js"
export {
  ConnectionPool,
  countFrame,
  type Dialect,
  failureReason,
  LoadConnection,
  nowMs,
  quotecastDialect,
} from "./pool.js"
export {
  buildReport,
  type ClientHealth,
  checkThresholds,
  formatProgress,
  formatReport,
  type LoadReport,
  type Progress,
  type Thresholds,
} from "./report.js"
export { LoadRunOverran, type RunHooks, runLoad } from "./run.js"
export { LoadStats } from "./stats.js"

import { builtinCodes, defaults, type LoadConfig } from "./config.js"

/** A complete configuration with the CLI's defaults (1,000 connections for 60 s on localhost:8000). */
export const defaultLoadConfig: LoadConfig = {
  ...defaults,
  codes: builtinCodes,
  token: undefined,
  allowRemote: false,
}
