/**
 * A bug must not vanish with its connection (docs/protocol.md "Close codes": 1011 internal error).
 * The gateway runs with one service swapped for a faulty one that dies (a defect, not a typed
 * error): the connection that hit it is closed with 1011 and the defect is logged with its
 * cause, its resources are released, and every other connection goes on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, LogLevel } from "effect"
import { GatewayStats } from "../../src/metrics/GatewayStats.js"
import { EmbeddedLive } from "../../src/mode/EmbeddedLive.js"
import { targetOf } from "../../src/protocol/topics.js"
import { SessionStore } from "../../src/session/SessionStore.js"
import { makeMemorySnapshotStore, SnapshotStore } from "../../src/snapshot/SnapshotStore.js"
import { connect, type RunningGateway, TestClient, useGateway, waitFor } from "../support/gateway.js"

interface Logged {
  readonly level: string
  readonly message: unknown
  readonly cause: string
}

const capture = (into: Array<Logged>) =>
  Logger.make<unknown, void>(({ logLevel, message, cause }) => {
    into.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message[0] : message,
      cause: Cause.isEmpty(cause) ? "" : Cause.pretty(cause),
    })
  })

const failures = (logs: ReadonlyArray<Logged>) =>
  logs.filter((l) => l.level === LogLevel.Error.label && l.message === "connection failed")

const stats = (gw: RunningGateway) => gw.runtime.runPromise(GatewayStats)

/**
 * A gateway, for the enclosing describe, whose mode layer has one service swapped for `faulty`,
 * with every log line captured in `logs`.
 */
const gatewayWithFaulty = <A>(faulty: Layer.Layer<A, never, Layer.Layer.Context<typeof EmbeddedLive>>) => {
  const logs: Array<Logged> = []
  const gw = useGateway({}, { mode: Layer.merge(EmbeddedLive, faulty), logger: capture(logs) })
  return { logs, gw: () => gw }
}

/** Snapshots work for every code but 000660, where the store dies. */
const SnapshotsDyingOn000660 = Layer.sync(SnapshotStore, () => {
  const store = makeMemorySnapshotStore()
  return {
    putAll: store.putAll,
    getMany: (topics) =>
      topics.some((t) => targetOf(t) === "000660")
        ? Effect.die(new Error("snapshot store bug"))
        : store.getMany(topics),
  }
})

describe("a defect while serving a message", () => {
  const faulty = gatewayWithFaulty(SnapshotsDyingOn000660)
  const logs = faulty.logs

  it("closes that connection with 1011 and logs the defect with its cause; the others go on", async () => {
    const gw = faulty.gw()
    const { client: bystander } = await connect(gw)
    const { client } = await connect(gw)
    client.send({ type: "subscribe", subscription_type: "stock", targets: ["000660"] })
    expect(await client.closed).toEqual({ code: 1011, reason: "internal error" })

    await waitFor(() => failures(logs).length === 1, 3000, "the defect logged")
    expect(failures(logs)[0]?.cause).toContain("snapshot store bug")

    // Released like any other end: registry entry, counters, topic memberships.
    await waitFor(async () => (await stats(gw)).activeConnections === 1, 3000, "one connection left")
    expect((await stats(gw)).closesByCode.get(1011)).toBe(1)

    bystander.send({ type: "subscribe", subscription_type: "stock", targets: ["005930"] })
    expect(await bystander.nextOfType("subscribed")).toMatchObject({ targets: ["005930"] })
    bystander.send({ type: "ping", id: "still-here" })
    expect(await bystander.nextOfType("pong")).toMatchObject({ id: "still-here" })
    await bystander.close()
  })
})

/** Sessions can be read but creating one dies: every new connection fails during setup. */
const SessionsDyingOnCreate = Layer.effect(
  SessionStore,
  Effect.map(SessionStore, (store) => ({
    ...store,
    create: () => Effect.die(new Error("session store bug")),
  })),
).pipe(Layer.provide(EmbeddedLive))

describe("a defect during setup, before the socket is bound to the connection", () => {
  const faulty = gatewayWithFaulty(SessionsDyingOnCreate)
  const logs = faulty.logs

  it("still closes the socket with 1011 (no `connected`) and logs the defect", async () => {
    const gw = faulty.gw()
    const client = await TestClient.open(gw.wsUrl)
    expect(await client.closed).toEqual({ code: 1011, reason: "internal error" })
    expect(client.messages).toEqual([])

    await waitFor(() => failures(logs).length === 1, 3000, "the defect logged")
    expect(failures(logs)[0]?.cause).toContain("session store bug")
    expect((await stats(gw)).activeConnections).toBe(0)
    expect((await stats(gw)).closesByCode.get(1011)).toBe(1)
  })
})
