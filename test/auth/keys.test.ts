/**
 * Key sources other than a JWK set: a PEM public key (JWT_PUBLIC_KEY), the HS256 shared secret
 * (JWT_SECRET), both at once chosen by the token's `alg`, and none. Plus the failures every
 * source shares: bad signature, expiry, a token that is not a JWT.
 */
import { Either } from "effect"
import { importPKCS8, SignJWT } from "jose"
import { afterEach, describe, expect, it } from "vitest"
import { claimsOf, JwksServer, makeKey, sign, signAs, signHs256, verifierFor } from "./support.js"

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789"

/** A self-signed P-256 certificate and its private key, made for this test only (`openssl req -x509`). */
const TEST_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUPziLtzHZuYxsrPNvhWYLGixm7iIwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVcXVvdGVjYXN0IHRlc3QgaXNzdWVyMCAXDTI2MTIwNTExNTIx
N1oYDzIxMjYxMTExMTE1MjE3WjAgMR4wHAYDVQQDDBVxdW90ZWNhc3QgdGVzdCBp
c3N1ZXIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARrtbKrcFAhE1ulNtH89jDB
J0ngJKLgJUa157PNDUAOGHnKl8P9PpjKcxJacf2dwL3ChDWpbN20Eo2aTRjgS0D9
o1MwUTAdBgNVHQ4EFgQUR+aO+PA4iH5UKC5rKGchj3MiEgowHwYDVR0jBBgwFoAU
R+aO+PA4iH5UKC5rKGchj3MiEgowDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiBVNHKFArBqSzrfOEqXIrQbeMB2hSS8K6hwLk3Ayo3oWgIhAKMt0Ngd
yeIwhYtaKVxgcQBB0eRMDiLgvNDUYoF0+Bkf
-----END CERTIFICATE-----`
const TEST_CERTIFICATE_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeUoTjOVSMi2h3S+2
21bK9Mc0JlVGFK6E+kUzxhACHZWhRANCAARrtbKrcFAhE1ulNtH89jDBJ0ngJKLg
JUa157PNDUAOGHnKl8P9PpjKcxJacf2dwL3ChDWpbN20Eo2aTRjgS0D9
-----END PRIVATE KEY-----`
const reasonOf = (r: Either.Either<unknown, string>) => (Either.isLeft(r) ? r.left : "accepted")

describe("JWT_PUBLIC_KEY (PEM)", () => {
  it.each(["RS256", "ES256", "EdDSA"] as const)(
    "verifies %s tokens, the algorithm inferred from the key",
    async (alg) => {
      const key = await makeKey(alg)
      const { verify } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem })
      expect(claimsOf(await verify(await sign(key, { sub: "alice" }, { kid: undefined }))).userId).toBe(
        "alice",
      )
    },
  )

  it("verifies ES256 tokens with the key of an X.509 certificate", async () => {
    const { verify } = await verifierFor({ JWT_PUBLIC_KEY: TEST_CERTIFICATE })
    const token = await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "ES256" })
      .sign(await importPKCS8(TEST_CERTIFICATE_KEY, "ES256"))
    expect(claimsOf(await verify(token)).userId).toBe("alice")
  })

  it("reads a PEM whose line breaks were written as \\n in one line", async () => {
    const key = await makeKey("ES256")
    const { verify } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem.replaceAll("\n", "\\n") })
    expect(Either.isRight(await verify(await sign(key, { sub: "alice" })))).toBe(true)
  })

  it("refuses a token signed by another key (bad_signature) and an algorithm the key is not configured for (alg_not_allowed)", async () => {
    const [key, other] = await Promise.all([makeKey("RS256"), makeKey("RS256")])
    const { verify } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem })
    expect(reasonOf(await verify(await sign(other, { sub: "mallory" })))).toBe("bad_signature")
    // RS512 fits an RSA key, but only RS256 is inferred without JWT_ALGORITHMS.
    expect(reasonOf(await verify(await signAs(key, "RS512", { sub: "alice" })))).toBe("alg_not_allowed")
  })

  it("verifies the algorithms JWT_ALGORITHMS lists for the key", async () => {
    const key = await makeKey("RS256")
    const { verify } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem, JWT_ALGORITHMS: "RS256,PS256" })
    expect(claimsOf(await verify(await signAs(key, "PS256", { sub: "alice" }))).userId).toBe("alice")
    expect(Either.isRight(await verify(await sign(key, { sub: "alice" })))).toBe(true)
  })
})

