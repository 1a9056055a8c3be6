/**
 * The client lifecycle as a reducer (no sockets, no clock): what a client does with each
 * handshake message of docs/protocol.md "Connection lifecycle", how it numbers messages across
 * restores, and what it sends for the subscriptions it wants.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import type { ClientEvent } from "../../src/client/events.js"
import { type Action, Input, initial, type Lifecycle, step } from "../../src/client/lifecycle.js"
import { addTargets, emptyDesired, fromSubscriptionSet } from "../../src/client/subscriptions.js"
import { ServerSingle } from "../../src/protocol/server.js"

const timestamp = "2025-11-11T09:30:00.030Z"
/** Server messages are decoded with the protocol Schema, so every one used here is a valid one. */
const server = (message: Record<string, unknown>): ServerSingle =>
  Schema.decodeUnknownSync(ServerSingle)({ timestamp, ...message })

const connected = (sessionId: string, sequence: number) =>
  server({
    type: "connected",
    connection_id: `conn-${sequence}`,
    session_id: sessionId,
    user_id: null,
    sequence,
  })
const reconnected = (sessionId: string, sequence: number, extra: Record<string, unknown> = {}) =>
  server({
    type: "reconnected",
    session_id: sessionId,
    restored_subscriptions: {},
    missed_messages_count: 0,
    sequence,
    ...extra,
  })
const restoreError = (sessionId: string, sequence: number) =>
  server({
    type: "error",
    code: "SESSION_RESTORATION_FAILED",
    message: "Session not found or expired",
    details: { session_id: sessionId, reason: "not_found" },
    sequence,
  })
const price = (sequence: number) =>
  server({
    type: "price_update",
    code: "005930",
    name: "Samsung Electronics",
    price: 73000,
    change: 0,
    change_percent: 0,
    volume: 1,
    sequence,
  })

/** Feeds inputs in order; returns the final state and every action, in order. */
const run = (state: Lifecycle, inputs: ReadonlyArray<Input>) =>
  inputs.reduce(
    (acc, input) => {
      const next = step(acc.state, input)
      return { state: next.state, actions: [...acc.actions, ...next.actions] }
    },
    { state, actions: [] as ReadonlyArray<Action> },
  )
const receive = (...messages: ReadonlyArray<ServerSingle>) =>
  messages.map((message) => Input.Received({ message }))

const events = (actions: ReadonlyArray<Action>): ReadonlyArray<ClientEvent> =>
  actions.flatMap((a) => (a._tag === "Emit" ? [a.event] : []))
const eventsTagged = <K extends ClientEvent["_tag"]>(actions: ReadonlyArray<Action>, tag: K) =>
  events(actions).filter((e): e is Extract<ClientEvent, { readonly _tag: K }> => e._tag === tag)
/** The actions as short labels: `Emit:<event>`, `Deliver:<type>:<sequence>`, `Send:<n>`, `Ready`. */
const outline = (actions: ReadonlyArray<Action>) =>
  actions.map((a) =>
    a._tag === "Emit"
      ? `Emit:${a.event._tag}`
      : a._tag === "Deliver"
        ? `Deliver:${a.message.type}:${a.message.sequence}`
        : a._tag === "Send"
          ? `Send:${a.messages.length}`
          : a._tag,
  )
const sent = (actions: ReadonlyArray<Action>) => actions.flatMap((a) => (a._tag === "Send" ? a.messages : []))

/** A client that has seen `last` messages of session `sessionId` and lost its connection. */
const disconnected = (sessionId: string, last: number, subscriptions = {}): Lifecycle =>
  run(initial({ desired: fromSubscriptionSet(subscriptions) }), [
    Input.Opened(),
    ...receive(connected(sessionId, 1)),
    ...Array.from({ length: last - 1 }, (_, i) => Input.Received({ message: price(i + 2) })),
    Input.LinkClosed(),
  ]).state

describe("first connect (no session presented)", () => {
  it("is ready on connected: delivers it, sends the wanted subscriptions, then reports Ready", () => {
    const start = initial({ desired: addTargets(emptyDesired, "stock", ["005930"]) })
    const { state, actions } = run(start, [Input.Opened(), ...receive(connected("s1", 1))])
    expect(outline(actions)).toEqual([
      "Emit:Connected",
      "Deliver:connected:1",
      "Send:1",
      "Ready",
      "Emit:Ready",
    ])
    expect(sent(actions)).toEqual([{ type: "subscribe", subscription_type: "stock", targets: ["005930"] }])
    expect(eventsTagged(actions, "Connected")[0]).toMatchObject({ sessionId: "s1", restoring: false })
    expect(state).toMatchObject({ status: "ready", sessionId: "s1", connectionId: "conn-1", last: 1 })
  })

  it("sends nothing when nothing is wanted", () => {
    const { actions } = run(initial({}), [Input.Opened(), ...receive(connected("s1", 1))])
    expect(outline(actions)).toEqual(["Emit:Connected", "Deliver:connected:1", "Ready", "Emit:Ready"])
  })

  it("is handshaking between open and connected", () => {
    expect(run(initial({}), [Input.Opened()]).state.status).toBe("handshaking")
  })
})

