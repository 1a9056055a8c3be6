/**
 * `/metrics`: Prometheus text (format 0.0.4) rendered by prom-client from one instance's
 * `GatewayStats` and the process's default metrics (`processMetrics.ts`), and the few figures the
 * dashboard shows (`summary`). Counters and gauges are prom-client metrics whose `collect` reads
 * the plain numbers at scrape time, so the hot paths keep bumping numbers; the histograms are
 * prom-client's, observed where they happen. The summary is read in `summary.ts`.
 */
import { Counter, Gauge, Registry } from "prom-client"
import type { GatewayStatsImpl } from "./GatewayStats.js"
import { processRegistry } from "./processMetrics.js"
import { type MetricsSummary, readSummary } from "./summary.js"

/** Read from the live gateway at scrape time (they are not counted, they are looked at). */
export interface Gauges {
  readonly queuedMessages: number
  readonly activeConnections: number
  readonly topics: number
}

const EVICTION_REASONS = ["user_limit", "address_limit", "anonymous_limit"] as const

export interface Exposition {
  /** The Prometheus text of the process and this instance. */
  readonly text: () => Promise<string>
  readonly summary: () => Promise<MetricsSummary>
}

export const makeExposition = (s: GatewayStatsImpl, g: () => Gauges): Exposition => {
  const registry = new Registry()
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(read())
      },
    })
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read())
      },
    })
  const byLabel = (
    name: string,
    help: string,
    label: string,
    read: () => Iterable<readonly [string | number, number]>,
  ) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset()
        for (const [value, n] of read()) this.inc({ [label]: value }, n)
      },
    })

  gauge("quotecast_connections_active", "Open WebSocket connections.", () => g().activeConnections)
  counter("quotecast_connections_opened_total", "WebSocket connections accepted.", () => s.connectionsOpened)
  byLabel(
    "quotecast_connections_closed_total",
    "WebSocket connections closed, by close code.",
    "code",
    () => s.closesByCode,
  )
  counter(
    "quotecast_messages_sent_total",
    "Protocol messages sent (inside batches counted one by one).",
    () => s.messagesSent,
  )
  counter("quotecast_frames_sent_total", "WebSocket data frames sent.", () => s.framesSent)
  counter("quotecast_bytes_sent_total", "Payload characters sent, before compression.", () => s.bytesSent)
  counter(
    "quotecast_wire_bytes_sent_total",
    "Payload bytes written to sockets, after compression.",
    () => s.bytesOnWire,
  )
  counter(
    "quotecast_compressed_frames_total",
    "Frames sent compressed (permessage-deflate).",
    () => s.compressedFrames,
  )
  counter("quotecast_messages_received_total", "Client messages received.", () => s.messagesReceived)
  gauge("quotecast_queue_depth", "Messages waiting in connection outboxes.", () => g().queuedMessages)
  counter("quotecast_conflated_total", "Queued state messages replaced by a newer one.", () => s.conflated)
  counter(
    "quotecast_rate_limit_rejections_total",
    "Client messages rejected by the rate limit.",
    () => s.rateLimitRejections,
  )
  counter(
    "quotecast_decode_errors_total",
    "Client messages answered with INVALID_MESSAGE.",
    () => s.decodeErrors,
  )
  byLabel(
    "quotecast_ws_frames_rejected_total",
    "Client frames refused by a WebSocket input limit before parsing, by reason.",
    "reason",
    () => Object.entries(s.wsFramesRejected),
  )
  counter(
    "quotecast_ws_input_cost_total",
    "Rate-limit tokens charged for client frames (1 per ordinary message; more for large or invalid frames).",
    () => s.wsInputCost,
  )
  counter(
    "quotecast_slow_consumer_closes_total",
    "Connections closed with 1013 for not reading.",
    () => s.slowConsumerCloses,
  )
  counter(
    "quotecast_session_takeover_timeouts_total",
    "Session restores that claimed the session after its holder did not let go within SESSION_TAKEOVER_WAIT_MS.",
    () => s.sessionTakeoverTimeouts,
  )
  counter("quotecast_alerts_fired_total", "Alerts fired by this instance.", () => s.alertsFired)
  gauge(
    "quotecast_alerts_cached",
    "Cluster mode: active alerts in this instance's cache of the shared set, kept in sync through Redis.",
    () => s.alertsCached,
  )
  counter(
    "quotecast_alert_limit_rejections_total",
    "Alert creations refused with 429 (MAX_ALERTS_PER_USER).",
    () => s.alertLimitRejections,
  )
  byLabel(
    "quotecast_sessions_evicted_total",
    "Saved sessions dropped or not saved, by reason.",
    "reason",
    () => EVICTION_REASONS.map((r) => [r, s.sessionsEvicted.get(r) ?? 0]),
  )
  counter(
    "quotecast_session_alerts_dropped_total",
    "Alerts dropped from a saved session's kept alerts (over MAX_ALERTS_PER_USER per session).",
    () => s.sessionAlertsDropped,
  )
  gauge(
    "quotecast_http_body_budget_used_bytes",
    "Request-body bytes held now by requests in flight (HTTP_BODY_BUDGET_BYTES).",
    () => s.httpBodyBytesHeld,
  )
  gauge(
    "quotecast_outbound_budget_used_bytes",
    "Outbound bytes held for clients (socket send queues plus outboxes) at the last flush pass.",
    () => s.outboundBytes,
  )
  gauge(
    "quotecast_outbound_memory_bytes",
    "Memory those outbound bytes take: socket send queues, messages made for one connection, and a reference per queued message shared by many (held once).",
    () => s.outboundMemoryBytes,
  )
  gauge(
    "quotecast_outbound_budget_limit_bytes",
    "OUTBOUND_BUDGET_BYTES: the total outbound bytes allowed across connections.",
    () => s.outboundBudgetBytes,
  )
  counter(
    "quotecast_outbound_budget_conflations_total",
    "Connections the outbound budget stopped writing to (their state conflated), worst first.",
    () => s.outboundBudgetConflations,
  )
  counter(
    "quotecast_outbound_budget_closes_total",
    "Connections closed with 1013 because the outbound budget stayed exceeded.",
    () => s.outboundBudgetCloses,
  )
  counter(
    "quotecast_outbound_budget_pings_total",
    "Pings the outbound budget sent to learn whether a connection reads (with its first large frame, when an answer waits for room, when refused with an empty socket): one that does not answer may be closed when room is needed.",
    () => s.outboundBudgetProbes,
  )
  counter(
    "quotecast_outbound_budget_answers_delayed_total",
    "Answers with snapshots that waited because what is owed was over half the outbound budget.",
    () => s.outboundAnswersWaited,
  )
  gauge(
    "quotecast_outbound_budget_answers_waiting",
    "Answers with snapshots waiting for room in the outbound budget.",
    () => s.outboundAnswersWaiting,
  )
  counter(
    "quotecast_flush_large_frames_carried_total",
    "Frames over OUTBOUND_FREE_WRITE_BYTES a flush pass left for the next (FLUSH_LARGE_FRAMES_MS spent): a burst of snapshots being spread over passes.",
    () => s.largeFramesCarried,
  )
  counter(
    "quotecast_events_published_total",
    "Market events that entered the pipeline here.",
    () => s.eventsPublished,
  )
  counter("quotecast_candle_trades_total", "Trades built into bars (feed leader).", () => s.candles.trades)
  counter(
    "quotecast_candle_bars_closed_total",
    "Bars closed, all intervals (feed leader).",
    () => s.candles.barsClosed,
  )
  counter(
    "quotecast_candle_trades_outside_session_total",
    "Trades outside every KRX session (MARKET_CLOCK=krx): in no bar.",
    () => s.candles.outsideSession,
  )
  counter(
    "quotecast_candle_late_trades_total",
    "Trades stamped in a closed bar with no later bar to join: in no bar.",
    () => s.candles.late,
  )
  counter(
    "quotecast_sessions_persisted_total",
    "Attached sessions written to Redis by the persistence clock (SESSION_PERSIST_INTERVAL_MS).",
    () => s.sessionsPersisted,
  )
  counter(
    "quotecast_session_persist_failures_total",
    "Session persistence ticks whose writes failed (retried on the next tick).",
    () => s.sessionPersistFailures,
  )
  counter(
    "quotecast_session_sequence_jumps_total",
    "Sessions restored after their instance crashed, numbering continued past the reserved ceiling.",
    () => s.sessionSequenceJumps,
  )
  counter(
    "quotecast_session_sequence_overruns_total",
    "Connections seen past their reserved sequence ceiling (SESSION_SEQUENCE_BLOCK too small).",
    () => s.sessionSequenceOverruns,
  )
  counter(
    "quotecast_redis_data_lost_total",
    "Recoveries that found Redis had lost this cluster's data (restarted empty).",
    () => s.redisDataLost,
  )
  byLabel(
    "quotecast_redis_decode_failures_total",
    "Values read from Redis that did not have the shape this version writes (skipped, or the command failed), by what they were.",
    "what",
    () => s.redisDecodeFailures,
  )
  counter(
    "quotecast_saved_sessions_count_failures_total",
    "Reads of the saved-session count that failed (/v1/ws/stats answered saved_sessions null with saved_sessions_error).",
    () => s.savedSessionCountFailures,
  )
  counter(
    "quotecast_alert_fire_retries_total",
    "Alerts marked fired again with the same token after an attempt whose outcome was unknown (failed or timed out).",
    () => s.alertFireRetries,
  )
  gauge(
    "quotecast_unsent_user_messages",
    "User messages (alerts) waiting to be sent through Redis after their durable publish failed.",
    () => s.unsentUserMessages,
  )
  counter(
    "quotecast_unsent_user_messages_dropped_total",
    "Unsent user messages dropped, oldest first, past UNSENT_USER_MESSAGES_MAX (never sent to the other instances).",
    () => s.unsentUserMessagesDropped,
  )
  gauge("quotecast_topics_local", "Topics with at least one subscriber on this instance.", () => g().topics)
  counter(
    "quotecast_setup_admission_queued_total",
    "Connections that waited for a setup slot (SETUP_CONCURRENCY), before or after their handshake.",
    () => s.admissionQueued,
  )
  byLabel(
    "quotecast_setup_admission_rejected_total",
    "Connections refused a setup slot (HTTP 503 before the handshake, close 1013 after it), by reason.",
    "reason",
    () => [
      ["queue_full", s.admissionRejectedQueueFull],
      ["timeout", s.admissionRejectedTimeout],
    ],
  )
  counter(
    "quotecast_setup_admission_abandoned_total",
    "Upgrades whose client went away while they waited for a setup slot, before their handshake.",
    () => s.admissionAbandoned,
  )
  gauge("quotecast_setups_in_flight", "Connection setups holding a slot.", () => s.setupsInFlight)
  gauge(
    "quotecast_setups_in_flight_peak",
    "Most connection setups ever in flight at once.",
    () => s.setupsInFlightPeak,
  )
  gauge("quotecast_setups_waiting", "Connection setups waiting for a slot.", () => s.setupsWaiting)
  registry.registerMetric(s.admissionWaitMs)
  byLabel(
    "quotecast_http_rejections_total",
    "HTTP requests refused by a body or ingest limit, or before their body for a missing token or role, by reason.",
    "reason",
    () => s.httpRejections,
  )
  byLabel(
    "quotecast_ws_admission_rejections_total",
    "WebSocket upgrades refused by a cap or rate (429/503), and TCP connections dropped past the total (tcp_total), by reason.",
    "reason",
    () => s.admissionRejections,
  )
  byLabel(
    "quotecast_http_client_errors_total",
    "Sockets closed before a complete request: handshake/request timeout (408), malformed (400), headers too large (431).",
    "reason",
    () => s.httpClientErrors,
  )
  byLabel(
    "quotecast_token_rejections_total",
    "Tokens refused (INVALID_TOKEN on the WebSocket, 401 over HTTP), by reason.",
    "reason",
    () => s.tokenRejections,
  )
  registry.registerMetric(s.batchSize)
  registry.registerMetric(s.flushPassMs)
  registry.registerMetric(s.deliveryLatencyMs)

  // One registry with both, merged once: both sets of metrics are fixed from here on.
  const all = Registry.merge([processRegistry(), registry])
  return {
    text: () => all.metrics(),
    summary: () => readSummary(s, g),
  }
}
