/**
 * Property-based protocol tests against a real gateway:
 * - whatever frame a client sends, it gets the answer docs/protocol.md prescribes and stays usable;
 * - for any sequence of subscribe / unsubscribe / reconnect, the server's subscription state
 *   (as the admin API reports it) equals a simple model's.
 * The protocol Schemas are the oracle for which frames are valid.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { ClientMessage, Ping, Subscribe, Unsubscribe } from "../../src/protocol/client.js"
import { connect, connectionsOf, type Message, ofType, TestClient, useGateway } from "../support/gateway.js"

const MAX = 8
const gw = useGateway({ rateLimit: 100_000, maxSubscriptions: MAX })

const isClientMessage = Schema.is(ClientMessage)
/**
 * The oracle. `type` is checked first: Effect's union parser reads the discriminator with
 * `String()`, which throws for a value like `{"toString":false}` (fast-check found it). The
 * gateway itself checks the type before decoding, so such a frame gets INVALID_MESSAGE there.
 */
const isValid = (u: unknown): boolean =>
  typeof u === "object" &&
  u !== null &&
  typeof (u as { type?: unknown }).type === "string" &&
  isClientMessage(u)
const STOCKS = ["005930", "000660", "035420", "035720", "066570", "105560", "999999"]
const MARKETS = ["KOSPI", "KOSDAQ", "NYSE"]
const SECTORS = ["IT", "FINANCE", "HEALTHCARE", "CRYPTO"]

/** Frames a careless or hostile client might send. */
const frameArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.json(),
  fc.string(),
  // a `type` that is an object whose conversion to a string throws
  fc.constant('{"type":{"toString":false}}'),
  fc.uint8Array({ minLength: 1, maxLength: 64 }),
  Arbitrary.make(ClientMessage).map((m) => JSON.stringify(m)),
  // valid messages with one field corrupted
  fc
    .tuple(
      Arbitrary.make(Schema.Union(Subscribe, Unsubscribe, Ping)),
      fc.constantFrom("type", "subscription_type", "targets", "id"),
      fc.jsonValue(),
    )
    .map(([m, field, value]) => JSON.stringify({ ...m, [field]: value })),
)

/** Sends a frame, then a ping; returns what came back before the pong. */
const roundTrip = async (
  client: TestClient,
  frame: string | Uint8Array,
  marker: number,
): Promise<Array<Message>> => {
  client.sendRaw(frame)
  client.send({ type: "ping", id: `marker-${marker}` })
  const answers: Array<Message> = []
  for (;;) {
    const m = await client.next()
    if (m.type === "pong" && m.id === `marker-${marker}`) return answers
    answers.push(m)
  }
}

describe("any frame gets the prescribed answer and the connection stays usable", () => {
  it("holds for arbitrary frames", async () => {
    const { client } = await connect(gw)
    let marker = 0
    await fc.assert(
      fc.asyncProperty(frameArb, async (frame) => {
        const answers = await roundTrip(client, frame, marker++)
        const errors = ofType(answers, "error")
        let parsed: unknown
        const json = typeof frame === "string" ? Either.try(() => JSON.parse(frame)) : Either.left(undefined)
        if (Either.isRight(json)) parsed = json.right
        if (typeof frame !== "string" || Either.isLeft(json) || !isValid(parsed)) {
          expect(answers).toHaveLength(1)
          expect(errors[0]?.code).toBe("INVALID_MESSAGE")
          expect(typeof errors[0]?.details?.reason).toBe("string")
          return
        }
        const msg = Schema.decodeUnknownSync(ClientMessage)(parsed)
        switch (msg.type) {
          case "ping":
            expect(answers.filter((m) => m.type === "pong")).toHaveLength(1)
            break
          case "subscribe":
            expect(
              answers.some(
                (m) => m.type === "subscribed" || (m.type === "error" && m.code === "SUBSCRIPTION_FAILED"),
              ),
            ).toBe(true)
            break
          case "unsubscribe":
            expect(answers.filter((m) => m.type === "unsubscribed")).toHaveLength(1)
            break
          case "refresh_token":
            expect(errors.map((e) => e.code)).toEqual(["TOKEN_REFRESH_ERROR"])
            break
          case "reconnect":
            expect(
              answers.some(
                (m) =>
                  m.type === "reconnected" || (m.type === "error" && m.code === "SESSION_RESTORATION_FAILED"),
              ),
            ).toBe(true)
            break
        }
        expect(errors.every((e) => e.code !== "INVALID_MESSAGE")).toBe(true)
      }),
      { numRuns: 150 },
    )
    expect(client.ws.readyState).toBe(client.ws.OPEN)
    await client.close()
  }, 60_000)
})

