/**
 * The benchmark's load connections: the load runner's `ConnectionPool` (load/lib), which also
 * tells when each connection last received something (scenario E: "every connection keeps
 * receiving"). quotecast and the bare `ws` baseline speak quotecast's protocol (its default
 * dialect); this file adds Socket.IO's.
 *
 * The Socket.IO dialect speaks Engine.IO 4 over a raw `ws` socket (no socket.io-client: its
 * per-packet decoding and event-emitter plumbing would make the client the bottleneck): `0`
 * open -> send `40`; `40` namespace connected -> `42["subscribe",[codes]]`; `2` ping -> `3`;
 * `42[...]` an event: one message, parsed one in N for latency.
 */
import {
  ConnectionPool,
  type Dialect,
  LATENCY_TYPES,
  type LoadConfig,
  type LoadStats,
  nowMs,
  quotecastDialect,
} from "../../load/lib/index.js"

export type Protocol = "quotecast" | "socketio"

const EVENT_PREFIX = "42"

/** Engine.IO 4 / Socket.IO 5 packets, one per frame. */
export const socketIoDialect: Dialect = {
  url: (configured) => `${configured}?EIO=4&transport=websocket`,
  // Socket.IO subscribes once the namespace handshake is done (see `frame`).
  opened: () => {},
  frame: (pool, conn, buf) => {
    const { stats } = pool
    const first = buf[0]
    if (first === 0x32 /* "2" ping */ && buf.length === 1) {
      conn.ws.send("3")
      return
    }
    if (first === 0x30 /* "0" open */) {
      conn.ws.send("40")
      return
    }
    const text = buf.toString("utf8")
    if (text.startsWith("40")) {
      if (pool.config.subscriptions > 0)
        conn.ws.send(`42${JSON.stringify(["subscribe", pool.codesOf(conn)])}`)
      return
    }
    if (!text.startsWith(EVENT_PREFIX)) return
    pool.count(conn, 1)
    const sampled = pool.sampler.next()
    const subscribed = text.startsWith('42["subscribed"')
    if (!sampled && !subscribed) return
    const receivedAt = nowMs()
    let packet: unknown
    try {
      packet = JSON.parse(text.slice(EVENT_PREFIX.length))
    } catch {
      stats.unparsableFrames++
      return
    }
    if (!Array.isArray(packet)) return
    const [type, data] = packet as [unknown, unknown]
    if (typeof type !== "string" || typeof data !== "object" || data === null) return
    const d = data as { readonly timestamp?: unknown; readonly targets?: unknown }
    if (type === "subscribed" && Array.isArray(d.targets)) stats.subscribedTargets += d.targets.length
    if (!sampled) return
    stats.sampledFrames++
    stats.countType(type)
    if (LATENCY_TYPES.has(type) && typeof d.timestamp === "string") {
      const t = Date.parse(d.timestamp)
      if (Number.isFinite(t)) stats.recordLatency(receivedAt - t)
    }
  },
}

export const makeBenchPool = (protocol: Protocol, config: LoadConfig, stats: LoadStats): ConnectionPool =>
  new ConnectionPool(config, stats, protocol === "socketio" ? socketIoDialect : quotecastDialect)
