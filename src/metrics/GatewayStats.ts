/**
 * Counters and histograms of one gateway instance. Counters and gauges are plain numbers on
 * purpose: they are bumped on the fan-out and flush hot paths, where an Effect per increment would
 * cost more than the work; `prometheus.ts` reads them when `/metrics` is scraped (prom-client
 * metrics with a `collect`). The histograms are prom-client's own, observed where they happen.
 * `/v1/ws/stats`, `/v1/metrics/summary` and `/metrics` all read from here.
 */
import { Context, Layer } from "effect"
import { Histogram } from "prom-client"

/** A histogram of this instance, kept out of any registry until `prometheus.ts` registers it. */
const histogram = (name: string, help: string, buckets: Array<number>) =>
  new Histogram({ name, help, buckets, registers: [] })

/** Bounds of `quotecast_delivery_latency_ms`: 1 ms (one loopback hop) to 5 s (a reader far behind). */
export const DELIVERY_LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]

/** What the delivery histogram needs of a message written out: its event's time, when it has one. */
export interface Timed {
  readonly at?: number | undefined
}

export class GatewayStatsImpl {
  connectionsOpened = 0
  connectionsClosed = 0
  activeConnections = 0
  messagesSent = 0
  framesSent = 0
  /** Characters of JSON written, before compression. */
  bytesSent = 0
  /** Payload bytes handed to sockets, after compression. */
  bytesOnWire = 0
  compressedFrames = 0
  messagesReceived = 0
  conflated = 0
  rateLimitRejections = 0
  decodeErrors = 0
  /** Client frames refused by a WebSocket input limit before JSON.parse, by reason. */
  readonly wsFramesRejected = { too_deep: 0, array_too_long: 0, too_many_members: 0 }
  /** Rate-limit tokens charged for client frames: 1 per ordinary message, more for large or invalid ones. */
  wsInputCost = 0
  eventsPublished = 0
  /** Candles (candles/Candles.ts, on the feed's leader): trades into bars, bars closed, trades in no bar. */
  readonly candles = { trades: 0, barsClosed: 0, outsideSession: 0, late: 0 }
  slowConsumerCloses = 0
  /** Restores that claimed a session after its holder did not let go within SESSION_TAKEOVER_WAIT_MS. */
  sessionTakeoverTimeouts = 0
  /** Outbound bytes held for clients at the last flush pass (socket queues + outboxes). */
  outboundBytes = 0
  /** The memory those bytes take (shared messages once): `OutboundBudget.endPass`. */
  outboundMemoryBytes = 0
  /** Request-body bytes held now (read, or being handled), against HTTP_BODY_BUDGET_BYTES. */
  httpBodyBytesHeld = 0
  /** OUTBOUND_BUDGET_BYTES, for the gauge beside it. */
  outboundBudgetBytes = 0
  /** Connections the outbound budget stopped writing to (conflated), and closed with 1013. */
  outboundBudgetConflations = 0
  outboundBudgetCloses = 0
  /** Pings the outbound budget sent to learn whether connections read (`OutboundBudget.ask`). */
  outboundBudgetProbes = 0
  /** Answers with snapshots that waited for room in the outbound budget (`AnswerGate`). */
  outboundAnswersWaited = 0
  /** Answers waiting for room now, as of the last flush pass. */
  outboundAnswersWaiting = 0
  /** Large frames a flush pass left for the next one (FLUSH_LARGE_FRAMES_MS spent). */
  largeFramesCarried = 0
  // Cluster reliability (cluster/RedisSessionStore.ts, cluster/RedisClient.ts).
  /** Attached sessions written by the persistence clock (subscriptions changed, or a new block of numbers reserved). */
  sessionsPersisted = 0
  /** Persistence ticks whose writes failed (retried on the next tick). */
  sessionPersistFailures = 0
  /** Restores of a session its owner never released (instance crash): numbering jumped forward. */
  sessionSequenceJumps = 0
  /** Connections seen past their reserved sequence ceiling (a crash then could repeat numbers). */
  sessionSequenceOverruns = 0
  /** Recoveries that found Redis had lost our data (restarted empty). */
  redisDataLost = 0
  /** Values read from Redis that did not decode (`cluster/codec.ts`), by what they were. */
  readonly redisDecodeFailures = new Map<string, number>()
  /** Reads of the saved-session count that failed: `/v1/ws/stats` said so instead of a number. */
  savedSessionCountFailures = 0
  /** Alerts tried again (same token) after a markFired whose outcome was unknown (failed or timed out). */
  alertFireRetries = 0
  /** User messages (alerts) waiting to be sent through Redis after their durable publish failed. */
  unsentUserMessages = 0
  /** The oldest of those dropped past UNSENT_USER_MESSAGES_MAX: the other instances never get them. */
  unsentUserMessagesDropped = 0
  // Per-user bounds (alerts/AlertEngine.ts, session stores).
  alertsFired = 0
  /** Cluster mode: active alerts in this instance's cache of the shared set (what it evaluates). */
  alertsCached = 0
  /** Alert creations refused with 429: the user holds MAX_ALERTS_PER_USER. */
  alertLimitRejections = 0
  /** Saved sessions dropped, by reason: user_limit, address_limit, anonymous_limit. */
  readonly sessionsEvicted = new Map<string, number>()
  /** Alerts dropped from a saved session's kept alerts (over MAX_ALERTS_PER_USER per session). */
  sessionAlertsDropped = 0
  sessionEvicted(reason: "user_limit" | "address_limit" | "anonymous_limit", n = 1): void {
    this.sessionsEvicted.set(reason, (this.sessionsEvicted.get(reason) ?? 0) + n)
  }
  // Reconnect storms: admission of connection setups (connection/Admission.ts).
  /** Connections that had to wait for a setup slot (before their handshake, or after it). */
  admissionQueued = 0
  /** Refused (503 before the handshake, 1013 after it): the queue was full, or the wait passed ADMISSION_WAIT_MS. */
  admissionRejectedQueueFull = 0
  admissionRejectedTimeout = 0
  /** Upgrades whose client went away while they waited for a slot (nothing paid but the HTTP parse). */
  admissionAbandoned = 0
  setupsInFlight = 0
  /** The most setups ever in flight at once (never above SETUP_CONCURRENCY). */
  setupsInFlightPeak = 0
  setupsWaiting = 0
  /** TCP connections accepted (`Admission.noteAccept`): a flush pass that sees new ones is sliced (`Flusher.ts`). */
  connectionsAccepted = 0
  /** How long admitted setups waited for their slot, in ms. */
  readonly admissionWaitMs = histogram(
    "quotecast_setup_admission_wait_ms",
    "How long admitted connection setups waited for a slot.",
    [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  )
  readonly closesByCode = new Map<number, number>()
  // HTTP limits and connection admission (http/bodyLimits.ts, http/admission.ts, Server.ts), by reason.
  readonly httpRejections = new Map<string, number>()
  readonly admissionRejections = new Map<string, number>()
  readonly httpClientErrors = new Map<string, number>()
  /** Tokens refused (WebSocket INVALID_TOKEN, HTTP 401), by reason (auth/rejections.ts). */
  readonly tokenRejections = new Map<string, number>()
  readonly batchSize = histogram(
    "quotecast_batch_size",
    "Messages per flushed frame.",
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
  )
  readonly flushPassMs = histogram(
    "quotecast_flush_pass_ms",
    "Duration of one flush pass over dirty connections.",
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
  )
  /**
   * Market event to socket: per write-out (one frame; one per message with batching off), the age
   * of the oldest market event in it when it was handed to the socket. One clock read and one
   * observation per write-out, none per message: the flusher writes tens of thousands of frames a
   * second, and the oldest event is the one a reader waited longest for.
   */
  readonly deliveryLatencyMs = histogram(
    "quotecast_delivery_latency_ms",
    "Age of the oldest market event (its own timestamp) in a frame when the frame was written to the socket.",
    DELIVERY_LATENCY_BUCKETS_MS,
  )
  /** Observes a write-out of `items` (answers and snapshots carry no event time and are not counted). */
  delivered(items: ReadonlyArray<Timed>): void {
    let oldest = Number.POSITIVE_INFINITY
    for (const item of items) {
      const at = item.at
      // NaN (an unparseable time) compares false and is left out.
      if (at !== undefined && at < oldest) oldest = at
    }
    if (oldest === Number.POSITIVE_INFINITY) return
    // A feed whose clock runs ahead of ours would give negative ages: counted as 0.
    this.deliveryLatencyMs.observe(Math.max(0, Date.now() - oldest))
  }
  httpRejected(reason: string): void {
    this.httpRejections.set(reason, (this.httpRejections.get(reason) ?? 0) + 1)
  }
  admissionRejected(reason: string): void {
    this.admissionRejections.set(reason, (this.admissionRejections.get(reason) ?? 0) + 1)
  }
  httpClientError(reason: string): void {
    this.httpClientErrors.set(reason, (this.httpClientErrors.get(reason) ?? 0) + 1)
  }
  redisDecodeFailed(what: string): void {
    this.redisDecodeFailures.set(what, (this.redisDecodeFailures.get(what) ?? 0) + 1)
  }
  tokenRejected(reason: string): void {
    this.tokenRejections.set(reason, (this.tokenRejections.get(reason) ?? 0) + 1)
  }
  closed(code: number): void {
    this.connectionsClosed++
    this.closesByCode.set(code, (this.closesByCode.get(code) ?? 0) + 1)
  }
}

export class GatewayStats extends Context.Tag("quotecast/GatewayStats")<GatewayStats, GatewayStatsImpl>() {
  static readonly layer = Layer.sync(GatewayStats, () => new GatewayStatsImpl())
}
