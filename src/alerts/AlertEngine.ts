/**
 * Evaluates alerts against every price update that goes through the pipeline. An event enters
 * the pipeline exactly once cluster-wide (on the instance that simulated or ingested it), and
 * `AlertStore.markFired` admits one winner, so each alert fires once. A fired alert goes to the
 * user's topic (every live connection of the user, on any instance) and into the user's
 * released sessions, to be delivered on restore.
 */
import { Clock, Effect, Layer } from "effect"
import { Broker } from "../broker/Broker.js"
import { userTopic } from "../broker/topics.js"
import { MarketPipeline } from "../feed/MarketPipeline.js"
import { nowIso, openBody } from "../protocol/encode.js"
import type { AlertMessage, PriceUpdate } from "../protocol/server.js"
import { SessionStore } from "../session/SessionStore.js"
import { type AlertRecord, AlertStore } from "./AlertStore.js"

const krw = (n: number) => `${n.toLocaleString("en-US")} KRW`
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

export const AlertEngineLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const pipeline = yield* MarketPipeline
    const alerts = yield* AlertStore
    const broker = yield* Broker
    const sessions = yield* SessionStore

    const fire = (a: AlertRecord, p: PriceUpdate) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        if (!(yield* alerts.markFired(a.id, at))) return
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
        const body = openBody(msg)
        yield* broker.publish(userTopic(a.userId), { key: undefined, body })
        yield* sessions.appendAlert(a.userId, body)
        yield* Effect.logInfo("alert fired").pipe(
          Effect.annotateLogs({ alert_id: a.id, user_id: a.userId, code: a.code }),
        )
      })

    yield* pipeline.observe((events) =>
      Effect.forEach(
        events,
        (e) =>
          e.type !== "price_update"
            ? Effect.void
            : Effect.flatMap(alerts.activeFor(e.code), (active) =>
                Effect.forEach(active, (a) => (conditionHolds(a, e) ? fire(a, e) : Effect.void), {
                  discard: true,
                }),
              ),
        { discard: true },
      ).pipe(Effect.catchAll((err) => Effect.logError("alert evaluation failed", err))),
    )
  }),
)
