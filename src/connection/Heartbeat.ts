/**
 * Half-open socket detection: every connection is visited once per HEARTBEAT_INTERVAL_MS, in
 * its slice of the interval (`Sweep.ts`: one clock for every connection, spread so that no
 * moment pings everyone). One that answered nothing since its previous visit is terminated;
 * every other one gets a WebSocket ping (browsers answer pings with pongs automatically).
 */
import { Effect, Layer } from "effect"
import { WebSocket } from "ws"
import { AppConfig } from "../config/AppConfig.js"
import { CloseCode } from "../protocol/errors.js"
import type { Conn } from "./Conn.js"
import { Registry } from "./Registry.js"
import { sweepInSlices } from "./Sweep.js"

const visit = (conn: Conn): void => {
  if (conn.ws.readyState !== WebSocket.OPEN) return
  if (!conn.alive) {
    conn.requestClose({ code: CloseCode.abnormal, reason: "heartbeat timeout", flush: false })
    conn.ws.terminate()
    return
  }
  conn.alive = false
  conn.ws.ping()
}

const visitAll = (conns: ReadonlyArray<Conn>) =>
  Effect.sync(() => {
    for (const conn of conns) visit(conn)
  })

export const HeartbeatLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const registry = yield* Registry
    yield* Effect.forkScoped(sweepInSlices(registry, config.heartbeatIntervalMs, visitAll))
  }),
)
