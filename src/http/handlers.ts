/**
 * Implementations of the HttpApi groups in `Api.ts`.
 */
import { randomUUID } from "node:crypto"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Clock, Effect, Either, Layer, Option } from "effect"
import { type AlertRecord, AlertStore, type AlertStoreError } from "../alerts/AlertStore.js"
import { Broker } from "../broker/Broker.js"
import { AppConfig } from "../config/AppConfig.js"
import { InstanceId } from "../config/InstanceId.js"
import { Flusher } from "../connection/Flusher.js"
import { Registry } from "../connection/Registry.js"
import { validateIngest } from "../feed/ingest.js"
import { Lifecycle } from "../lifecycle/Lifecycle.js"
import { Universe } from "../market/Universe.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { makeExposition } from "../metrics/prometheus.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { MarketState } from "../pipeline/MarketState.js"
import { nowIso } from "../protocol/encode.js"
import { SessionStore } from "../session/SessionStore.js"
import {
  type Alert,
  AlertNotFound,
  IngestRejected,
  IngestTooLarge,
  InvalidAlert,
  QuotecastApi,
  StoreUnavailable,
  TooManyAlerts,
  Unavailable,
} from "./Api.js"
import { CurrentUser, requireRole } from "./auth.js"
import { ClusterView } from "./ClusterView.js"
import { CandlesGroupLive } from "./candles.js"

/** The alert store failed (Redis down in cluster mode): 503, and the cause in the log. */
const unavailable = (e: AlertStoreError) =>
  Effect.zipRight(
    Effect.logWarning("alert store unavailable", e.reason),
    Effect.fail(new StoreUnavailable({ message: "Alert store unavailable, try again" })),
  )

const alertView = (a: AlertRecord): Alert => ({
  id: a.id,
  user_id: a.userId,
  code: a.code,
  alert_type: a.alertType,
  threshold: a.threshold,
  status: a.firedAt === null ? "active" : "fired",
  created_at: nowIso(a.createdAt),
  fired_at: a.firedAt === null ? null : nowIso(a.firedAt),
})

export const PublicGroupLive = HttpApiBuilder.group(QuotecastApi, "public", (handlers) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const registry = yield* Registry
    const stats = yield* GatewayStats
    const flusher = yield* Flusher
    const sessions = yield* SessionStore
    const lifecycle = yield* Lifecycle
    const broker = yield* Broker
    const instanceId = yield* InstanceId
    const cluster = yield* ClusterView

    const subscriptionTotals = () => {
      const byType = { stock: 0, market: 0, sector: 0, candle: 0 }
      for (const conn of registry.byId.values()) {
        byType.stock += conn.subs.countOf("stock")
        byType.market += conn.subs.countOf("market")
        byType.sector += conn.subs.countOf("sector")
        byType.candle += conn.subs.countOf("candle")
      }
      return byType
    }

    // prom-client's promises reject only on a bug in a collector: a defect (500), not an answer.
    const exposition = makeExposition(stats, () => ({
      queuedMessages: flusher.queuedMessages(),
      activeConnections: registry.size,
      topics: broker.localTopicCount(),
    }))

    return handlers
      .handle("live", () =>
        Effect.sync(() => ({
          status: "alive" as const,
          instance_id: instanceId,
          uptime_s: Math.round((Date.now() - lifecycle.startedAt) / 1000),
        })),
      )
      .handle("health", () =>
        Effect.gen(function* () {
          const redis = yield* broker.degraded
          const dependencies: Record<string, string> =
            cluster.mode === "cluster" ? { redis: redis ?? "ok" } : { redis: "not_used" }
          if (lifecycle.draining) {
            return yield* new Unavailable({ status: "draining", reason: "shutting down", dependencies })
          }
          if (redis !== undefined) {
            return yield* new Unavailable({
              status: "degraded",
              reason: `redis ${redis}`,
              dependencies,
            })
          }
          return {
            status: "ok" as const,
            instance_id: instanceId,
            mode: cluster.mode,
            uptime_s: Math.round((Date.now() - lifecycle.startedAt) / 1000),
            active_connections: registry.size,
            dependencies,
          }
        }),
      )
      .handle("stats", () =>
        Effect.gen(function* () {
          const byType = subscriptionTotals()
          // Unknown is said as such (the store logs and counts the failure), never as 0.
          const saved = yield* Effect.either(sessions.savedCount)
          const local = {
            active_connections: registry.size,
            total_subscriptions: byType.stock + byType.market + byType.sector,
            subscriptions_by_type: byType,
            messages_sent: stats.messagesSent,
          }
          const clusterStats = yield* cluster.snapshot(local)
          return {
            ...local,
            saved_sessions: Either.getOrNull(saved),
            ...(Either.isLeft(saved) ? { saved_sessions_error: saved.left.reason } : {}),
            batching_enabled: config.batching,
            batch_interval_ms: config.batchIntervalMs,
            queued_messages: flusher.queuedMessages(),
            rate_limiting_enabled: true,
            rate_limit: config.rateLimit,
            instance_id: instanceId,
            frames_sent: stats.framesSent,
            conflated_messages: stats.conflated,
            events_published: stats.eventsPublished,
            ...(Option.isSome(clusterStats) ? { cluster: clusterStats.value } : {}),
          }
        }),
      )
      .handle("metrics", () => Effect.promise(exposition.text))
      .handle("metricsSummary", () => Effect.promise(exposition.summary))
  }),
)