// ---- model-based: subscription state ----

type Kind = "stock" | "market" | "sector"
interface Model {
  subs: Record<Kind, Set<string>>
}
interface Real {
  client: TestClient
  sessionId: string
  connectionId: string
}

const known = (kind: Kind, t: string) =>
  kind === "stock" ? t !== "999999" : kind === "market" ? t !== "NYSE" : t !== "CRYPTO"
const total = (m: Model) => m.subs.stock.size + m.subs.market.size + m.subs.sector.size

const serverState = async (connectionId: string) => {
  const list = await connectionsOf(gw)
  return list.find((c) => c.connection_id === connectionId)?.subscriptions
}

/** After every command: what the admin API reports for the connection equals the model. */
const expectServerMatches = async (model: Model, real: Real) => {
  const state = await serverState(real.connectionId)
  const sorted = (xs: Iterable<string> | undefined) => [...(xs ?? [])].sort()
  expect({
    stock: sorted(state?.stock),
    market: sorted(state?.market),
    sector: sorted(state?.sector),
  }).toEqual({
    stock: sorted(model.subs.stock),
    market: sorted(model.subs.market),
    sector: sorted(model.subs.sector),
  })
}

const targetsArb = (kind: Kind) =>
  fc.uniqueArray(fc.constantFrom(...(kind === "stock" ? STOCKS : kind === "market" ? MARKETS : SECTORS)), {
    minLength: 1,
    maxLength: 4,
  })
const kindArb = fc.constantFrom<Kind>("stock", "market", "sector")

class SubscribeCmd implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly kind: Kind,
    readonly targets: ReadonlyArray<string>,
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    real.client.send({ type: "subscribe", subscription_type: this.kind, targets: this.targets })
    const expectAccepted: Array<string> = []
    let count = total(model)
    for (const t of this.targets) {
      if (model.subs[this.kind].has(t)) expectAccepted.push(t)
      else if (known(this.kind, t) && count < MAX) {
        expectAccepted.push(t)
        model.subs[this.kind].add(t)
        count++
      }
    }
    if (expectAccepted.length > 0) {
      expect((await real.client.nextOfType("subscribed")).targets).toEqual(expectAccepted)
    }
    if (expectAccepted.length < this.targets.length) {
      expect((await real.client.nextOfType("error")).code).toBe("SUBSCRIPTION_FAILED")
    }
    await expectServerMatches(model, real)
  }
  toString = () => `subscribe(${this.kind}, ${this.targets})`
}

class UnsubscribeCmd implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly kind: Kind,
    readonly targets: ReadonlyArray<string>,
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    real.client.send({ type: "unsubscribe", subscription_type: this.kind, targets: this.targets })
    const removed = this.targets.filter((t) => model.subs[this.kind].delete(t))
    expect((await real.client.nextOfType("unsubscribed")).targets).toEqual(removed)
    await expectServerMatches(model, real)
  }
  toString = () => `unsubscribe(${this.kind}, ${this.targets})`
}

class ReconnectCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(model: Model, real: Real) {
    await real.client.close()
    const next = await connect(gw, `session_id=${real.sessionId}`)
    expect(next.connected.session_id).toBe(real.sessionId)
    await next.client.nextOfType("reconnected")
    real.client = next.client
    real.connectionId = next.connected.connection_id
    await expectServerMatches(model, real)
  }
  toString = () => "reconnect"
}

describe("subscription state follows a model", () => {
  it("for arbitrary sequences of subscribe, unsubscribe and reconnect", async () => {
    const commands = [
      kindArb.chain((k) => targetsArb(k).map((t) => new SubscribeCmd(k, t))),
      kindArb.chain((k) => targetsArb(k).map((t) => new UnsubscribeCmd(k, t))),
      fc.constant(new ReconnectCmd()),
    ]
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 12 }), async (cmds) => {
        const { client, connected } = await connect(gw)
        const real: Real = { client, sessionId: connected.session_id, connectionId: connected.connection_id }
        const model: Model = { subs: { stock: new Set(), market: new Set(), sector: new Set() } }
        await fc.asyncModelRun(() => ({ model, real }), cmds)
        await real.client.close()
      }),
      { numRuns: 25 },
    )
  }, 90_000)
})
