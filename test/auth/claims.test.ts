/**
 * Which claims carry the user and the role (JWT_USER_CLAIM, JWT_ROLE_CLAIM): a plain `role`, a
 * Keycloak-style nested roles array, admin over publisher, and payloads whose shape is wrong.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { claimsOf, makeKey, type SigningKey, sign, verifierFor } from "./support.js"

const reasonOf = (r: Either.Either<unknown, string>) => (Either.isLeft(r) ? r.left : "accepted")

/** A payload shaped like a Keycloak access token (realm and client roles, preferred_username). */
const keycloakPayload = (realmRoles: ReadonlyArray<string>) => ({
  sub: "f3c1a8e2-5d4b-4c8e-9a7f-0b6d2e4c1a93",
  preferred_username: "alice",
  azp: "quotecast-dashboard",
  realm_access: { roles: ["offline_access", "uma_authorization", ...realmRoles] },
  resource_access: { account: { roles: ["manage-account", "view-profile"] } },
  scope: "openid profile email",
})

const keycloakVerifier = async (key: SigningKey, env: Record<string, string> = {}) =>
  verifierFor({ JWT_PUBLIC_KEY: key.publicPem, JWT_ROLE_CLAIM: "realm_access.roles", ...env })

describe("JWT_ROLE_CLAIM", () => {
  it("reads the role from a Keycloak-style nested roles array", async () => {
    const key = await makeKey("RS256")
    const { verify } = await keycloakVerifier(key)
    const claims = claimsOf(await verify(await sign(key, keycloakPayload(["publisher"]))))
    expect(claims).toMatchObject({ userId: "f3c1a8e2-5d4b-4c8e-9a7f-0b6d2e4c1a93", role: "publisher" })
  })

  it("picks admin over publisher when both appear, and no role when neither does", async () => {
    const key = await makeKey("ES256")
    const { verify } = await keycloakVerifier(key)
    expect(claimsOf(await verify(await sign(key, keycloakPayload(["publisher", "admin"])))).role).toBe(
      "admin",
    )
    expect(claimsOf(await verify(await sign(key, keycloakPayload([])))).role).toBeUndefined()
    const { realm_access: _, ...noRealmAccess } = keycloakPayload([])
    expect(claimsOf(await verify(await sign(key, noRealmAccess))).role).toBeUndefined()
  })

  it("reads a single role string by default from `role`", async () => {
    const key = await makeKey("EdDSA")
    const { verify } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem })
    expect(claimsOf(await verify(await sign(key, { sub: "bob", role: "admin" }))).role).toBe("admin")
    expect(claimsOf(await verify(await sign(key, { sub: "bob", role: "viewer" }))).role).toBeUndefined()
    expect(claimsOf(await verify(await sign(key, { sub: "bob", role: ["publisher"] }))).role).toBe(
      "publisher",
    )
  })

  it("refuses a role claim that is neither a string nor an array of strings (invalid_role_claim)", async () => {
    const key = await makeKey("RS256")
    const { verify } = await keycloakVerifier(key)
    expect(reasonOf(await verify(await sign(key, { sub: "bob", realm_access: { roles: [1, 2] } })))).toBe(
      "invalid_role_claim",
    )
    expect(reasonOf(await verify(await sign(key, { sub: "bob", realm_access: "admin" })))).toBe(
      "invalid_role_claim",
    )
  })
})

describe("JWT_USER_CLAIM", () => {
  it("takes the user id from the configured claim", async () => {
    const key = await makeKey("RS256")
    const { verify } = await keycloakVerifier(key, { JWT_USER_CLAIM: "preferred_username" })
    expect(claimsOf(await verify(await sign(key, keycloakPayload(["admin"])))).userId).toBe("alice")
  })

  it("refuses a token without it (missing_user_id), with an empty one, or with one that is not a string (invalid_user_claim)", async () => {
    const key = await makeKey("RS256")
    const { verify, stats } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem })
    expect(reasonOf(await verify(await sign(key, { role: "admin" })))).toBe("missing_user_id")
    expect(reasonOf(await verify(await sign(key, { sub: "" })))).toBe("missing_user_id")
    const numeric = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem, JWT_USER_CLAIM: "uid" })
    expect(reasonOf(await numeric.verify(await sign(key, { sub: "x", uid: 42 })))).toBe("invalid_user_claim")
    expect(stats.tokenRejections.get("missing_user_id")).toBe(2)
  })

  it("ignores a rate_limit claim that is not a positive number, as before", async () => {
    const key = await makeKey("ES256")
    const { verify } = await verifierFor({ JWT_PUBLIC_KEY: key.publicPem })
    expect(
      claimsOf(await verify(await sign(key, { sub: "x", rate_limit: "fast" }))).rateLimit,
    ).toBeUndefined()
    expect(claimsOf(await verify(await sign(key, { sub: "x", rate_limit: -3 }))).rateLimit).toBeUndefined()
    expect(claimsOf(await verify(await sign(key, { sub: "x", rate_limit: 12.7 }))).rateLimit).toBe(12)
  })
})
