/**
 * `npx tsx scripts/buildStartupTime.ts [runs]`: time from spawn to the first `/health` 200 of the
 * gateway started three ways, alternating, each a new process (runs each, default 5, at most 20):
 * `npm start` (the compiled server after the build check), `node dist/main.js` (the compiled
 * server alone) and `node --import tsx src/main.ts` (the sources, as `npm start` ran before
 * there was a build). Run `npm run build` first. Figures in docs/dependencies.md ("Build").
 */
import { spawn } from "node:child_process"
import { loadavg } from "node:os"
import { fileURLToPath } from "node:url"
import { checkBuild } from "./buildStamp.mjs"

const root = fileURLToPath(new URL("../", import.meta.url))
const runs = Math.min(20, Math.max(1, Number(process.argv[2] ?? 5) || 5))
/** A start slower than this counts as failed (the run is bounded). */
const LIMIT_MS = 60_000

const ways: ReadonlyArray<readonly [string, string, ReadonlyArray<string>]> = [
  ["npm start", "npm", ["start"]],
  ["node dist/main.js", process.execPath, ["dist/main.js"]],
  ["tsx src/main.ts", process.execPath, ["--import", "tsx", "src/main.ts"]],
]

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Milliseconds to healthy; the gateway picks a free port (PORT=0) and logs it. */
const timeToHealthy = async (command: string, args: ReadonlyArray<string>): Promise<number> => {
  const started = performance.now()
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: npm, its shell and node stop together
  })
  let log = ""
  child.stdout.on("data", (d) => {
    log += d
  })
  child.stderr.on("data", (d) => {
    log += d
  })
  const exited = new Promise((resolve) => child.once("exit", resolve))
  try {
    while (performance.now() - started < LIMIT_MS) {
      if (child.exitCode !== null) throw new Error(`exited: ${log}`)
      const port = /quotecast listening.*port=(\d+)/.exec(log)?.[1]
      const status =
        port === undefined ? 0 : await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status)
      if (status === 200) return performance.now() - started
      await sleep(10)
    }
    throw new Error(`not healthy within ${LIMIT_MS} ms: ${log}`)
  } finally {
    if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGTERM")
    await exited
  }
}

const build = checkBuild(root)
if (!build.fresh) {
  console.error(`${build.reason}: run \`npm run build\` first`)
  process.exit(1)
}
const times = new Map(ways.map(([name]) => [name, [] as Array<number>]))
for (let i = 0; i < runs; i++) {
  for (const [name, command, args] of ways) times.get(name)?.push(await timeToHealthy(command, args))
}
const load = loadavg().map((l) => l.toFixed(1))
console.log(`time to /health 200, ${runs} runs each, alternating; load average now ${load.join(" ")}`)
for (const [name, ms] of times) {
  const sorted = [...ms].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
  console.log(
    `${name.padEnd(18)} median ${Math.round(median)} ms, min ${Math.round(sorted[0] ?? Number.NaN)}, max ${Math.round(sorted.at(-1) ?? Number.NaN)}  (${ms.map(Math.round).join(", ")})`,
  )
}
