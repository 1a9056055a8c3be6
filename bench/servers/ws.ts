/**
 * Baseline 1: the bare `ws` fan-out server, the practical limit for Node on this machine.
 *
 * It speaks just enough of quotecast's protocol for the same load client to measure it
 * (`connected`, `subscribe` -> `subscribed`, numbered messages, `batch` envelopes) and does only
 * what fan-out needs: each event serialized once (an open JSON body, like quotecast), appended to
 * every subscriber's queue, and one process-wide 30 ms timer that writes each non-empty queue as
 * one frame. No sessions, snapshots, conflation, backpressure, auth, rate limits or metrics: a
 * slow reader's queue and socket buffer grow without bound (scenario E shows it).
 *
 * BENCH_DEFLATE=on enables `ws`'s own permessage-deflate (no context takeover, the load client's
 * offer), the configuration scenario D shows collapsing.
 *
 * BENCH_FIBER=on ("bare ws + Effect fiber", scenario C) adds to this server exactly what
 * quotecast's fixed shape asks of every connection and nothing else: a supervised Effect fiber
 * (a FiberSet runtime on quotecast's shared scheduler) that takes the client's frames from an
 * inbound queue (quotecast's `Inbox`; the outbound queue stays this server's array) and lives
 * in a Scope whose finalizer removes the connection from the topics. Its memory per connection,
 * beside the bare server's, is what that shape costs before any gateway feature: the floor
 * under quotecast's figure in scenario C.
 */
import { randomUUID } from "node:crypto"
import * as http from "node:http"
import { Effect, FiberSet, Scope } from "effect"
import { WebSocket, WebSocketServer } from "ws"
import { Inbox } from "../../src/connection/Inbox.js"
import { sharedScheduler } from "../../src/lifecycle/sharedScheduler.js"
import type { MarketEvent } from "../../src/protocol/server.js"
import { announce, serveControl } from "./control.js"
import { codeOf, feedSettingsFromEnv, makeBenchEngine, standaloneMarket, startFeedLoop } from "./feed.js"

const BATCH_INTERVAL_MS = 30
/** quotecast's LISTEN_BACKLOG default (config/AppConfig.ts). */
const LISTEN_BACKLOG_DEFAULT = 511

interface Client {
  readonly ws: WebSocket
  seq: number
  /** Open bodies (JSON without the final brace) waiting for the next flush. */
  queue: Array<string>
}

const topics = new Map<string, Set<Client>>()
const dirty = new Set<Client>()

const seal = (body: string, seq: number): string => `${body},"sequence":${seq}}`

const enqueue = (c: Client, body: string): void => {
  c.queue.push(body)
  dirty.add(c)
}

const flush = (): void => {
  const timestamp = new Date().toISOString()
  for (const c of dirty) {
    const q = c.queue
    c.queue = []
    if (c.ws.readyState !== WebSocket.OPEN || q.length === 0) continue
    if (q.length === 1) {
      c.ws.send(seal(q[0] as string, ++c.seq))
      continue
    }
    const sealed = new Array<string>(q.length)
    for (let i = 0; i < q.length; i++) sealed[i] = seal(q[i] as string, ++c.seq)
    c.ws.send(
      `{"type":"batch","batch_size":${q.length},"messages":[${sealed.join(",")}],"timestamp":"${timestamp}","sequence":${c.seq}}`,
    )
  }
  dirty.clear()
}

const publish = (events: ReadonlyArray<MarketEvent>): void => {
  for (const e of events) {
    const code = codeOf(e)
    const subs = code === undefined ? undefined : topics.get(code)
    if (subs === undefined) continue
    const body = JSON.stringify(e).slice(0, -1)
    for (const c of subs) enqueue(c, body)
  }
}