describe("session restore", () => {
  it("waits for reconnected, then sends only what changed while disconnected", () => {
    const away = disconnected("s1", 3, { stock: ["005930"] })
    const wanted = step(away, Input.Subscribe({ subscriptionType: "stock", targets: ["000660"] }))
    expect(wanted.actions).toEqual([]) // not connected: the handshake sends it
    const afterConnected = run(wanted.state, [Input.Opened(), ...receive(connected("s1", 4))])
    expect(outline(afterConnected.actions)).toEqual(["Emit:Connected", "Deliver:connected:4"])
    expect(eventsTagged(afterConnected.actions, "Connected")[0]?.restoring).toBe(true)
    expect(afterConnected.state.status).toBe("handshaking")

    const { state, actions } = run(
      afterConnected.state,
      receive(
        reconnected("s1", 5, { restored_subscriptions: { stock: ["005930"] }, missed_messages_count: 1 }),
      ),
    )
    expect(outline(actions)).toEqual([
      "Deliver:reconnected:5",
      "Emit:Restored",
      "Send:1",
      "Ready",
      "Emit:Ready",
    ])
    expect(sent(actions)).toEqual([{ type: "subscribe", subscription_type: "stock", targets: ["000660"] }])
    expect(eventsTagged(actions, "Restored")[0]).toMatchObject({
      sessionId: "s1",
      restoredSubscriptions: { stock: ["005930"] },
      missedMessagesCount: 1,
      sequenceJumped: false,
    })
    expect(state).toMatchObject({ status: "ready", sessionId: "s1", last: 5 })
  })

  it("continues the numbering: no gap when connected follows the last number seen", () => {
    const { actions } = run(disconnected("s1", 3), [
      Input.Opened(),
      ...receive(connected("s1", 4), reconnected("s1", 5), price(6)),
    ])
    expect(eventsTagged(actions, "Gap")).toEqual([])
  })

  it("reports messages lost in flight as a gap once reconnected says no jump was announced", () => {
    const { actions } = run(disconnected("s1", 1), [
      Input.Opened(),
      ...receive(connected("s1", 4), reconnected("s1", 5)),
    ])
    expect(
      eventsTagged(actions, "Gap").map(({ expected, received, sessionId }) => ({
        expected,
        received,
        sessionId,
      })),
    ).toEqual([{ expected: 2, received: 4, sessionId: "s1" }])
    // The gap is reported after reconnected is delivered, since only reconnected can explain it.
    expect(outline(actions).slice(0, 4)).toEqual([
      "Emit:Connected",
      "Deliver:connected:4",
      "Deliver:reconnected:5",
      "Emit:Gap",
    ])
  })

  it("does not report a jump the server announced (sequence_jumped, after a crash of its instance)", () => {
    const { state, actions } = run(disconnected("s1", 3), [
      Input.Opened(),
      ...receive(
        connected("s1", 1004),
        reconnected("s1", 1005, {
          sequence_jumped: true,
          sequence_jumped_from: 3,
          sequence_jumped_to: 1003,
        }),
        price(1006),
      ),
    ])
    expect(eventsTagged(actions, "Gap")).toEqual([])
    expect(eventsTagged(actions, "Restored")[0]?.sequenceJumped).toBe(true)
    expect(state.last).toBe(1006)
  })

  it("on a failed restore starts a new session numbered from 1 and sends every subscription again", () => {
    const away = disconnected("s1", 7, { stock: ["005930", "000660"], market: ["KOSPI"] })
    const { state, actions } = run(away, [
      Input.Opened(),
      ...receive(connected("s2", 1), restoreError("s1", 2)),
    ])
    expect(outline(actions)).toEqual([
      "Emit:Connected",
      "Deliver:connected:1",
      "Emit:RestoreFailed",
      "Send:2",
      "Ready",
      "Emit:Ready",
      "Deliver:error:2",
    ])
    expect(eventsTagged(actions, "RestoreFailed")).toEqual([
      expect.objectContaining({ previousSessionId: "s1", sessionId: "s2" }),
    ])
    expect(sent(actions)).toEqual([
      { type: "subscribe", subscription_type: "stock", targets: ["005930", "000660"] },
      { type: "subscribe", subscription_type: "market", targets: ["KOSPI"] },
    ])
    expect(eventsTagged(actions, "Gap")).toEqual([])
    expect(state).toMatchObject({ status: "ready", sessionId: "s2", last: 2 })
  })

  it("treats SESSION_RESTORATION_FAILED after a connected that kept the id as a failed restore", () => {
    const { state, actions } = run(disconnected("s1", 2, { stock: ["005930"] }), [
      Input.Opened(),
      ...receive(connected("s1", 3), restoreError("s1", 4)),
    ])
    expect(eventsTagged(actions, "RestoreFailed")).toEqual([
      expect.objectContaining({ previousSessionId: "s1", sessionId: "s1" }),
    ])
    expect(sent(actions)).toEqual([{ type: "subscribe", subscription_type: "stock", targets: ["005930"] }])
    expect(state.status).toBe("ready")
  })

  it("delivers a reconnected it did not wait for without a second handshake", () => {
    const ready = run(initial({}), [Input.Opened(), ...receive(connected("s1", 1))]).state
    const { actions } = step(ready, Input.Received({ message: reconnected("s1", 2) }))
    expect(outline(actions)).toEqual(["Deliver:reconnected:2"])
  })

  it("presents the session it holds when the next connection opens", () => {
    const next = step(disconnected("s1", 3), Input.Opened()).state
    expect(next).toMatchObject({ status: "handshaking", restoring: "s1", awaiting: "connected" })
  })
})

