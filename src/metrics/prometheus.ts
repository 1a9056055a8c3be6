/**
 * Prometheus text exposition (format 0.0.4) of one instance's GatewayStats.
 */
import type { GatewayStatsImpl, Histogram } from "./GatewayStats.js"

export interface Gauges {
  readonly queuedMessages: number
  readonly activeConnections: number
  readonly topics: number
}

const line = (out: Array<string>, name: string, type: string, help: string, value: number) => {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`)
}

const histogram = (out: Array<string>, name: string, help: string, h: Histogram) => {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`)
  let cumulative = 0
  h.bounds.forEach((b, i) => {
    cumulative += h.counts[i] as number
    out.push(`${name}_bucket{le="${b}"} ${cumulative}`)
  })
  out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`)
}

const labelled = (
  out: Array<string>,
  name: string,
  help: string,
  byReason: ReadonlyMap<string, number>,
  label = "reason",
) => {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`)
  for (const [reason, n] of byReason) out.push(`${name}{${label}="${reason}"} ${n}`)
}

export const renderPrometheus = (s: GatewayStatsImpl, g: Gauges): string => {
  const out: Array<string> = []
  line(out, "quotecast_connections_active", "gauge", "Open WebSocket connections.", g.activeConnections)
  line(
    out,
    "quotecast_connections_opened_total",
    "counter",
    "WebSocket connections accepted.",
    s.connectionsOpened,
  )
  out.push(
    "# HELP quotecast_connections_closed_total WebSocket connections closed, by close code.",
    "# TYPE quotecast_connections_closed_total counter",
  )
  for (const [code, n] of s.closesByCode) out.push(`quotecast_connections_closed_total{code="${code}"} ${n}`)
  line(
    out,
    "quotecast_messages_sent_total",
    "counter",
    "Protocol messages sent (inside batches counted one by one).",
    s.messagesSent,
  )
  line(out, "quotecast_frames_sent_total", "counter", "WebSocket data frames sent.", s.framesSent)
  line(
    out,
    "quotecast_bytes_sent_total",
    "counter",
    "Payload characters sent, before compression.",
    s.bytesSent,
  )
  line(
    out,
    "quotecast_wire_bytes_sent_total",
    "counter",
    "Payload bytes written to sockets, after compression.",
    s.bytesOnWire,
  )
  line(
    out,
    "quotecast_compressed_frames_total",
    "counter",
    "Frames sent compressed (permessage-deflate).",
    s.compressedFrames,
  )
  line(out, "quotecast_messages_received_total", "counter", "Client messages received.", s.messagesReceived)
  line(out, "quotecast_queue_depth", "gauge", "Messages waiting in connection outboxes.", g.queuedMessages)
  line(
    out,
    "quotecast_conflated_total",
    "counter",
    "Queued state messages replaced by a newer one.",
    s.conflated,
  )
  line(
    out,
    "quotecast_rate_limit_rejections_total",
    "counter",
    "Client messages rejected by the rate limit.",
    s.rateLimitRejections,
  )
  line(
    out,
    "quotecast_decode_errors_total",
    "counter",
    "Client messages answered with INVALID_MESSAGE.",
    s.decodeErrors,
  )
  out.push(
    "# HELP quotecast_ws_frames_rejected_total Client frames refused by a WebSocket input limit before parsing, by reason.",
    "# TYPE quotecast_ws_frames_rejected_total counter",
  )
  for (const [reason, n] of Object.entries(s.wsFramesRejected))
    out.push(`quotecast_ws_frames_rejected_total{reason="${reason}"} ${n}`)
  line(
    out,
    "quotecast_ws_input_cost_total",
    "counter",
    "Rate-limit tokens charged for client frames (1 per ordinary message; more for large or invalid frames).",
    s.wsInputCost,
  )
  line(
    out,
    "quotecast_slow_consumer_closes_total",
    "counter",
    "Connections closed with 1013 for not reading.",
    s.slowConsumerCloses,
  )
  line(out, "quotecast_alerts_fired_total", "counter", "Alerts fired by this instance.", s.alertsFired)
  line(
    out,
    "quotecast_alerts_cached",
    "gauge",
    "Cluster mode: active alerts in this instance's cache of the shared set, kept in sync through Redis.",
    s.alertsCached,
  )
  line(
    out,
    "quotecast_alert_limit_rejections_total",
    "counter",
    "Alert creations refused with 429 (MAX_ALERTS_PER_USER).",
    s.alertLimitRejections,
  )
  out.push(
    "# HELP quotecast_sessions_evicted_total Saved sessions dropped or not saved, by reason.",
    "# TYPE quotecast_sessions_evicted_total counter",
  )
  for (const reason of ["user_limit", "address_limit", "anonymous_limit"])
    out.push(`quotecast_sessions_evicted_total{reason="${reason}"} ${s.sessionsEvicted.get(reason) ?? 0}`)
  line(
    out,
    "quotecast_session_alerts_dropped_total",
    "counter",
    "Alerts dropped from a saved session's kept alerts (over MAX_ALERTS_PER_USER per session).",
    s.sessionAlertsDropped,
  )
  line(
    out,
    "quotecast_http_body_budget_used_bytes",
    "gauge",
    "Request-body bytes held now by requests in flight (HTTP_BODY_BUDGET_BYTES).",
    s.httpBodyBytesHeld,
  )
  line(
    out,
    "quotecast_outbound_budget_used_bytes",
    "gauge",
    "Outbound bytes held for clients (socket send queues plus outboxes) at the last flush pass.",
    s.outboundBytes,
  )
  line(
    out,
    "quotecast_outbound_budget_limit_bytes",
    "gauge",
    "OUTBOUND_BUDGET_BYTES: the total outbound bytes allowed across connections.",
    s.outboundBudgetBytes,
  )
  line(
    out,
    "quotecast_outbound_budget_conflations_total",
    "counter",
    "Connections the outbound budget stopped writing to (their state conflated), worst first.",
    s.outboundBudgetConflations,
  )
  line(
    out,
    "quotecast_outbound_budget_closes_total",
    "counter",
    "Connections closed with 1013 because the outbound budget stayed exceeded.",
    s.outboundBudgetCloses,
  )
  line(
    out,
    "quotecast_events_published_total",
    "counter",
    "Market events that entered the pipeline here.",
    s.eventsPublished,
  )
  line(
    out,
    "quotecast_candle_trades_total",
    "counter",
    "Trades built into bars (feed leader).",
    s.candles.trades,
  )
  line(
    out,
    "quotecast_candle_bars_closed_total",
    "counter",
    "Bars closed, all intervals (feed leader).",
    s.candles.barsClosed,
  )
  line(
    out,
    "quotecast_candle_trades_outside_session_total",
    "counter",
    "Trades outside every KRX session (MARKET_CLOCK=krx): in no bar.",
    s.candles.outsideSession,
  )
  line(
    out,
    "quotecast_candle_late_trades_total",
    "counter",
    "Trades stamped in a closed bar with no later bar to join: in no bar.",
    s.candles.late,
  )
  line(
    out,
    "quotecast_sessions_persisted_total",
    "counter",
    "Attached sessions written to Redis by the persistence clock (SESSION_PERSIST_INTERVAL_MS).",
    s.sessionsPersisted,
  )
  line(
    out,
    "quotecast_session_persist_failures_total",
    "counter",
    "Session persistence ticks whose writes failed (retried on the next tick).",
    s.sessionPersistFailures,
  )
  line(
    out,
    "quotecast_session_sequence_jumps_total",
    "counter",
    "Sessions restored after their instance crashed, numbering continued past the reserved ceiling.",
    s.sessionSequenceJumps,
  )
  line(
    out,
    "quotecast_session_sequence_overruns_total",
    "counter",
    "Connections seen past their reserved sequence ceiling (SESSION_SEQUENCE_BLOCK too small).",
    s.sessionSequenceOverruns,
  )
  line(
    out,
    "quotecast_redis_data_lost_total",
    "counter",
    "Recoveries that found Redis had lost this cluster's data (restarted empty).",
    s.redisDataLost,
  )
  labelled(
    out,
    "quotecast_redis_decode_failures_total",
    "Values read from Redis that did not have the shape this version writes (skipped, or the command failed), by what they were.",
    s.redisDecodeFailures,
    "what",
  )
  line(
    out,
    "quotecast_saved_sessions_count_failures_total",
    "counter",
    "Reads of the saved-session count that failed (/v1/ws/stats answered saved_sessions null with saved_sessions_error).",
    s.savedSessionCountFailures,
  )
  line(
    out,
    "quotecast_alert_fire_retries_total",
    "counter",
    "Alerts marked fired again with the same token after an attempt whose outcome was unknown (failed or timed out).",
    s.alertFireRetries,
  )
  line(
    out,
    "quotecast_unsent_user_messages",
    "gauge",
    "User messages (alerts) waiting to be sent through Redis after their durable publish failed.",
    s.unsentUserMessages,
  )
  line(
    out,
    "quotecast_unsent_user_messages_dropped_total",
    "counter",
    "Unsent user messages dropped, oldest first, past UNSENT_USER_MESSAGES_MAX (never sent to the other instances).",
    s.unsentUserMessagesDropped,
  )
  line(
    out,
    "quotecast_topics_local",
    "gauge",
    "Topics with at least one subscriber on this instance.",
    g.topics,
  )
  line(
    out,
    "quotecast_setup_admission_queued_total",
    "counter",
    "Connections that waited for a setup slot (SETUP_CONCURRENCY), before or after their handshake.",
    s.admissionQueued,
  )
  out.push(
    "# HELP quotecast_setup_admission_rejected_total Connections refused a setup slot (HTTP 503 before the handshake, close 1013 after it), by reason.",
    "# TYPE quotecast_setup_admission_rejected_total counter",
    `quotecast_setup_admission_rejected_total{reason="queue_full"} ${s.admissionRejectedQueueFull}`,
    `quotecast_setup_admission_rejected_total{reason="timeout"} ${s.admissionRejectedTimeout}`,
  )
  line(
    out,
    "quotecast_setup_admission_abandoned_total",
    "counter",
    "Upgrades whose client went away while they waited for a setup slot, before their handshake.",
    s.admissionAbandoned,
  )
  line(out, "quotecast_setups_in_flight", "gauge", "Connection setups holding a slot.", s.setupsInFlight)
  line(
    out,
    "quotecast_setups_in_flight_peak",
    "gauge",
    "Most connection setups ever in flight at once.",
    s.setupsInFlightPeak,
  )
  line(out, "quotecast_setups_waiting", "gauge", "Connection setups waiting for a slot.", s.setupsWaiting)
  histogram(
    out,
    "quotecast_setup_admission_wait_ms",
    "How long admitted connection setups waited for a slot.",
    s.admissionWaitMs,
  )
  labelled(
    out,
    "quotecast_http_rejections_total",
    "HTTP requests refused by a body or ingest limit, or before their body for a missing token or role, by reason.",
    s.httpRejections,
  )
  labelled(
    out,
    "quotecast_ws_admission_rejections_total",
    "WebSocket upgrades refused by a cap or rate (429/503), and TCP connections dropped past the total (tcp_total), by reason.",
    s.admissionRejections,
  )
  labelled(
    out,
    "quotecast_http_client_errors_total",
    "Sockets closed before a complete request: handshake/request timeout (408), malformed (400), headers too large (431).",
    s.httpClientErrors,
  )
  labelled(
    out,
    "quotecast_token_rejections_total",
    "Tokens refused (INVALID_TOKEN on the WebSocket, 401 over HTTP), by reason.",
    s.tokenRejections,
  )
  histogram(out, "quotecast_batch_size", "Messages per flushed frame.", s.batchSize)
  histogram(
    out,
    "quotecast_flush_pass_ms",
    "Duration of one flush pass over dirty connections.",
    s.flushPassMs,
  )
  return `${out.join("\n")}\n`
}