export const AdminGroupLive = HttpApiBuilder.group(QuotecastApi, "admin", (handlers) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const stats = yield* GatewayStats
    const registry = yield* Registry
    const pipeline = yield* MarketPipeline
    const universe = yield* Universe
    const state = yield* MarketState
    return handlers
      .handle("connections", () =>
        Effect.gen(function* () {
          yield* requireRole("admin")
          return [...registry.byId.values()].map((conn) => ({
            connection_id: conn.id,
            user_id: conn.userId,
            session_id: conn.sessionId,
            connected_at: nowIso(conn.connectedAt),
            subscriptions: conn.subscriptions(),
            message_count: conn.messagesSent + conn.messagesReceived,
            last_activity: nowIso(conn.lastActivity),
            queued_messages: conn.outbox.size,
            buffered_bytes: conn.ws.bufferedAmount,
          }))
        }),
      )
      .handle("ingest", ({ payload }) =>
        Effect.gen(function* () {
          yield* requireRole("publisher", "admin")
          const total = payload.events.length
          if (total > config.ingestMaxEvents) {
            stats.httpRejected("too_many_events")
            return yield* new IngestTooLarge({
              message: `${total} events in one request; at most ${config.ingestMaxEvents} are accepted (INGEST_MAX_EVENTS)`,
              max_events: config.ingestMaxEvents,
            })
          }
          const now = yield* Clock.currentTimeMillis
          const { accepted, rejected, rejectedCount } = validateIngest(
            payload.events,
            universe,
            state,
            now,
            config.ingestMaxReportedRejections,
          )
          if (rejectedCount > 0) {
            const listed = rejected.length < rejectedCount ? `; the first ${rejected.length} are listed` : ""
            return yield* new IngestRejected({
              message: `${rejectedCount} of ${total} events rejected; none were published${listed}`,
              rejected,
              rejected_count: rejectedCount,
            })
          }
          yield* pipeline.publish(accepted)
          return { accepted: accepted.length }
        }),
      )
  }),
)

export const UserGroupLive = HttpApiBuilder.group(QuotecastApi, "user", (handlers) =>
  Effect.gen(function* () {
    const alerts = yield* AlertStore
    const universe = yield* Universe
    const config = yield* AppConfig
    const stats = yield* GatewayStats
    return handlers
      .handle("me", () =>
        Effect.map(CurrentUser, (u) => ({
          user_id: u.userId,
          role: u.role ?? null,
          expires_at: u.expiresAt === undefined ? null : nowIso(u.expiresAt),
        })),
      )
      .handle("createAlert", ({ payload }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          if (!universe.byCode.has(payload.code)) {
            return yield* new InvalidAlert({ message: `Unknown stock code ${payload.code}` })
          }
          if (payload.alert_type.startsWith("price_") && payload.threshold <= 0) {
            return yield* new InvalidAlert({ message: "A price threshold must be positive" })
          }
          const record: AlertRecord = {
            id: randomUUID(),
            userId: user.userId,
            code: payload.code,
            alertType: payload.alert_type,
            threshold: payload.threshold,
            createdAt: yield* Clock.currentTimeMillis,
            firedAt: null,
          }
          yield* alerts.create(record, config.maxAlertsPerUser).pipe(
            Effect.catchTags({
              AlertStoreError: unavailable,
              AlertLimitReached: ({ limit }) => {
                stats.alertLimitRejections++
                return Effect.fail(
                  new TooManyAlerts({
                    message: `Alert limit reached: at most ${limit} alerts per user (active, or fired within 7 days); delete some to create more`,
                    limit,
                  }),
                )
              },
            }),
          )
          return alertView(record)
        }),
      )
      .handle("listAlerts", () =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          const list = yield* alerts.list(user.userId).pipe(Effect.catchAll(unavailable))
          return list.map(alertView)
        }),
      )
      .handle("deleteAlert", ({ path }) =>
        Effect.gen(function* () {
          const user = yield* CurrentUser
          const removed = yield* alerts.remove(user.userId, path.id).pipe(Effect.catchAll(unavailable))
          if (!removed) return yield* new AlertNotFound({ message: `No alert ${path.id}` })
        }),
      )
  }),
)

export const ApiLive = HttpApiBuilder.api(QuotecastApi).pipe(
  Layer.provide([PublicGroupLive, CandlesGroupLive, AdminGroupLive, UserGroupLive]),
)
