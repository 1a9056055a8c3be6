/**
 * Evaluates alerts against every price update that goes through the pipeline. An event enters
 * the pipeline exactly once cluster-wide (on the instance that simulated or ingested it), and
 * `AlertStore.markFired` admits one winner, so each alert fires once. A fired alert goes to the
 * user's topic (every live connection of the user, on any instance) and into the user's
 * released sessions, to be delivered on restore.
 *
 * Firing is kept off the pipeline: the observer only evaluates conditions (in memory) and notes
 * the crossed alerts; one fiber fires them in chunks, each chunk marked fired in one store call
 * (one Redis round trip) under a fresh token, its alerts grouped by user (one publish of all a user's bodies, one
 * append to that user's saved sessions), and hands Node's event loop a turn between chunks. A
 * price that crosses every alert of a user with every saved session therefore neither holds up
 * the feed nor keeps other connections' pongs and prices waiting behind it.
 *
 * An alert whose marking failed or timed out may have been marked in Redis anyway (a stalled
 * Redis runs the script after the client gave up), under that call's token: it is retried every
 * second with the same token, which the store counts as a win, until it is won (delivered) or
 * lost to another caller (fired elsewhere, deleted). A new crossing does not fire it meanwhile.
 */
import { randomUUID } from "node:crypto"
import { Clock, Effect, Layer, Queue } from "effect"
import { Broker, type Published } from "../broker/Broker.js"
import { yieldToIo } from "../lifecycle/EventLoop.js"
import { GatewayStats } from "../metrics/GatewayStats.js"
import { MarketPipeline } from "../pipeline/MarketPipeline.js"
import { nowIso, openBody } from "../protocol/encode.js"
import type { AlertMessage, PriceUpdate } from "../protocol/server.js"
import { userTopic } from "../protocol/topics.js"
import { SessionStore } from "../session/SessionStore.js"
import { type AlertRecord, AlertStore } from "./AlertStore.js"

/** Made at startup: the first number formatting loads ICU's data (about 60 ms), not the first alert. */
const thousands = new Intl.NumberFormat("en-US")
const krw = (n: number) => `${thousands.format(n)} KRW`
const pct = (n: number) => `${n > 0 ? "+" : ""}${n.toFixed(2)}%`

export const conditionHolds = (a: AlertRecord, p: PriceUpdate): boolean => {
  switch (a.alertType) {
    case "price_above":
      return p.price > a.threshold
    case "price_below":
      return p.price < a.threshold
    case "change_percent_above":
      return p.change_percent > a.threshold
    case "change_percent_below":
      return p.change_percent < a.threshold
  }
}

/** Worded like the original document: "Samsung Electronics exceeded 75,000 KRW". */
export const alertText = (a: AlertRecord, p: PriceUpdate): string => {
  switch (a.alertType) {
    case "price_above":
      return `${p.name} exceeded ${krw(a.threshold)}`
    case "price_below":
      return `${p.name} fell below ${krw(a.threshold)}`
    case "change_percent_above":
      return `${p.name} rose above ${pct(a.threshold)} (now ${pct(p.change_percent)})`
    case "change_percent_below":
      return `${p.name} fell below ${pct(a.threshold)} (now ${pct(p.change_percent)})`
  }
}

/**
 * Alerts fired per chunk: one markFired round trip, then a turn of the event loop. Small enough
 * that a chunk's writes (in cluster mode every body once per saved session of its user, about
 * 150 KB at 25 alerts and 20 sessions) hold the event loop for a few ms, not tens.
 */
const CHUNK = 25

/** How often alerts whose firing outcome is unknown are tried again (one clock for all). */
const RETRY_EVERY = "1 second"

interface Crossing {
  readonly alert: AlertRecord
  readonly price: PriceUpdate
}

interface Unsettled {
  readonly crossing: Crossing
  /** The token and time of the first attempt: a retry must use both. */
  readonly token: string
  readonly at: number
}

const alertBody = (a: AlertRecord, p: PriceUpdate, at: number): string => {
  const msg: AlertMessage = {
    type: "alert",
    alert_id: a.id,
    code: a.code,
    alert_type: a.alertType,
    threshold: a.threshold,
    current_price: p.price,
    message: alertText(a, p),
    timestamp: nowIso(at),
  }
  return openBody(msg)
}

