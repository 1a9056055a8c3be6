/**
 * docker-compose.yml and the load balancer config (issue 4 item 9; the Dockerfile has its own test,
 * test/build/dockerfile.test.ts). This machine has no Docker engine, so the files' structure is
 * checked instead: Redis, two gateway instances in cluster mode and a WebSocket-capable load
 * balancer, all with health checks, started in order.
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { parse } from "yaml"

const root = new URL("../../", import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), "utf8")

interface Service {
  readonly image?: string
  readonly build?: unknown
  readonly command?: unknown
  readonly environment?: Record<string, string>
  readonly depends_on?: Record<string, { readonly condition: string }>
  readonly healthcheck?: { readonly test: ReadonlyArray<string> }
  readonly ports?: ReadonlyArray<string>
  readonly volumes?: ReadonlyArray<string>
}

const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Service> }
const services = compose.services
const gateways = Object.entries(services).filter(([, s]) => s.environment?.REDIS_URL !== undefined)

describe("docker-compose.yml", () => {
  it("has Redis with a health check", () => {
    const redis = services.redis
    expect(redis?.image).toMatch(/^redis:/)
    expect(redis?.healthcheck?.test.join(" ")).toContain("redis-cli ping")
  })

  it("has two gateway instances in cluster mode, built from the Dockerfile, checked on /health", () => {
    expect(gateways).toHaveLength(2)
    for (const [, s] of gateways) {
      expect(s.build).toBe(".")
      expect(s.environment?.REDIS_URL).toBe("redis://redis:6379")
      expect(s.environment?.PORT).toBe("8000")
      expect(s.depends_on?.redis?.condition).toBe("service_healthy")
      expect(s.healthcheck?.test.join(" ")).toContain("/health")
    }
  })

  it("sets only variables the gateway knows", () => {
    // The variables the config modules read (AppConfig.ts and jwtConfig.ts), by name.
    const known = new Set(
      ["src/config/AppConfig.ts", "src/config/jwtConfig.ts"].flatMap((file) =>
        [...read(file).matchAll(/"([A-Z][A-Z_]+)"/g)].map((m) => m[1]),
      ),
    )
    for (const [, s] of gateways) {
      for (const name of Object.keys(s.environment ?? {})) expect(known, name).toContain(name)
    }
  })

  it("puts a WebSocket-capable load balancer with health checks in front of both instances", () => {
    const lb = services.lb
    expect(lb?.image).toMatch(/^haproxy:/)
    expect(lb?.ports).toContain("8000:8000")
    for (const [name] of gateways) expect(lb?.depends_on?.[name]?.condition).toBe("service_healthy")
    expect(lb?.healthcheck?.test.join(" ")).toContain("/lb-health")
    const mount = lb?.volumes?.find((v) => v.includes("haproxy.cfg"))
    expect(mount).toBeDefined()
    const cfg = read((mount as string).split(":")[0] as string)
    expect(cfg).toMatch(/mode http/) // HAProxy passes the WebSocket Upgrade through in http mode
    expect(cfg).toMatch(/timeout tunnel/) // and keeps upgraded connections open
    expect(cfg).toMatch(/option httpchk GET \/health/)
    expect(cfg).toMatch(/monitor-uri \/lb-health/)
    for (const [name] of gateways) expect(cfg).toMatch(new RegExp(`server \\S+ ${name}:8000 check`))
  })
})
