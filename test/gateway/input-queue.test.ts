/**
 * Frames that wait for a busy connection are bounded in bytes (WS_MAX_QUEUED_INPUT_BYTES) and in
 * count (WS_MAX_QUEUED_INPUT_FRAMES): while the
 * connection's actor is busy (here: a snapshot read that takes a while), what the client sends
 * queues up to the bound, and a client that sends past it is closed with 1008 ("message flood")
 * instead of growing the server's memory, and what it had queued is not run. A client that stays
 * under it loses nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"
import { targetOf } from "../../src/protocol/topics.js"
import { makeMemorySnapshotStore, SnapshotStore } from "../../src/snapshot/SnapshotStore.js"
import { connect, metricValue, useGateway } from "../support/gateway.js"

/** Frames the connections' actors have taken and run. */
const framesRun = () => metricValue(gw, "quotecast_messages_received_total")

const LIMIT = 100_000
const FRAMES = 20

/** Snapshot reads of 000660 take a second: the connection that asked is busy meanwhile. */
const SlowSnapshotsOf000660 = Layer.sync(SnapshotStore, () => {
  const store = makeMemorySnapshotStore()
  return {
    putAll: store.putAll,
    getMany: (topics) =>
      topics.some((t) => targetOf(t) === "000660")
        ? Effect.zipRight(Effect.sleep("1 second"), store.getMany(topics))
        : store.getMany(topics),
  }
})

const gw = useGateway(
  { wsMaxQueuedInputBytes: LIMIT, wsMaxQueuedInputFrames: FRAMES },
  { mode: Layer.merge(EmbeddedLive, SlowSnapshotsOf000660) },
)

/** A ping padded to about `size` characters (a valid message: extra fields are ignored). */
const paddedPing = (id: number, size: number) => JSON.stringify({ type: "ping", id, pad: "x".repeat(size) })

describe("frames waiting for a busy connection", () => {
  it("past WS_MAX_QUEUED_INPUT_BYTES, the connection is closed with 1008", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["000660"] })
    for (let i = 0; i < 4; i++) client.sendRaw(paddedPing(i, 30_000))
    expect(await client.closed).toEqual({ code: 1008, reason: "message flood" })
  })

  it("past WS_MAX_QUEUED_INPUT_FRAMES small frames, the connection is closed with 1008", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["000660"] })
    for (let i = 0; i <= FRAMES; i++) client.send({ type: "ping", id: i })
    expect(await client.closed).toEqual({ code: 1008, reason: "message flood" })
  })

  it("frames still waiting when the connection is closed are not run", async () => {
    const { client } = await connect(gw)
    const before = await framesRun()
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["000660"] })
    for (let i = 0; i <= FRAMES; i++)
      client.send({ type: "subscribe", subscription_type: "stock", targets: ["005930", "035420"] })
    expect(await client.closed).toEqual({ code: 1008, reason: "message flood" })
    // The FRAMES subscribes queued behind the slow one died with the connection (the slow one
    // ran if the actor took it before the flood was seen, which depends on how the frames came).
    expect((await framesRun()) - before).toBeLessThanOrEqual(1)
  })

  it("under both, every waiting frame is answered once the connection is free", async () => {
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["000660"] })
    for (let i = 0; i < 3; i++) client.sendRaw(paddedPing(i, 30_000))
    for (let i = 3; i < FRAMES - 1; i++) client.send({ type: "ping", id: i })
    await client.nextOfType("subscribed")
    for (let i = 0; i < FRAMES - 1; i++) expect(await client.nextOfType("pong")).toMatchObject({ id: i })
    await client.close()
  })
})