export const AlertEngineLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const pipeline = yield* MarketPipeline
    const alerts = yield* AlertStore
    const broker = yield* Broker
    const sessions = yield* SessionStore
    const stats = yield* GatewayStats

    /** Crossed alerts not yet fired, by id (the first crossing's price wins): at most every active alert once. */
    const pending = new Map<string, Crossing>()
    /**
     * Alerts whose `markFired` outcome is unknown (a timeout: Redis may have marked them under
     * the call's token), by id, with that token and time: retried with them until won or lost.
     */
    const unsettled = new Map<string, Unsettled>()
    const wake = yield* Queue.sliding<true>(1)

    const deliver = (chunk: ReadonlyArray<Crossing>, won: ReadonlySet<string>, at: number) =>
      Effect.gen(function* () {
        stats.alertsFired += won.size
        const byUser = new Map<string, Array<{ readonly id: string; readonly body: string }>>()
        for (const { alert, price } of chunk) {
          if (!won.has(alert.id)) continue
          const fired = { id: alert.id, body: alertBody(alert, price, at) }
          const mine = byUser.get(alert.userId)
          if (mine === undefined) byUser.set(alert.userId, [fired])
          else mine.push(fired)
        }
        for (const [userId, fired] of byUser) {
          const topic = userTopic(userId)
          yield* broker.publishAll(
            fired.map(({ body }): Published => ({ topic, msg: { key: undefined, body } })),
          )
          yield* sessions
            .appendAlerts(
              userId,
              fired.map((f) => f.body),
            )
            .pipe(
              Effect.catchAll((e) =>
                Effect.logWarning("fired alerts not kept for saved sessions", e.reason).pipe(
                  Effect.annotateLogs({ user_id: userId, alerts: fired.length }),
                ),
              ),
            )
          yield* Effect.logInfo("alerts fired").pipe(
            Effect.annotateLogs({ user_id: userId, alert_ids: fired.map((f) => f.id).join(",") }),
          )
        }
      })

    /**
     * One markFired call under `token`, then delivery of what it won. What it cannot settle
     * (failed or timed out: Redis may still mark it under this token) is kept with the token,
     * never tried under a new one: that could only lose to the first (issue 12).
     */
    const fire = (chunk: ReadonlyArray<Crossing>, token: string, at: number) =>
      Effect.gen(function* () {
        const { won, unknown } = yield* alerts
          .markFired(
            chunk.map((c) => c.alert),
            at,
            token,
          )
          .pipe(
            Effect.catchAll((e) =>
              Effect.as(
                Effect.logWarning("alert firing failed; retried with the same token", e.reason).pipe(
                  Effect.annotateLogs({ alerts: chunk.length }),
                ),
                { won: new Set<string>(), unknown: chunk.map((c) => c.alert.id) },
              ),
            ),
          )
        const open = new Set(unknown)
        for (const crossing of chunk) {
          if (open.has(crossing.alert.id)) unsettled.set(crossing.alert.id, { crossing, token, at })
          else unsettled.delete(crossing.alert.id)
        }
        if (won.size > 0) yield* deliver(chunk, won, at)
      })

    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (pending.size === 0) return Effect.void
      const chunk: Array<Crossing> = []
      for (const [id, c] of pending) {
        pending.delete(id)
        chunk.push(c)
        if (chunk.length === CHUNK) break
      }
      return Effect.flatMap(Clock.currentTimeMillis, (at) => fire(chunk, randomUUID(), at)).pipe(
        Effect.zipRight(yieldToIo),
        Effect.zipRight(drain),
      )
    })
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Queue.take(wake), drain)))

    /** Each unsettled chunk again, under its own token, in chunks of at most CHUNK. */
    const retry = Effect.suspend(() => {
      if (unsettled.size === 0) return Effect.void
      const byToken = new Map<string, { readonly at: number; readonly chunk: Array<Crossing> }>()
      for (const { crossing, token, at } of unsettled.values()) {
        const group = byToken.get(token)
        if (group === undefined) byToken.set(token, { at, chunk: [crossing] })
        else group.chunk.push(crossing)
      }
      return Effect.forEach(
        byToken,
        ([token, { at, chunk }]) => {
          stats.alertFireRetries += chunk.length
          return Effect.zipRight(fire(chunk, token, at), yieldToIo)
        },
        { discard: true },
      )
    })
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(RETRY_EVERY), retry)))

    yield* pipeline.observe((events) =>
      Effect.gen(function* () {
        let crossed = false
        for (const e of events) {
          if (e.type !== "price_update") continue
          for (const a of yield* alerts.activeFor(e.code)) {
            if (!pending.has(a.id) && !unsettled.has(a.id) && conditionHolds(a, e)) {
              pending.set(a.id, { alert: a, price: e })
              crossed = true
            }
          }
        }
        if (crossed) yield* Queue.offer(wake, true)
      }).pipe(Effect.catchAll((err) => Effect.logError("alert evaluation failed", err))),
    )
  }),
)
