/**
 * Frames the flusher writes straight to the socket are standard WebSocket frames: a `ws` client
 * reads every payload length encoding (7-bit, 16-bit, 64-bit), UTF-8 text, and deflated frames
 * when it negotiated permessage-deflate; and they interleave in order with what `ws` writes itself.
 */
import type { AddressInfo } from "node:net"
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import WebSocket, { WebSocketServer } from "ws"
import { writeCompressedText, writeText } from "../../src/connection/wire.js"

const pair = (deflate: boolean) =>
  new Promise<{ server: WebSocket; client: WebSocket; received: Array<string>; close: () => void }>(
    (resolve) => {
      const wss = new WebSocketServer({
        host: "127.0.0.1",
        port: 0,
        perMessageDeflate: deflate ? { serverNoContextTakeover: true, clientNoContextTakeover: true } : false,
      })
      wss.once("listening", () => {
        const received: Array<string> = []
        const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, {
          perMessageDeflate: deflate,
        })
        client.on("message", (d) => received.push(d.toString()))
        wss.once("connection", (server) =>
          client.once("open", () =>
            resolve({
              server,
              client,
              received,
              close: () => {
                client.terminate()
                wss.close()
              },
            }),
          ),
        )
      })
    },
  )

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe("wire", () => {
  it("writes text frames of every length encoding that a ws client reads back", async () => {
    const { server, received, close } = await pair(false)
    try {
      const texts = [
        "",
        "x",
        "a".repeat(125),
        "b".repeat(126),
        "c".repeat(65535),
        "d".repeat(65536),
        "e".repeat(200_000),
        '{"name":"삼성전자","note":"호가 – UTF-8"}',
      ]
      for (const t of texts) writeText(server, t)
      await until(() => received.length === texts.length)
      expect(received).toEqual(texts)
    } finally {
      close()
    }
  })

  it("returns the payload's length in bytes, not characters", async () => {
    const { server, close } = await pair(false)
    try {
      expect(writeText(server, "삼성")).toBe(6)
    } finally {
      close()
    }
  })

  it("keeps order with frames ws writes itself", async () => {
    const { server, received, close } = await pair(false)
    try {
      writeText(server, "1")
      server.send("2")
      writeText(server, "3")
      await until(() => received.length === 3)
      expect(received).toEqual(["1", "2", "3"])
    } finally {
      close()
    }
  })

  it("writes deflated frames with RSV1 that a client which negotiated permessage-deflate inflates", async () => {
    const { server, received, close } = await pair(true)
    try {
      const text = JSON.stringify({ type: "batch", messages: Array.from({ length: 50 }, (_, i) => ({ i })) })
      const deflated = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
      // RFC 7692 7.2.1: the sender removes the trailing 00 00 ff ff.
      writeCompressedText(server, deflated.subarray(0, deflated.length - 4))
      writeText(server, "plain after compressed")
      await until(() => received.length === 2)
      expect(received).toEqual([text, "plain after compressed"])
    } finally {
      close()
    }
  })

  it("frames that wait behind a reader who is behind arrive intact and in order, compressed ones too", async () => {
    const { server, client, received, close } = await pair(true)
    try {
      // The client stops reading: the kernel's buffers fill, then the socket's own queue.
      const socket = (client as unknown as { _socket: { pause: () => void; resume: () => void } })._socket
      socket.pause()
      const filler = "f".repeat(64 * 1024)
      const serverSocket = (server as unknown as { _socket: { writableLength: number } })._socket
      let n = 0
      for (; n < 2000 && serverSocket.writableLength === 0; n++) {
        writeText(server, filler)
        await new Promise((r) => setImmediate(r))
      }
      expect(serverSocket.writableLength).toBeGreaterThan(0)
      // Written while others wait: held as text until the socket takes them, still counted in bytes.
      const before = server.bufferedAmount
      const korean = '{"name":"삼성전자","note":"호가 – UTF-8"}'
      writeText(server, korean)
      expect(server.bufferedAmount - before).toBe(2 + Buffer.byteLength(korean))
      const text = JSON.stringify({ type: "batch", messages: Array.from({ length: 50 }, (_, i) => ({ i })) })
      const deflated = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
      writeCompressedText(server, deflated.subarray(0, deflated.length - 4))
      writeText(server, "h".repeat(70_000))
      socket.resume()
      await until(() => received.length === n + 3)
      expect(received.slice(0, n).every((r) => r === filler)).toBe(true)
      expect(received.slice(n)).toEqual([korean, text, "h".repeat(70_000)])
    } finally {
      close()
    }
  })

  it("refuses to write past sends that ws itself has queued, instead of reordering them", async () => {
    const { server, received, close } = await pair(false)
    try {
      // ws queues its own sends while its compressor runs (which the gateway never asks for).
      const sender = (server as unknown as { _sender: { _state: number } })._sender
      sender._state = 1
      expect(() => writeText(server, "would overtake")).toThrow(/reorder/)
      sender._state = 0
      writeText(server, "after")
      await until(() => received.length === 1)
      expect(received).toEqual(["after"])
    } finally {
      close()
    }
  })
  it("hands an empty socket at most 16 KB per write, and the rest of a frame as one write once it waits", async () => {
    const { server, client, received, close } = await pair(false)
    try {
      // What one write hands over is what stays in malloc'd memory if the reader stops mid-write.
      const socket = (
        server as unknown as { _socket: { write: (...a: Array<unknown>) => boolean; writableLength: number } }
      )._socket
      const original = socket.write.bind(socket)
      const writes: Array<{ bytes: number; waiting: number }> = []
      socket.write = (chunk: unknown, ...rest: Array<unknown>) => {
        writes.push({
          bytes: typeof chunk === "string" ? chunk.length : (chunk as Buffer).length,
          waiting: socket.writableLength,
        })
        return original(chunk, ...rest)
      }
      const clientSocket = (client as unknown as { _socket: { pause: () => void; resume: () => void } })
        ._socket
      clientSocket.pause()
      const texts: Array<string> = []
      const frame = (i: number) => String.fromCharCode(97 + (i % 26)).repeat(50_000 + i)
      // Until the kernel's buffers are full, then a few more frames that wait behind.
      for (let i = 0, behind = 0; i < 2000 && behind < 5; i++) {
        texts.push(frame(i))
        writeText(server, frame(i))
        if (socket.writableLength > 0) behind++
      }
      expect(socket.writableLength).toBeGreaterThan(0)
      for (const w of writes) if (w.waiting === 0) expect(w.bytes).toBeLessThanOrEqual(16 * 1024)
      // Behind unsent bytes a frame is one write: no syscall per piece for a reader that is behind.
      expect(writes.filter((w) => w.waiting > 0).length).toBeLessThanOrEqual(texts.length)
      clientSocket.resume()
      await until(() => received.length === texts.length)
      expect(received).toEqual(texts)
    } finally {
      close()
    }
  })
})
