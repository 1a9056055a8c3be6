import { Command } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Ref } from "effect"
import { type CliArgs, makeCommand } from "../../load/cli.js"
import {
  builtinCodes,
  codesFor,
  defaults,
  isLoopbackHost,
  resolveCodes,
  universeCodes,
  validateConfig,
} from "../../load/lib/config.js"
import { defaultLoadConfig } from "../../load/lib/index.js"

/** Parses argv through the real command, capturing what the handler would run with. */
const parse = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const captured = yield* Ref.make<CliArgs | undefined>(undefined)
    const command = makeCommand((args) => Ref.set(captured, args))
    yield* Command.run(command, { name: "quotecast-load", version: "test" })(["node", "load", ...argv])
    return yield* Ref.get(captured)
  }).pipe(Effect.provide(NodeContext.layer))

describe("CLI options", () => {
  it.effect("defaults follow the original load script", () =>
    Effect.gen(function* () {
      const args = yield* parse([])
      expect(args?.config).toEqual({
        url: "ws://localhost:8000/v1/ws",
        connections: 1000,
        durationSec: 60,
        rampUpSec: 10,
        batchSize: 100,
        subscriptions: 20,
        codes: builtinCodes,
        compression: false,
        token: undefined,
        sample: 10,
        sourceIps: 1,
        allowRemote: false,
        connectTimeoutSec: 10,
        closeTimeoutSec: 5,
      })
      expect(args?.json).toBe(false)
      expect(args?.thresholds).toEqual({ maxP99Ms: undefined, minConnected: undefined })
    }),
  )

  it.effect("parses every option", () =>
    Effect.gen(function* () {
      const args = yield* parse([
        "--url",
        "ws://127.0.0.1:9000/v1/ws",
        "--connections",
        "10000",
        "--duration",
        "2.5",
        "--ramp-up",
        "20",
        "--batch-size",
        "250",
        "--subscriptions",
        "5",
        "--universe",
        "1000",
        "--compression",
        "on",
        "--token",
        "jwt",
        "--sample",
        "50",
        "--json",
        "--max-p99-ms",
        "100",
        "--min-connected",
        "9990",
        "--source-ips",
        "4",
        "--connect-timeout",
        "3",
      ])
      expect(args?.config).toMatchObject({
        url: "ws://127.0.0.1:9000/v1/ws",
        connections: 10000,
        durationSec: 2.5,
        rampUpSec: 20,
        batchSize: 250,
        subscriptions: 5,
        compression: true,
        token: "jwt",
        sample: 50,
        sourceIps: 4,
        connectTimeoutSec: 3,
      })
      expect(args?.config.codes).toHaveLength(1000)
      expect(args?.json).toBe(true)
      expect(args?.thresholds).toEqual({ maxP99Ms: 100, minConnected: 9990 })
    }),
  )

  it.effect("takes an explicit code list", () =>
    Effect.gen(function* () {
      const args = yield* parse(["--codes", "005930, 000660,005930"])
      expect(args?.config.codes).toEqual(["005930", "000660"])
    }),
  )

  it.effect("refuses --codes together with --universe", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(parse(["--codes", "005930", "--universe", "100"]))
      expect(error).toMatchObject({ _tag: "LoadConfigError" })
    }),
  )
})

describe("configuration", () => {
  it("recognizes loopback hosts", () => {
    for (const host of ["localhost", "127.0.0.1", "127.0.0.42", "::1", "[::1]"])
      expect(isLoopbackHost(host)).toBe(true)
    for (const host of ["example.com", "10.0.0.1", "0.0.0.0", "127.example.com"])
      expect(isLoopbackHost(host)).toBe(false)
  })

  it.effect("refuses non-loopback targets unless allowed", () =>
    Effect.gen(function* () {
      const remote = { ...defaultLoadConfig, url: "ws://192.168.1.10:8000/v1/ws" }
      expect(Either.isLeft(yield* Effect.either(validateConfig(remote)))).toBe(true)
      const allowed = yield* validateConfig({ ...remote, allowRemote: true })
      expect(allowed.url).toBe("ws://192.168.1.10:8000/v1/ws")
    }),
  )

  it.effect("normalizes localhost to 127.0.0.1 and adds the token", () =>
    Effect.gen(function* () {
      const valid = yield* validateConfig({ ...defaultLoadConfig, token: "a b" })
      expect(valid.url).toBe("ws://127.0.0.1:8000/v1/ws?token=a+b")
    }),
  )

  it.effect("bounds counts", () =>
    Effect.gen(function* () {
      for (const bad of [
        { connections: 0 },
        { connections: 50_000 },
        { durationSec: -1 },
        { sample: 0 },
        { subscriptions: 500 },
        { sourceIps: 300 },
        { batchSize: 1.5 },
      ]) {
        expect(Either.isLeft(yield* Effect.either(validateConfig({ ...defaultLoadConfig, ...bad })))).toBe(
          true,
        )
      }
    }),
  )

  it("builds a universe like the gateway's UNIVERSE_SIZE", () => {
    const codes = universeCodes(builtinCodes.length + 3)
    expect(codes.slice(-3)).toEqual(["900000", "900001", "900002"])
    expect(universeCodes(1)).toEqual(builtinCodes)
    expect(resolveCodes(undefined, undefined)).toBe(builtinCodes)
  })

  it("spreads connections over all codes", () => {
    const codes = ["a", "b", "c", "d", "e"]
    expect(codesFor(codes, 2, 0)).toEqual(["a", "b"])
    expect(codesFor(codes, 2, 1)).toEqual(["c", "d"])
    expect(codesFor(codes, 2, 2)).toEqual(["e", "a"])
    expect(codesFor(codes, 9, 0)).toEqual(codes)
    expect(defaults.connections).toBe(1000)
  })
})