describe("sequence numbers", () => {
  const ready = run(initial({}), [Input.Opened(), ...receive(connected("s1", 1))]).state

  it("reports a number other than the next as a gap, then follows the server", () => {
    const { state, actions } = run(ready, receive(price(2), price(5), price(6), price(3)))
    expect(eventsTagged(actions, "Gap").map(({ expected, received }) => [expected, received])).toEqual([
      [3, 5],
      [7, 3],
    ])
    expect(state.last).toBe(3)
    expect(outline(actions).filter((a) => a.startsWith("Deliver"))).toHaveLength(4)
  })

  it("reports a new session whose connected is not number 1", () => {
    const { actions } = run(initial({}), [Input.Opened(), ...receive(connected("s1", 3))])
    expect(eventsTagged(actions, "Gap").map(({ expected, received }) => [expected, received])).toEqual([
      [1, 3],
    ])
  })

  it("counts a message it could not type, so it is not also reported as a gap", () => {
    const { actions } = run(ready, [
      Input.Unreadable({ sequence: 2 }),
      Input.Unreadable({ sequence: undefined }),
      ...receive(price(3)),
    ])
    expect(outline(actions)).toEqual(["Deliver:price_update:3"])
  })
})

describe("subscriptions", () => {
  const ready = run(initial({}), [Input.Opened(), ...receive(connected("s1", 1))]).state

  it("sends a change at once when ready, without duplicates, in chunks of at most 100", () => {
    const codes = Array.from({ length: 150 }, (_, i) => String(100000 + i))
    const { state, actions } = step(
      ready,
      Input.Subscribe({ subscriptionType: "stock", targets: [...codes, codes[0] ?? ""] }),
    )
    expect(sent(actions).map((m) => [m.type, "targets" in m ? m.targets.length : 0])).toEqual([
      ["subscribe", 100],
      ["subscribe", 50],
    ])
    expect(state.desired.stock.size).toBe(150)
    const removed = step(state, Input.Unsubscribe({ subscriptionType: "stock", targets: ["100000"] }))
    expect(sent(removed.actions)).toEqual([
      { type: "unsubscribe", subscription_type: "stock", targets: ["100000"] },
    ])
    expect(removed.state.desired.stock.has("100000")).toBe(false)
  })

  it("changes nothing for an empty list", () => {
    expect(step(ready, Input.Subscribe({ subscriptionType: "stock", targets: [] }))).toEqual({
      state: ready,
      actions: [],
    })
  })

  it("only records a change while not connected (the next handshake sends it)", () => {
    const { state, actions } = step(
      disconnected("s1", 1),
      Input.Subscribe({ subscriptionType: "market", targets: ["KOSPI"] }),
    )
    expect(actions).toEqual([])
    expect([...state.desired.market]).toEqual(["KOSPI"])
  })

  it("forgets targets the server rejected, so they are not sent again after a reconnect", () => {
    const wanting = step(
      ready,
      Input.Subscribe({ subscriptionType: "stock", targets: ["005930", "XX", "YY"] }),
    )
    const rejection = server({
      type: "error",
      code: "SUBSCRIPTION_FAILED",
      message: "Unable to subscribe to some targets",
      details: {
        subscription_type: "stock",
        rejected: [{ target: "XX", reason: "unknown" }, "YY", { reason: "no target" }, 42],
        accepted: ["005930"],
      },
      sequence: 2,
    })
    const { state } = step(wanting.state, Input.Received({ message: rejection }))
    expect([...state.desired.stock]).toEqual(["005930"])
  })
})

describe("status", () => {
  it("follows the connection: reconnecting when it closes, connecting before the next, closed at the end", () => {
    const ready = run(initial({}), [Input.Opened(), ...receive(connected("s1", 1))]).state
    const lost = step(ready, Input.LinkClosed()).state
    expect(lost).toMatchObject({ status: "reconnecting", sessionId: "s1", last: 1 })
    expect(step(lost, Input.Connecting()).state.status).toBe("connecting")
    expect(step(lost, Input.Closed()).state.status).toBe("closed")
  })

  it("keeps the token to use for the next connect", () => {
    expect(step(initial({ token: "a" }), Input.TokenChanged({ token: "b" })).state.token).toBe("b")
  })

  it("starts connecting with the session, token and subscriptions it was given", () => {
    const start = initial({
      sessionId: "saved",
      token: "t",
      desired: addTargets(emptyDesired, "sector", ["IT"]),
    })
    expect(start).toMatchObject({ status: "connecting", sessionId: "saved", token: "t", last: 0 })
    expect(step(start, Input.Opened()).state.restoring).toBe("saved")
  })
})
