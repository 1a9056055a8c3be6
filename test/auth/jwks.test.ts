/**
 * JWT_JWKS_URL: tokens verified with the keys an identity provider publishes, against a real JWKS
 * server on 127.0.0.1. Keys are picked up when they rotate, refetches are bounded by the
 * cooldown, and a provider that is down or hangs neither blocks verification nor locks out the
 * keys already known.
 */
import { Either } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { waitFor } from "../support/gateway.js"
import { claimsOf, JwksServer, makeKey, type SigningKey, sign, verifierFor } from "./support.js"

const servers: Array<JwksServer> = []
const serve = async (keys: ReadonlyArray<SigningKey>) => {
  const server = await JwksServer.start(keys)
  servers.push(server)
  return server
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

const reasonOf = (r: Either.Either<unknown, string>) => (Either.isLeft(r) ? r.left : "accepted")

describe("JWT_JWKS_URL", () => {
  it("verifies RS256, ES256 and EdDSA tokens signed with keys the set publishes, fetching it once", async () => {
    const keys = await Promise.all([makeKey("RS256"), makeKey("ES256"), makeKey("EdDSA")])
    const jwks = await serve(keys)
    const { verify } = await verifierFor({ JWT_JWKS_URL: jwks.url })
    for (const key of keys) {
      const claims = claimsOf(await verify(await sign(key, { sub: `user-${key.alg}` })))
      expect(claims.userId).toBe(`user-${key.alg}`)
    }
    expect(jwks.requests).toBe(1)
  })

  it("follows a key rotation without a restart: the new kid is fetched, the removed one stops verifying", async () => {
    const [oldKey, newKey] = await Promise.all([makeKey("RS256"), makeKey("RS256")])
    const jwks = await serve([oldKey])
    const { verify } = await verifierFor({ JWT_JWKS_URL: jwks.url, JWT_JWKS_COOLDOWN_MS: "0" })
    expect(claimsOf(await verify(await sign(oldKey, { sub: "alice" }))).userId).toBe("alice")

    jwks.serve([newKey])
    expect(claimsOf(await verify(await sign(newKey, { sub: "alice" }))).userId).toBe("alice")
    expect(jwks.requests).toBe(2)
    expect(reasonOf(await verify(await sign(oldKey, { sub: "alice" })))).toBe("unknown_key")
  })

  it("refetches for unknown kids at most once per JWT_JWKS_COOLDOWN_MS", async () => {
    const [known, rotated] = await Promise.all([makeKey("ES256"), makeKey("ES256")])
    const jwks = await serve([known])
    const { verify, stats } = await verifierFor({ JWT_JWKS_URL: jwks.url, JWT_JWKS_COOLDOWN_MS: "60000" })
    expect(Either.isRight(await verify(await sign(known, { sub: "bob" })))).toBe(true)

    jwks.serve([known, rotated])
    for (let i = 0; i < 5; i++)
      expect(reasonOf(await verify(await sign(rotated, { sub: "bob" })))).toBe("unknown_key")
    expect(jwks.requests).toBe(1)
    expect(stats.tokenRejections.get("unknown_key")).toBe(5)
  })

  it("refuses a token signed by a key the set does not hold (unknown_key), or by another key under a known kid (bad_signature)", async () => {
    const [published, stranger] = await Promise.all([
      makeKey("RS256", "published"),
      makeKey("RS256", "stranger"),
    ])
    const jwks = await serve([published])
    const { verify } = await verifierFor({ JWT_JWKS_URL: jwks.url, JWT_JWKS_COOLDOWN_MS: "0" })
    expect(reasonOf(await verify(await sign(stranger, { sub: "mallory" })))).toBe("unknown_key")
    expect(reasonOf(await verify(await sign(stranger, { sub: "mallory" }, { kid: "published" })))).toBe(
      "bad_signature",
    )
  })

  it("while the provider is down, keys already fetched keep verifying (even past their max age) and a new kid fails with jwks_unavailable", async () => {
    const [known, unseen] = await Promise.all([makeKey("RS256"), makeKey("RS256")])
    const jwks = await serve([known])
    // Max age 0: every verification wants a fresh set, so each one below meets the outage.
    const { verify, logs, stats } = await verifierFor({
      JWT_JWKS_URL: jwks.url,
      JWT_JWKS_CACHE_MAX_AGE_MS: "0",
      JWT_JWKS_COOLDOWN_MS: "60000",
    })
    expect(Either.isRight(await verify(await sign(known, { sub: "carol" })))).toBe(true)

    await jwks.stop()
    for (let i = 0; i < 3; i++)
      expect(claimsOf(await verify(await sign(known, { sub: "carol" }))).userId).toBe("carol")
    expect(reasonOf(await verify(await sign(unseen, { sub: "carol" })))).toBe("jwks_unavailable")
    expect(stats.tokenRejections.get("jwks_unavailable")).toBe(1)
    // Said once, not once per token.
    expect(logs.filter((l) => l.startsWith("JWKS fetch failed"))).toHaveLength(1)
  })

  it("a provider that accepts the request and never answers costs one JWT_JWKS_TIMEOUT_MS, then fails fast until the cooldown ends", async () => {
    const key = await makeKey("EdDSA")
    const jwks = await serve([key])
    jwks.hang()
    const { verify } = await verifierFor({
      JWT_JWKS_URL: jwks.url,
      JWT_JWKS_TIMEOUT_MS: "200",
      JWT_JWKS_COOLDOWN_MS: "60000",
    })
    expect(reasonOf(await verify(await sign(key, { sub: "dave" })))).toBe("jwks_unavailable")
    expect(reasonOf(await verify(await sign(key, { sub: "dave" })))).toBe("jwks_unavailable")
    expect(jwks.requests).toBe(1)
  })

  it("once the provider answers again, a key published meanwhile verifies after the cooldown", async () => {
    const [known, added] = await Promise.all([makeKey("ES256"), makeKey("ES256")])
    const jwks = await serve([known])
    const { verify } = await verifierFor({ JWT_JWKS_URL: jwks.url, JWT_JWKS_COOLDOWN_MS: "200" })
    expect(Either.isRight(await verify(await sign(known, { sub: "erin" })))).toBe(true)

    jwks.fail(true)
    jwks.serve([known, added])
    const token = await sign(added, { sub: "erin" })
    await waitFor(
      async () => reasonOf(await verify(token)) === "jwks_unavailable",
      5_000,
      "the failed refetch",
    )
    expect(Either.isRight(await verify(await sign(known, { sub: "erin" })))).toBe(true)

    jwks.fail(false)
    await waitFor(async () => Either.isRight(await verify(token)), 5_000, "the added key to verify")
  })
})

describe("JWT_ISSUER and JWT_AUDIENCE", () => {
  const setup = async () => {
    const key = await makeKey("RS256")
    const jwks = await serve([key])
    const { verify } = await verifierFor({
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: "https://idp.test/realms/quotecast",
      JWT_AUDIENCE: "quotecast, market-data",
    })
    const token = (claims: Record<string, unknown>) => sign(key, { sub: "frank", ...claims })
    return { verify, token }
  }
  const iss = "https://idp.test/realms/quotecast"

  it("accepts the configured issuer with any of the configured audiences", async () => {
    const { verify, token } = await setup()
    expect(Either.isRight(await verify(await token({ iss, aud: "quotecast" })))).toBe(true)
    expect(Either.isRight(await verify(await token({ iss, aud: ["account", "market-data"] })))).toBe(true)
  })

  it("refuses another or a missing issuer (wrong_issuer), and another or a missing audience (wrong_audience)", async () => {
    const { verify, token } = await setup()
    expect(reasonOf(await verify(await token({ iss: "https://evil.test", aud: "quotecast" })))).toBe(
      "wrong_issuer",
    )
    expect(reasonOf(await verify(await token({ aud: "quotecast" })))).toBe("wrong_issuer")
    expect(reasonOf(await verify(await token({ iss, aud: "account" })))).toBe("wrong_audience")
    expect(reasonOf(await verify(await token({ iss })))).toBe("wrong_audience")
  })
})
