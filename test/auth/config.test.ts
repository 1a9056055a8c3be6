/**
 * The verifier's configuration is checked at startup: a value that cannot work stops the gateway
 * with a message naming the variable, instead of refusing every token later.
 */
import { generateKeyPairSync } from "node:crypto"
import { describe, expect, it } from "vitest"
import { configErrorFor, makeKey } from "./support.js"

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789"
const JWKS = "https://idp.test/realms/quotecast/protocol/openid-connect/certs"

describe("JWT configuration at startup", () => {
  it("accepts each source alone, and JWT_SECRET beside JWT_JWKS_URL or JWT_PUBLIC_KEY", async () => {
    const { publicPem } = await makeKey("RS256")
    for (const env of [
      {},
      { JWT_SECRET: SECRET },
      { JWT_JWKS_URL: JWKS },
      { JWT_PUBLIC_KEY: publicPem },
      { JWT_SECRET: SECRET, JWT_JWKS_URL: JWKS, JWT_ISSUER: "https://idp.test", JWT_AUDIENCE: "a,b" },
      { JWT_SECRET: SECRET, JWT_PUBLIC_KEY: publicPem, JWT_ALGORITHMS: "RS256,PS256" },
      { JWT_JWKS_URL: JWKS, JWT_ALGORITHMS: "ES256", JWT_ROLE_CLAIM: "resource_access.quotecast.roles" },
    ])
      expect(await configErrorFor(env)).toBeUndefined()
  })

  it.each([
    [
      "JWT_PUBLIC_KEY and JWT_JWKS_URL together",
      { JWT_JWKS_URL: JWKS, JWT_PUBLIC_KEY: "pem" },
      /cannot both be set/,
    ],
    [
      "a JWKS URL that is not http(s)",
      { JWT_JWKS_URL: "ftp://idp.test/certs" },
      /JWT_JWKS_URL must be an http/,
    ],
    ["a JWKS URL that is not a URL", { JWT_JWKS_URL: "idp.test/certs" }, /JWT_JWKS_URL must be an http/],
    [
      "an HS256 secret shorter than 32 bytes",
      { JWT_SECRET: "short" },
      /JWT_SECRET must be at least 32 bytes/,
    ],
    [
      "an unknown algorithm",
      { JWT_JWKS_URL: JWKS, JWT_ALGORITHMS: "RS256,none" },
      /JWT_ALGORITHMS must be a comma list/,
    ],
    [
      "HS256 in JWT_ALGORITHMS",
      { JWT_JWKS_URL: JWKS, JWT_ALGORITHMS: "HS256" },
      /HS256 comes with JWT_SECRET/,
    ],
    [
      "JWT_ALGORITHMS without a provider's key source",
      { JWT_SECRET: SECRET, JWT_ALGORITHMS: "RS256" },
      /JWT_ALGORITHMS applies to/,
    ],
    [
      "a role claim path with an empty name",
      { JWT_JWKS_URL: JWKS, JWT_ROLE_CLAIM: "realm_access..roles" },
      /JWT_ROLE_CLAIM must be/,
    ],
    [
      "an audience without a provider's key source",
      { JWT_SECRET: SECRET, JWT_AUDIENCE: "quotecast" },
      /JWT_AUDIENCE applies to the tokens of JWT_PUBLIC_KEY or JWT_JWKS_URL/,
    ],
    [
      "a role claim without a provider's key source",
      { JWT_SECRET: SECRET, JWT_ROLE_CLAIM: "roles" },
      /JWT_ROLE_CLAIM applies to/,
    ],
    [
      "a negative cooldown",
      { JWT_JWKS_URL: JWKS, JWT_JWKS_COOLDOWN_MS: "-1" },
      /JWT_JWKS_COOLDOWN_MS must be/,
    ],
    ["a JWKS timeout of 0", { JWT_JWKS_URL: JWKS, JWT_JWKS_TIMEOUT_MS: "0" }, /JWT_JWKS_TIMEOUT_MS must be/],
    [
      "a PEM that is not one",
      { JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" },
      /JWT_PUBLIC_KEY could not be read/,
    ],
    [
      "a value that is not PEM at all",
      { JWT_PUBLIC_KEY: "ssh-ed25519 AAAA" },
      /JWT_PUBLIC_KEY must be a PEM public key/,
    ],
  ])("refuses %s", async (_what, env, message) => {
    expect(await configErrorFor(env)).toMatch(message)
  })

  it("refuses a private key pasted as JWT_PUBLIC_KEY", async () => {
    const { privateKey } = generateKeyPairSync("ed25519")
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString()
    expect(await configErrorFor({ JWT_PUBLIC_KEY: pem })).toMatch(/JWT_PUBLIC_KEY must be a PEM public key/)
  })

  it("refuses algorithms the PEM key cannot verify, naming those it can", async () => {
    const { publicPem } = await makeKey("ES256")
    expect(await configErrorFor({ JWT_PUBLIC_KEY: publicPem, JWT_ALGORITHMS: "RS256" })).toMatch(
      /JWT_ALGORITHMS lists RS256, which the ec key of JWT_PUBLIC_KEY cannot verify \(it can: ES256\)/,
    )
  })

  it("refuses an RSA key under 2048 bits", async () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 })
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString()
    expect(await configErrorFor({ JWT_PUBLIC_KEY: pem })).toMatch(/1024-bit RSA key/)
  })
})
