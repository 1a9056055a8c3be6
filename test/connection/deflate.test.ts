/**
 * The gateway's own permessage-deflate: frames compressed with one shared, reset context decode
 * with any standard inflater and with a real `ws` client that negotiated the extension.
 */
import { randomBytes } from "node:crypto"
import * as zlib from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Option } from "effect"
import { FrameDeflater } from "../../src/connection/deflate.js"
import { makeUniverse } from "../../src/market/Universe.js"
import { connect, ingest, priceEvent, startGateway } from "../support/gateway.js"

const inflate = (payload: Buffer) =>
  zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  })

describe("FrameDeflater", () => {
  it.prop(
    "round-trips any text, message after message, with no context carried between them",
    [
      fc.array(fc.string({ minLength: 0, maxLength: 5000 }), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 9, max: 15 }),
    ],
    ([texts, bits]) => {
      const d = new FrameDeflater(0, 1)
      for (const t of texts) {
        const payload = d.compress(Buffer.from(t), bits)
        // No context takeover: each message inflates on its own.
        expect(inflate(payload).toString()).toBe(t)
      }
    },
  )

  it("compresses text through its reused buffers: UTF-8, and output larger than one 64 KB chunk", () => {
    const d = new FrameDeflater(0, 1)
    // Random base64 barely compresses, so its output spans several of the engine's chunks.
    const noisy = randomBytes(150_000).toString("base64")
    for (const text of ['{"name":"삼성전자","book":"호가"}', noisy, "small after large"]) {
      const payload = Buffer.from(d.compressText(text, 15))
      expect(inflate(payload).toString()).toBe(text)
    }
  })

  it("shrinks a typical batch to well under half", () => {
    const batch = JSON.stringify({
      type: "batch",
      messages: Array.from({ length: 40 }, (_, i) => ({
        type: "price_update",
        code: String(5930 + i).padStart(6, "0"),
        name: "Samsung Electronics",
        price: 73000 + i * 100,
        change: 100,
        change_percent: 0.14,
        volume: 12345678 + i,
        timestamp: "2026-11-25T10:00:00.000Z",
        sequence: 100 + i,
      })),
    })
    const payload = new FrameDeflater(0, 1).compress(Buffer.from(batch), 15)
    expect(payload.length).toBeLessThan(batch.length / 2)
  })
})

describe("compression on the wire", () => {
  it("a ws client that negotiated permessage-deflate receives compressed batches it can decode", async () => {
    const gw = await startGateway()
    try {
      const { client } = await connect(gw, "", { perMessageDeflate: true })
      expect(client.ws.extensions).toContain("permessage-deflate")
      const stocks = makeUniverse(Option.none()).instruments.slice(0, 8)
      client.send({ type: "subscribe", subscription_type: "stock", targets: stocks.map((s) => s.code) })
      await client.nextOfType("subscribed")
      // Eight updates published together flush as one batch, well over the 1 KB threshold.
      expect(
        (
          await ingest(
            gw,
            stocks.map((s) => priceEvent(s.code, s.prevClose)),
          )
        ).status,
      ).toBe(202)
      await client.settle()
      expect(client.messages.filter((m) => m.type === "price_update")).toHaveLength(8)
      const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text()
      const compressed = Number(/quotecast_compressed_frames_total (\d+)/.exec(metrics)?.[1])
      expect(compressed).toBeGreaterThan(0)
      const seqs = client.messages.map((m) => m.sequence)
      expect(seqs).toEqual(seqs.map((_, i) => i + 1))
      await client.close()
    } finally {
      await gw.stop()
    }
  })
})
