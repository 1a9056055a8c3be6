/**
 * Test support for token verification: signing keys made with jose, a real JWKS server on
 * 127.0.0.1 (node:http), and verifiers built from environment-style settings through the same
 * Config and checks as the gateway's startup.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { Config, ConfigProvider, Effect, Either, Logger } from "effect"
import {
  type CryptoKey,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  importPKCS8,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose"
import type { Claims } from "../../src/auth/claims.js"
import { makeJwtVerifier } from "../../src/auth/JwtVerifier.js"
import { jwtFields, resolveJwt } from "../../src/config/jwtConfig.js"
import { GatewayStatsImpl } from "../../src/metrics/GatewayStats.js"

export type SigningAlg = "RS256" | "ES256" | "EdDSA"

export interface SigningKey {
  readonly alg: SigningAlg
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
  readonly publicPem: string
  readonly privatePem: string
}

let kids = 0

export const makeKey = async (alg: SigningAlg, kid = `key-${++kids}`): Promise<SigningKey> => {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  return {
    alg,
    kid,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
    publicPem: await exportSPKI(publicKey),
    privatePem: await exportPKCS8(privateKey),
  }
}

export const sign = (
  key: SigningKey,
  claims: JWTPayload & Record<string, unknown>,
  header: { readonly kid?: string | undefined } = { kid: key.kid },
): Promise<string> => {
  const jwt = new SignJWT(claims).setProtectedHeader({
    alg: key.alg,
    ...(header.kid === undefined ? {} : { kid: header.kid }),
  })
  return jwt.setIssuedAt().sign(key.privateKey)
}

/** Signs with the key under another algorithm it fits (an RSA key: RS512, PS256...). */
export const signAs = async (key: SigningKey, alg: string, claims: JWTPayload): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(await importPKCS8(key.privatePem, alg))

export const signHs256 = (secret: string, claims: JWTPayload & Record<string, unknown>): Promise<string> =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .sign(new TextEncoder().encode(secret))

/**
 * A JWKS endpoint as an identity provider serves one. `serve` swaps the published keys (a
 * rotation); `hang` makes it accept requests and never answer; `stop` takes it off the network.
 */
export class JwksServer {
  requests = 0
  private keys: ReadonlyArray<SigningKey> = []
  private hanging = false
  private failing = false
  private readonly held: Array<ServerResponse> = []

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(keys: ReadonlyArray<SigningKey>): Promise<JwksServer> {
    let self: JwksServer | undefined
    const server = createServer((req: IncomingMessage, res: ServerResponse) => self?.handle(req, res))
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error("JWKS server has no port")
    self = new JwksServer(
      server,
      `http://127.0.0.1:${address.port}/realms/test/protocol/openid-connect/certs`,
    )
    self.serve(keys)
    return self
  }

  serve(keys: ReadonlyArray<SigningKey>): void {
    this.keys = keys
  }

  hang(): void {
    this.hanging = true
  }

  /** While on, every request gets 503 (the provider is up but failing). */
  fail(on: boolean): void {
    this.failing = on
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++
    if (this.hanging) {
      this.held.push(res)
      return
    }
    if (this.failing) {
      res.writeHead(503).end()
      return
    }
    if (req.url !== new URL(this.url).pathname) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ keys: this.keys.map((k) => k.publicJwk) }))
  }

  /** Stops listening and drops every connection (held ones too): the provider is gone. */
  stop(): Promise<void> {
    for (const res of this.held.splice(0)) res.destroy()
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

export interface TestVerifier {
  readonly verify: (token: string) => Promise<Either.Either<Claims, string>>
  readonly stats: GatewayStatsImpl
  /** The messages the verifier logged. */
  readonly logs: ReadonlyArray<string>
}

/** A verifier configured as the gateway would be by these environment variables. */
export const verifierFor = async (env: Record<string, string>): Promise<TestVerifier> => {
  const stats = new GatewayStatsImpl()
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => {
    logs.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
  })
  const { verifier } = await Effect.runPromise(
    Config.all(jwtFields).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.flatMap((fields) => resolveJwt(fields)),
      Effect.flatMap((plan) => makeJwtVerifier(plan, stats)),
    ),
  )
  return {
    stats,
    logs,
    verify: (token) =>
      Effect.runPromise(
        Effect.either(verifier.verify(token)).pipe(
          Effect.map(Either.mapLeft((e) => e.reason)),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        ),
      ),
  }
}

/** The configuration error these variables give at startup, or undefined when they are valid. */
export const configErrorFor = (env: Record<string, string>): Promise<string | undefined> =>
  Effect.runPromise(
    Config.all(jwtFields).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.flatMap((fields) => resolveJwt(fields)),
      Effect.match({ onFailure: (e) => String(e), onSuccess: () => undefined }),
    ),
  )

export const claimsOf = (result: Either.Either<Claims, string>): Claims => {
  if (Either.isLeft(result)) throw new Error(`token refused: ${result.left}`)
  return result.right
}
