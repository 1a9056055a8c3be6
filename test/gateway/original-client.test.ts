/**
 * The JavaScript client class printed in the original API document, run unchanged over `ws`:
 * it connects, subscribes, receives batched and single updates, and restores its session after
 * a dropped connection. Only the document's placeholders are filled in (the URL and token, its
 * `// ... handle other types` comment, and the save-the-session-id step its prose asks for).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import WebSocket from "ws"
import {
  decodeFrameValue,
  type Frame,
  ingest,
  isType,
  type Message,
  type MessageOf,
  priceEvent,
  signToken,
  useGateway,
  waitFor,
} from "../support/gateway.js"

const gw = useGateway()
beforeAll(async () => {
  await ingest(gw, [priceEvent("005930", 73000), priceEvent("000660", 145000), priceEvent("035720", 42000)])
})

// biome-ignore lint/suspicious/noExplicitAny: the document's class is untyped JavaScript
type Any = any

/** Verbatim from websocket-api.txt "Best Practices / Client Implementation". */
class StockWebSocket {
  [k: string]: Any
  constructor(url: Any, token: Any) {
    this.url = url
    this.token = token
    this.ws = null
    this.sessionId = null
    this.reconnectAttempts = 0
    this.maxReconnectAttempts = 5
  }

  connect() {
    const wsUrl = this.sessionId
      ? `${this.url}?session_id=${this.sessionId}&token=${this.token}`
      : `${this.url}?token=${this.token}`

    this.ws = new WebSocket(wsUrl, {
      perMessageDeflate: true, // Enable compression
    })

    this.ws.onopen = () => {
      console.log("Connected")
      this.reconnectAttempts = 0
    }

    this.ws.onmessage = (event: Any) => {
      const message = JSON.parse(event.data)
      this.handleMessage(message)
    }

    this.ws.onclose = () => {
      console.log("Disconnected")
      this.reconnect()
    }

    this.ws.onerror = (error: Any) => {
      console.error("WebSocket error:", error)
    }
  }

  handleMessage(message: Any) {
    // Handle batch messages
    if (message.type === "batch") {
      // biome-ignore lint/suspicious/useIterableCallbackReturn: verbatim from the document
      message.messages.forEach((msg: Any) => this.processMessage(msg))
      return
    }

    this.processMessage(message)
  }

  processMessage(message: Any) {
    switch (message.type) {
      case "price_update":
        this.onPriceUpdate(message)
        break
      case "orderbook_update":
        this.onOrderBookUpdate(message)
        break
      case "error":
        this.onError(message)
        break
      // ... handle other types
    }
  }

  subscribe(type: Any, targets: Any) {
    this.ws.send(
      JSON.stringify({
        type: "subscribe",
        subscription_type: type,
        targets: targets,
      }),
    )
  }

  reconnect() {
    if (this.reconnectAttempts >= this.maxReconnectAttempts) {
      console.error("Max reconnect attempts reached")
      return
    }

    this.reconnectAttempts++
    // biome-ignore lint/style/useExponentiationOperator: verbatim from the document
    const delay = Math.min(1000 * Math.pow(2, this.reconnectAttempts), 30000)

    console.log(`Reconnecting in ${delay}ms...`)
    setTimeout(() => this.connect(), delay)
  }
}

/**
 * What an application adds: the handlers the class calls, and "save session ID on connect".
 * Typed, unlike the class: every frame it is handed is decoded with the server Schemas first.
 */
class App extends StockWebSocket {
  prices: Array<MessageOf<"price_update">> = []
  errors: Array<MessageOf<"error">> = []
  others: Array<Message> = []
  frames: Array<Frame> = []
  offContract: Array<string> = []
  onPriceUpdate(m: MessageOf<"price_update">) {
    this.prices.push(m)
  }
  onOrderBookUpdate(_m: MessageOf<"orderbook_update">) {}
  onError(m: MessageOf<"error">) {
    this.errors.push(m)
  }
  override handleMessage(value: unknown) {
    let frame: Frame
    try {
      frame = decodeFrameValue(value)
    } catch (e) {
      this.offContract.push(String(e))
      return
    }
    this.frames.push(frame)
    if (frame.type === "connected") this.sessionId ??= frame.session_id
    super.handleMessage(frame)
  }
  override processMessage(message: Message) {
    if (message.type !== "price_update" && message.type !== "orderbook_update" && message.type !== "error")
      this.others.push(message)
    super.processMessage(message)
  }
}

const until = (cond: () => boolean, timeoutMs = 8000) => waitFor(cond, timeoutMs, "the class's state", 20)

describe("the original document's StockWebSocket class", () => {
  it("connects, subscribes, gets batched and single updates, and restores its session after a drop", async () => {
    const log = console.log
    console.log = () => {}
    try {
      const app = new App(gw.wsUrl, await signToken({ sub: "doc-user" }))
      app.connect()
      await until(() => app.sessionId !== null)
      // `connected` is always a frame of its own, the first one.
      expect(app.frames[0]?.type).toBe("connected")
      app.subscribe("stock", ["005930", "000660", "035720"])
      await until(() => app.prices.length >= 3)
      expect(
        app.prices
          .slice(0, 3)
          .map((p) => p.code)
          .sort(),
      ).toEqual(["000660", "005930", "035720"])
      // subscribed + three snapshots were queued together: they arrive as one batch.
      expect(app.frames.some((f) => f.type === "batch")).toBe(true)

      await ingest(gw, [priceEvent("005930", 73500)])
      await until(() => app.prices.some((p) => p.price === 73500))
      expect(app.frames.at(-1)).toMatchObject({ type: "price_update", code: "005930", price: 73500 })

      const session = app.sessionId
      app.ws._socket.destroy() // the network drops; the class reconnects after its 2 s backoff
      await until(() => app.others.some(isType("reconnected")), 10_000)
      const reconnected = app.others.find(isType("reconnected"))
      expect(reconnected?.session_id).toBe(session)
      expect([...(reconnected?.restored_subscriptions.stock ?? [])].sort()).toEqual([
        "000660",
        "005930",
        "035720",
      ])
      await ingest(gw, [priceEvent("000660", 146000)])
      await until(() => app.prices.some((p) => p.price === 146000))
      expect(app.errors).toEqual([])
      expect(app.offContract).toEqual([])
      app.maxReconnectAttempts = 0
      app.ws.close()
    } finally {
      console.log = log
    }
  }, 20_000)
})