const onMessage = (c: Client, text: string): void => {
  let msg: unknown
  try {
    msg = JSON.parse(text)
  } catch {
    return
  }
  if (typeof msg !== "object" || msg === null) return
  const m = msg as { type?: unknown; subscription_type?: unknown; targets?: unknown }
  if (m.type !== "subscribe" || m.subscription_type !== "stock" || !Array.isArray(m.targets)) return
  const targets = m.targets.filter((t): t is string => typeof t === "string")
  for (const t of targets) {
    let set = topics.get(t)
    if (set === undefined) {
      set = new Set()
      topics.set(t, set)
    }
    set.add(c)
  }
  enqueue(
    c,
    `{"type":"subscribed","subscription_type":"stock","targets":${JSON.stringify(targets)},"timestamp":"${new Date().toISOString()}"`,
  )
}

const release = (c: Client): void => {
  for (const set of topics.values()) set.delete(c)
  dirty.delete(c)
}

/** The inbound queue's end: the socket closed. */
const CLOSED = Symbol("closed")
type Inbound = string | typeof CLOSED

/** The connection's conversation: one frame at a time until the socket closes. */
const converse = (c: Client, inbox: Inbox<Inbound>): Effect.Effect<void> =>
  Effect.flatMap(inbox.take(), (m) =>
    m === CLOSED
      ? Effect.void
      : Effect.suspend(() => {
          onMessage(c, m)
          return converse(c, inbox)
        }),
  )

/** One connection's fiber: its Scope, the release registered in it, the conversation; the Scope closes with the fiber. */
const serveInFiber = (c: Client, inbox: Inbox<Inbound>): Effect.Effect<void> =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.zipRight(
      Scope.addFinalizer(
        scope,
        Effect.sync(() => release(c)),
      ),
      Effect.onExit(converse(c, inbox), (exit) => Scope.close(scope, exit)),
    ),
  )

/** Forks connection fibers into a FiberSet that lives as long as the process. */
const runFiber = Effect.runSync(
  Effect.flatMap(Scope.make(), (scope) =>
    FiberSet.makeRuntime<never, void, never>().pipe(
      Effect.withScheduler(sharedScheduler),
      Scope.extend(scope),
    ),
  ),
)

const deflate = process.env.BENCH_DEFLATE === "on"
const fiberPerConnection = process.env.BENCH_FIBER === "on"
const server = http.createServer((_req, res) => res.writeHead(404).end())
const wss = new WebSocketServer({
  server,
  path: "/v1/ws",
  perMessageDeflate: deflate ? { serverNoContextTakeover: true, clientNoContextTakeover: true } : false,
})
wss.on("connection", (ws) => {
  const c: Client = { ws, seq: 0, queue: [] }
  ws.on("error", () => ws.terminate())
  if (fiberPerConnection) {
    const inbox = new Inbox<Inbound>()
    ws.on("message", (data) => inbox.offer(data.toString()))
    ws.on("close", () => inbox.offer(CLOSED))
    runFiber(serveInFiber(c, inbox))
  } else {
    ws.on("message", (data) => onMessage(c, data.toString()))
    ws.on("close", () => release(c))
  }
  ws.send(
    seal(
      `{"type":"connected","connection_id":"${randomUUID()}","session_id":"${randomUUID()}","user_id":null,"timestamp":"${new Date().toISOString()}"`,
      ++c.seq,
    ),
  )
})

setInterval(flush, BATCH_INTERVAL_MS)
const { universe, state } = standaloneMarket()
const engine = makeBenchEngine(universe, state, feedSettingsFromEnv())
serveControl(
  () => startFeedLoop(engine, publish),
  () => engine,
)
// The same accept queue as quotecast's (LISTEN_BACKLOG, same default): scenario G compares how
// both take a reconnect storm, and the queue's depth decides how long a connection waits in it.
const backlog = Number(process.env.LISTEN_BACKLOG ?? "") || LISTEN_BACKLOG_DEFAULT
server.listen({ port: 0, host: "127.0.0.1", backlog }, () => {
  const address = server.address()
  announce("ws-baseline", typeof address === "object" && address !== null ? address.port : 0)
})
