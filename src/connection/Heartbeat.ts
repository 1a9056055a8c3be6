/**
 * Half-open socket detection with one clock for all connections: every HEARTBEAT_INTERVAL_MS,
 * a connection that answered nothing since the previous sweep is terminated, and every other
 * one gets a WebSocket ping (browsers answer pings with pongs automatically).
 */
import { Effect, Layer, Schedule } from "effect"
import { WebSocket } from "ws"
import { AppConfig } from "../config/AppConfig.js"
import { Registry } from "./Registry.js"

export const HeartbeatLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const registry = yield* Registry
    const sweep = Effect.sync(() => {
      for (const conn of registry.byId.values()) {
        if (conn.ws.readyState !== WebSocket.OPEN) continue
        if (!conn.alive) {
          conn.requestClose({ code: 1006, reason: "heartbeat timeout", flush: false })
          conn.ws.terminate()
          continue
        }
        conn.alive = false
        conn.ws.ping()
      }
    })
    yield* Effect.forkScoped(
      Effect.repeat(sweep, Schedule.spaced(`${config.heartbeatIntervalMs} millis`)).pipe(
        Effect.delay(`${config.heartbeatIntervalMs} millis`),
      ),
    )
  }),
)
