/**
 * The test client's side of the wire: a real `ws` client that decodes every frame it receives
 * with the server's own Schemas (protocol/server.ts), so a test reads typed messages and a frame
 * off the contract fails the test even when no assertion looks at it.
 */
import { afterEach } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import WebSocket from "ws"
import type { ClientMessage } from "../../src/protocol/client.js"
import { ServerMessage, type ServerSingle } from "../../src/protocol/server.js"

/** One server message (batches unpacked). */
export type Message = ServerSingle
export type MessageType = Message["type"]
export type MessageOf<T extends MessageType> = Extract<Message, { readonly type: T }>
/** One frame as it came: a single message or a batch. */
export type Frame = ServerMessage
/** What a client may send, as JSON holds it. */
export type ClientFrame = typeof ClientMessage.Encoded

/** Narrows a message by its type, for `filter`, `find` and `next`. */
export const isType =
  <T extends MessageType>(type: T) =>
  (m: Message): m is MessageOf<T> =>
    m.type === type

/** The messages of one type, in order. */
export const ofType = <T extends MessageType>(messages: ReadonlyArray<Message>, type: T) =>
  messages.filter(isType(type))

/**
 * Strict: a field the Schemas do not name is a failure too, since the wire must stay
 * byte-for-byte what docs/protocol.md describes.
 */
const decodeFrame = Schema.decodeUnknownEither(Schema.parseJson(ServerMessage), {
  errors: "all",
  onExcessProperty: "error",
})

/** One line per issue ("path: message"), short: the frame itself follows in the report. */
const describe = (e: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(e)
    .map((i) => `${i.path.join(".") || "(frame)"}: ${i.message.slice(0, 200)}`)
    .join("\n")

/** One frame, already parsed, decoded strictly; throws what does not decode. */
export const decodeFrameValue = (value: unknown): Frame => {
  const decoded = decodeValue(value)
  if (Either.isLeft(decoded)) throw new Error(`frame off the contract:\n${describe(decoded.left)}`)
  return decoded.right
}
const decodeValue = Schema.decodeUnknownEither(ServerMessage, { errors: "all", onExcessProperty: "error" })

/** Clients whose bad frames have not yet failed a test: checked after every test. */
const unreported = new Set<TestClient>()
afterEach(() => {
  const failures = [...unreported].flatMap((c) => c.takeFailures())
  unreported.clear()
  if (failures.length > 0) throw new Error(`frames off the contract:\n${failures.join("\n")}`)
})

let markers = 0

/**
 * A real WebSocket client that records every message (batches unpacked, each kept with the
 * frame it came in) and lets a test wait for the next message matching a predicate. A frame
 * that does not decode is recorded and thrown by the next read, by `close`, or after the test.
 */
export class TestClient {
  readonly frames: Array<Frame> = []
  readonly messages: Array<Message> = []
  private readonly failures: Array<string> = []
  private cursor = 0
  private waiters: Array<() => void> = []
  readonly closed: Promise<{ code: number; reason: string }>

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const text = data.toString()
      const decoded = isBinary ? Either.left("a binary frame") : Either.mapLeft(decodeFrame(text), describe)
      if (Either.isLeft(decoded)) {
        this.failures.push(`${decoded.left}\n  frame: ${text.slice(0, 500)}`)
        unreported.add(this)
      } else {
        const frame = decoded.right
        this.frames.push(frame)
        if (frame.type === "batch") this.messages.push(...frame.messages)
        else this.messages.push(frame)
      }
      for (const w of this.waiters.splice(0)) w()
    })
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const w of this.waiters.splice(0)) w()
      })
    })
  }

  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options)
      const client = new TestClient(ws)
      ws.once("open", () => resolve(client))
      ws.once("error", reject)
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
  }

  /** The failures not yet thrown, now counted as thrown. */
  takeFailures(): Array<string> {
    return this.failures.splice(0)
  }

  private check(): void {
    const failures = this.takeFailures()
    if (failures.length > 0) throw new Error(`frame off the contract:\n${failures.join("\n")}`)
  }

  /** A client message, typed by the protocol's Schemas. */
  send(message: ClientFrame): void {
    this.ws.send(JSON.stringify(message))
  }

  /** Any frame at all, for tests of what the server does with bad input. */
  sendRaw(frame: string | Uint8Array): void {
    this.ws.send(frame)
  }

  /** Next message (after the ones already taken) that matches; fails after `timeoutMs`. */
  next<M extends Message>(match: (m: Message) => m is M, timeoutMs?: number): Promise<M>
  next(match?: (m: Message) => boolean, timeoutMs?: number): Promise<Message>
  async next(match: (m: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      this.check()
      while (this.cursor < this.messages.length) {
        const m = this.messages[this.cursor++] as Message
        if (match(m)) return m
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("connection closed while waiting")
      const left = deadline - Date.now()
      if (left <= 0)
        throw new Error(`timed out waiting for a message; got ${JSON.stringify(this.messages.slice(-5))}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  nextOfType<T extends MessageType>(type: T, timeoutMs?: number): Promise<MessageOf<T>> {
    return this.next(isType(type), timeoutMs)
  }

  /** The next message, which must be of `type`. */
  async nextMustBe<T extends MessageType>(type: T, timeoutMs?: number): Promise<MessageOf<T>> {
    const m = await this.next(undefined, timeoutMs)
    if (!isType(type)(m)) throw new Error(`expected ${type}, got ${JSON.stringify(m)}`)
    return m
  }

  /** The next `n` messages. */
  async take(n: number, timeoutMs?: number): Promise<Array<Message>> {
    const taken: Array<Message> = []
    while (taken.length < n) taken.push(await this.next(undefined, timeoutMs))
    return taken
  }

  /**
   * Sends a ping with a fresh id and returns every message not yet taken that came before its
   * pong (the pong itself is taken, not returned). The gateway answers a connection's messages
   * in order, after whatever it queued before, so this is everything the server had queued for
   * this client when it read the ping: no guessing at a quiet period.
   */
  async settle(timeoutMs?: number): Promise<Array<Message>> {
    const id = `settle-${++markers}`
    this.send({ type: "ping", id })
    const before: Array<Message> = []
    for (;;) {
      const m = await this.next(undefined, timeoutMs)
      if (m.type === "pong" && m.id === id) return before
      before.push(m)
    }
  }

  /**
   * Waits `ms` and returns every message not yet taken by then. Only for absences ("no tick for
   * 2 s"), where no later message could serve as a marker: never before a positive assertion.
   */
  async collectFor(ms: number): Promise<Array<Message>> {
    await new Promise((resolve) => setTimeout(resolve, ms))
    this.check()
    const rest = this.messages.slice(this.cursor)
    this.cursor = this.messages.length
    return rest
  }

  /** Closes (if open) and waits for the close; throws a frame that did not decode. */
  async close(code = 1000): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code)
    const closed = await this.closed
    this.check()
    return closed
  }
}
