/**
 * A benchmark server as a child process: started with an IPC channel (bench/servers/control.ts),
 * waited for until it prints its port, measured from /proc (CPU time and RSS of that process
 * only), and always stopped: SIGTERM, then SIGKILL after a grace period.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { Data, Duration, Effect, type Scope } from "effect"
import { SERVER_NODE_FLAGS } from "../../scripts/nodeFlags.js"
import type { ControlCommand, ControlReply, FeedCounters } from "../servers/control.js"

export type ServerKind = "quotecast" | "ws" | "ws-fiber" | "socketio"

export const serverLabel: Record<ServerKind, string> = {
  quotecast: "quotecast",
  ws: "bare ws",
  "ws-fiber": "bare ws + Effect fiber",
  socketio: "Socket.IO",
}

/**
 * How each kind is started: its script and the environment it starts with (a scenario's own
 * environment overrides it; bench/servers/ws.ts explains BENCH_FIBER).
 */
/**
 * Every benchmark client connects from 127.0.0.1, 10,000 of them at once: quotecast's per-address
 * caps and rates (production defaults 200 and 20/s) would refuse most of them, and a loop saturated
 * by the ramp may read headers later than the 5 s handshake timeout. The baselines have neither.
 */
export const BENCH_ADMISSION = {
  WS_MAX_CONNECTIONS: "100000",
  WS_MAX_CONNECTIONS_PER_ADDRESS: "100000",
  WS_CONNECT_RATE_PER_ADDRESS: "100000",
  WS_CONNECT_BURST_PER_ADDRESS: "100000",
  TCP_MAX_CONNECTIONS_PER_ADDRESS: "100000",
  HANDSHAKE_TIMEOUT_MS: "60000",
} as const

const launch: Record<
  ServerKind,
  {
    readonly entry: string
    readonly env: Record<string, string>
    /** node's flags; quotecast's are the product's own, as `npm start` and the image run it. */
    readonly nodeFlags: ReadonlyArray<string>
  }
> = {
  quotecast: {
    entry: "bench/servers/quotecast.ts",
    env: { LOG_LEVEL: "info", ...BENCH_ADMISSION },
    nodeFlags: SERVER_NODE_FLAGS,
  },
  ws: { entry: "bench/servers/ws.ts", env: {}, nodeFlags: [] },
  "ws-fiber": { entry: "bench/servers/ws.ts", env: { BENCH_FIBER: "on" }, nodeFlags: [] },
  socketio: { entry: "bench/servers/socketio.ts", env: {}, nodeFlags: [] },
}

export class ServerStartError extends Data.TaggedError("ServerStartError")<{
  readonly server: string
  readonly reason: string
  readonly output: string
}> {}

export class ServerControlError extends Data.TaggedError("ServerControlError")<{
  readonly server: string
  readonly command: string
}> {}

export interface ProcSample {
  /** user + system CPU seconds so far. */
  readonly cpuSec: number
  readonly rssBytes: number
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100

export const readProc = (pid: number): ProcSample | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const rss = /VmRSS:\s+(\d+) kB/.exec(status)
    return { cpuSec: (utime + stime) / USER_HZ, rssBytes: rss ? Number(rss[1]) * 1024 : 0 }
  } catch {
    return undefined
  }
}

export interface BenchServer {
  readonly kind: ServerKind
  readonly name: string
  readonly port: number
  readonly wsUrl: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly alive: () => boolean
  readonly sample: () => ProcSample | undefined
  /** Sends a control command; the reply carries the feed's counters. */
  readonly command: (cmd: ControlCommand["cmd"]) => Effect.Effect<ControlReply, ServerControlError>
  /** The feed's counters, or undefined if a saturated server does not answer within 15 s. */
  readonly feedCounters: Effect.Effect<FeedCounters | undefined>
}

const STOP_GRACE = Duration.seconds(5)

/**
 * Starts one server, scoped: closing the scope stops it. `env` adds to the environment
 * (feed rate, compression, ...). The servers run with --expose-gc so RSS can be read after a GC.
 */
export const startServer = (
  kind: ServerKind,
  env: Record<string, string>,
  name: string = serverLabel[kind],
): Effect.Effect<BenchServer, ServerStartError, Scope.Scope> =>
  Effect.gen(function* () {
    let text = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // BENCH_NODE_ARGS: extra node flags for the servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
        const extra = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a !== "")
        const args = [
          "--expose-gc",
          ...launch[kind].nodeFlags,
          ...extra,
          "--import",
          "tsx",
          launch[kind].entry,
        ]
        const c = spawn(process.execPath, args, {
          env: { ...process.env, HOST: "127.0.0.1", PORT: "0", FEED: "none", ...launch[kind].env, ...env },
          stdio: ["ignore", "pipe", "pipe", "ipc"],
        })
        const keep = (d: Buffer) => {
          // Bounded: a chatty server must not grow the harness's memory.
          text = (text + d.toString()).slice(-20_000)
        }
        c.stdout?.on("data", keep)
        c.stderr?.on("data", keep)
        return c
      }),
      (c) => stopChild(c),
    )
    const port = yield* Effect.async<number, ServerStartError>((resume) => {
      const check = setInterval(() => {
        const m = /listening.*port=(\d+)/.exec(text)
        if (m) done(Effect.succeed(Number(m[1])))
        else if (child.exitCode !== null || child.signalCode !== null)
          done(Effect.fail(new ServerStartError({ server: name, reason: "exited", output: text })))
      }, 50)
      const done = (e: Effect.Effect<number, ServerStartError>) => {
        clearInterval(check)
        resume(e)
      }
      return Effect.sync(() => clearInterval(check))
    }).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(30),
        onTimeout: () => new ServerStartError({ server: name, reason: "no port within 30 s", output: text }),
      }),
    )
    const pid = child.pid ?? -1
    const command = (cmd: ControlCommand["cmd"]) =>
      Effect.async<ControlReply, ServerControlError>((resume) => {
        const onReply = (m: unknown) => {
          if (typeof m === "object" && m !== null && (m as ControlReply).ok === cmd) {
            child.off("message", onReply)
            resume(Effect.succeed(m as ControlReply))
          }
        }
        child.on("message", onReply)
        try {
          child.send({ cmd } satisfies ControlCommand)
        } catch {
          child.off("message", onReply)
          resume(Effect.fail(new ServerControlError({ server: name, command: cmd })))
        }
        return Effect.sync(() => child.off("message", onReply))
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(20),
          onTimeout: () => new ServerControlError({ server: name, command: cmd }),
        }),
      )
    return {
      kind,
      name,
      port,
      wsUrl: kind === "socketio" ? `ws://127.0.0.1:${port}/socket.io/` : `ws://127.0.0.1:${port}/v1/ws`,
      child,
      output: () => text,
      alive: () => child.exitCode === null && child.signalCode === null,
      sample: () => readProc(pid),
      command,
      feedCounters: command("feed-stats").pipe(
        Effect.timeout(Duration.seconds(15)),
        Effect.map((reply) => reply.feed),
        Effect.orElseSucceed(() => undefined),
      ),
    }
  })

const stopChild = (c: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.void)
    const kill = setTimeout(() => c.kill("SIGKILL"), Duration.toMillis(STOP_GRACE))
    c.once("exit", () => {
      clearTimeout(kill)
      resume(Effect.void)
    })
    c.kill("SIGTERM")
  })
