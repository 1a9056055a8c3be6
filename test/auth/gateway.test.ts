/**
 * The gateway behind an identity provider: configured with JWT_JWKS_URL (beside its HS256
 * secret), a WebSocket and the operator's `/api/v1/users/me` accept the provider's RS256 tokens,
 * and refused tokens are counted by reason in `/metrics`; configured with JWT_PUBLIC_KEY (a PEM),
 * `/api/v1/users/me` accepts tokens of its private key.
 */
import { Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, type RunningGateway, signToken, startGateway } from "../support/gateway.js"
import { JwksServer, makeKey, type SigningKey, sign } from "./support.js"

const ISSUER = "https://idp.test/realms/quotecast"

let jwks: JwksServer
let key: SigningKey
let gw: RunningGateway

beforeAll(async () => {
  key = await makeKey("RS256")
  jwks = await JwksServer.start([key])
  gw = await startGateway({
    jwtJwksUrl: Option.some(jwks.url),
    jwtIssuer: Option.some([ISSUER]),
    jwtAudience: Option.some(["quotecast"]),
    jwtRoleClaim: Option.some(["realm_access", "roles"]),
  })
})

afterAll(async () => {
  await gw?.stop()
  await jwks?.stop()
})

const idpToken = (sub: string, roles: ReadonlyArray<string>) =>
  sign(key, { sub, iss: ISSUER, aud: "quotecast", realm_access: { roles: ["offline_access", ...roles] } })

const me = (token: string, at: RunningGateway = gw) =>
  fetch(`${at.httpUrl}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } })

describe("a gateway configured with JWT_JWKS_URL", () => {
  it("connects a WebSocket with the provider's RS256 token as its user", async () => {
    const { client, connected } = await connect(gw, `token=${await idpToken("alice", [])}`)
    expect(connected).toMatchObject({ type: "connected", user_id: "alice" })
    await client.close()
  })

  it("answers /api/v1/users/me for the provider's token, the role read from realm_access.roles", async () => {
    const res = await me(await idpToken("ops-1", ["publisher", "admin"]))
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ user_id: "ops-1", role: "admin", expires_at: null })
  })

  it("still accepts HS256 tokens signed with JWT_SECRET beside it, in quotecast's own shape (sub, role)", async () => {
    const res = await me(await signToken({ sub: "legacy", role: "publisher" }))
    expect(await res.json()).toMatchObject({ user_id: "legacy", role: "publisher" })
  })

  it("refuses a token of an unknown key with its reason, on the WebSocket and over HTTP, and counts both", async () => {
    const stranger = await makeKey("RS256")
    const token = await sign(stranger, { sub: "mallory", iss: ISSUER, aud: "quotecast" })
    const res = await me(token)
    expect(res.status).toBe(401)
    expect(await res.json()).toMatchObject({ message: "Invalid token (unknown_key)" })

    const { client } = await connect(gw, `token=${token}`)
    expect(await client.nextOfType("error")).toMatchObject({
      code: "INVALID_TOKEN",
      details: { reason: "unknown_key" },
    })
    expect((await client.closed).code).toBe(4001)

    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text()
    expect(metrics).toContain('quotecast_token_rejections_total{reason="unknown_key"} 2')
  })
})

describe("a gateway configured with JWT_PUBLIC_KEY", () => {
  let pem: SigningKey
  let pemGw: RunningGateway

  beforeAll(async () => {
    pem = await makeKey("ES256")
    pemGw = await startGateway({
      jwtPublicKey: Option.some(pem.publicPem),
      jwtIssuer: Option.some([ISSUER]),
      jwtAudience: Option.some(["quotecast"]),
    })
  })

  afterAll(() => pemGw?.stop())

  it("answers /api/v1/users/me for an ES256 token of the PEM key's private half, and refuses another key's", async () => {
    const exp = Math.floor(Date.now() / 1000) + 3600
    const res = await me(
      await sign(pem, { sub: "ops-2", iss: ISSUER, aud: "quotecast", role: "publisher", exp }),
      pemGw,
    )
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      user_id: "ops-2",
      role: "publisher",
      expires_at: new Date(exp * 1000).toISOString(),
    })

    const other = await makeKey("ES256")
    const refused = await me(await sign(other, { sub: "mallory", iss: ISSUER, aud: "quotecast" }), pemGw)
    expect(refused.status).toBe(401)
    expect(await refused.json()).toMatchObject({ message: "Invalid token (bad_signature)" })
  })
})