describe("JWT_SECRET (HS256)", () => {
  it("verifies HS256 tokens as before: sub, role, exp, rate_limit", async () => {
    const { verify } = await verifierFor({ JWT_SECRET: SECRET })
    const exp = Math.floor(Date.now() / 1000) + 60
    const claims = claimsOf(
      await verify(await signHs256(SECRET, { sub: "alice", role: "admin", exp, rate_limit: 7 })),
    )
    expect(claims).toEqual({ userId: "alice", role: "admin", expiresAt: exp * 1000, rateLimit: 7 })
  })

  it("refuses another secret's token (bad_signature), an expired one (expired) and one that is not a JWT (malformed)", async () => {
    const { verify } = await verifierFor({ JWT_SECRET: SECRET })
    expect(reasonOf(await verify(await signHs256(`${SECRET}-other`, { sub: "alice" })))).toBe("bad_signature")
    const expired = await signHs256(SECRET, { sub: "alice", exp: Math.floor(Date.now() / 1000) - 60 })
    expect(reasonOf(await verify(expired))).toBe("expired")
    expect(reasonOf(await verify("not-a-jwt"))).toBe("malformed")
    expect(reasonOf(await verify("e30.e30.e30"))).toBe("malformed")
  })

  it("refuses a token signed with an asymmetric key when only the secret is configured (alg_not_allowed)", async () => {
    const key = await makeKey("RS256")
    const { verify } = await verifierFor({ JWT_SECRET: SECRET })
    expect(reasonOf(await verify(await sign(key, { sub: "alice" })))).toBe("alg_not_allowed")
  })
})

describe("several key sources", () => {
  const servers: Array<JwksServer> = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()))
  })

  it("with JWT_SECRET and JWT_JWKS_URL, the token's alg picks the source: HS256 tokens and the provider's tokens both verify", async () => {
    const key = await makeKey("RS256")
    const jwks = await JwksServer.start([key])
    servers.push(jwks)
    const { verify } = await verifierFor({ JWT_SECRET: SECRET, JWT_JWKS_URL: jwks.url })
    expect(claimsOf(await verify(await signHs256(SECRET, { sub: "legacy" }))).userId).toBe("legacy")
    expect(claimsOf(await verify(await sign(key, { sub: "from-idp" }))).userId).toBe("from-idp")
    expect(jwks.requests).toBe(1)
  })

  it("the provider's rules (issuer, audience, claims) apply to its tokens; HS256 tokens keep sub and role", async () => {
    const key = await makeKey("ES256")
    const { verify } = await verifierFor({
      JWT_SECRET: SECRET,
      JWT_PUBLIC_KEY: key.publicPem,
      JWT_ISSUER: "https://idp.test",
      JWT_AUDIENCE: "quotecast",
      JWT_ROLE_CLAIM: "realm_access.roles",
    })
    const legacy = claimsOf(await verify(await signHs256(SECRET, { sub: "feed", role: "publisher" })))
    expect(legacy).toMatchObject({ userId: "feed", role: "publisher" })
    const fromIdp = {
      sub: "alice",
      iss: "https://idp.test",
      aud: "quotecast",
      realm_access: { roles: ["admin"] },
    }
    expect(claimsOf(await verify(await sign(key, fromIdp))).role).toBe("admin")
    expect(reasonOf(await verify(await sign(key, { sub: "alice", role: "admin" })))).toBe("wrong_issuer")
  })

  it("an HS256 token against a JWK set alone is refused before any fetch (alg_not_allowed)", async () => {
    const jwks = await JwksServer.start([await makeKey("RS256")])
    servers.push(jwks)
    const { verify } = await verifierFor({ JWT_JWKS_URL: jwks.url })
    expect(reasonOf(await verify(await signHs256(SECRET, { sub: "alice" })))).toBe("alg_not_allowed")
    expect(jwks.requests).toBe(0)
  })

  it("with no key source configured, every token is refused (no_secret_configured) and counted", async () => {
    const { verify, stats } = await verifierFor({})
    expect(reasonOf(await verify(await signHs256(SECRET, { sub: "alice" })))).toBe("no_secret_configured")
    expect(stats.tokenRejections.get("no_secret_configured")).toBe(1)
  })
})
