/**
 * A connection's binding to this process and its socket: the socket listeners (shared
 * functions; `this` is the socket, its `Conn` found through a WeakMap, so nothing is allocated per
 * connection), and `bind`, the one finalizer that releases listeners, socket, session and
 * registry entry in reverse order when the connection's Scope closes.
 */
import { Effect, Exit, Scope } from "effect"
import type { RawData, WebSocket } from "ws"
import { logInfoAnnotated } from "../config/logging.js"
import { isAlertBody } from "../protocol/encode.js"
import { CloseCode } from "../protocol/errors.js"
import { type Owner } from "../session/SessionStore.js"
import { acquireIn } from "./Actor.js"
import { BINARY, type CloseRequest, Conn } from "./Conn.js"
import { type Env } from "./Env.js"
import { answered } from "./OutboundBudget.js"

// ---- socket listeners: shared functions, `this` is the socket ----

const conns = new WeakMap<WebSocket, Conn>()

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const conn = conns.get(this)
  if (conn === undefined) return
  conn.alive = true
  const item = isBinary ? BINARY : data.toString()
  // While the actor is busy (a restore, a snapshot read) frames wait here: bounded in count and size.
  const chars = item === BINARY ? 0 : item.length
  if (
    conn.inbound.size >= conn.limits.maxInboundFrames ||
    conn.inboundChars + chars > conn.limits.maxInboundChars
  ) {
    conn.requestClose({ code: CloseCode.policyViolation, reason: "message flood", flush: false })
    return
  }
  conn.inboundChars += chars
  conn.inbound.offer(item)
}
function onClose(this: WebSocket, code: number): void {
  conns.get(this)?.requestClose({ code, reason: "client closed", flush: false })
}
function onPong(this: WebSocket, data: Buffer): void {
  const conn = conns.get(this)
  if (conn === undefined) return
  conn.alive = true
  answered(conn, data)
}
function onError(this: WebSocket, err: Error): void {
  // `ws` emits the close right after; the actor logs the cause.
  conns.get(this)?.inbound.offer({ socketError: err.message })
}
function ignoreError(): void {}

const attachListeners = (ws: WebSocket, conn: Conn): void => {
  conns.set(ws, conn)
  ws.on("message", onMessage)
  ws.on("close", onClose)
  ws.on("pong", onPong)
  ws.on("error", onError)
}

const detachListeners = (ws: WebSocket): void => {
  conns.delete(ws)
  ws.off("message", onMessage)
  ws.off("close", onClose)
  ws.off("pong", onPong)
  ws.off("error", onError)
  // A late error after the actor is gone must not crash the process.
  ws.on("error", ignoreError)
}

/**
 * Binds the connection to this process: the registry entry and stats, the session (held when
 * `owner` is given: the connection has an identity), the socket's listeners. One finalizer
 * releases them in reverse order: listeners off; queued messages flushed (unless the reader is
 * stuck) and the socket closed with the requested code; the session released with its final
 * state; the registry entry removed, which tells a waiting takeover that the session is free.
 * One finalizer, not four: each weighs a key object, a Map entry and a closure in the Scope, for
 * every connection (scenario C). A failing step does not skip the ones after it.
 */
export const bind = (
  scope: Scope.Scope,
  env: Env,
  conn: Conn,
  owner: Owner | undefined,
  addressKey: string | undefined,
) =>
  acquireIn(
    scope,
    () => {
      env.registry.byId.set(conn.id, conn)
      if (owner !== undefined) env.sessions.attached(conn)
      env.stats.connectionsOpened++
      env.stats.activeConnections++
      attachListeners(conn.ws, conn)
    },
    (exit) =>
      Effect.suspend(() => {
        detachListeners(conn.ws)
        return closeSocket(env, conn, exit)
      }).pipe(
        // Suspended: the session's final sequence number is known only once the socket was flushed.
        Effect.ensuring(
          Effect.suspend(() =>
            owner === undefined ? Effect.void : releaseSession(env, conn, owner, addressKey),
          ),
        ),
        Effect.ensuring(Effect.sync(() => unregister(env, conn))),
      ),
  )

const unregister = (env: Env, conn: Conn): void => {
  env.registry.byId.delete(conn.id)
  env.stats.activeConnections--
  conn.markEnded()
}

/** The session is kept with its final state (an anonymous one counted against its client address's saved sessions). */
const releaseSession = (env: Env, conn: Conn, owner: Owner, addressKey: string | undefined) =>
  env.sessions
    .release(
      {
        id: conn.sessionId,
        userId: conn.userId,
        subscriptions: conn.subscriptions(),
        lastSequence: conn.seq,
      },
      owner,
      addressKey,
      // What a stuck reader was not sent: its alerts wait for the session's restore.
      conn.outbox.bodiesWhere(isAlertBody),
    )
    .pipe(Effect.catchAll((e) => Effect.logWarning("session not saved", e.reason)))

/** The close for a connection that ends without having asked for one: shutdown, or a bug. */
export const closeForExit = (exit: Exit.Exit<unknown, unknown>): CloseRequest =>
  Exit.isInterrupted(exit)
    ? { code: CloseCode.serviceRestart, reason: "server restart", flush: true }
    : { code: CloseCode.internalError, reason: "internal error", flush: true }

/** Flushes what is queued (unless the reader is stuck) and closes the socket with the requested code. */
const closeSocket = (env: Env, conn: Conn, exit: Exit.Exit<unknown, unknown>) =>
  Effect.gen(function* () {
    conn.closing = true
    const req = conn.closeRequest ?? closeForExit(exit)
    if (req.flush) env.flusher.flushNow(conn)
    const ws = conn.ws
    if (ws.readyState === ws.OPEN) {
      ws.close(req.code, req.reason)
      // A stuck reader may never complete the closing handshake.
      if (!req.flush) setTimeout(() => ws.terminate(), 1000).unref()
    }
    env.stats.closed(req.code)
    yield* logInfoAnnotated("connection closed", {
      connection_id: conn.id,
      session_id: conn.sessionId,
      user_id: conn.userId ?? "anonymous",
      code: req.code,
      reason: req.reason,
      messages_sent: conn.messagesSent,
    })
  })
