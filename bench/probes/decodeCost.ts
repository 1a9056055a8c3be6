/**
 * Ad-hoc probe (not part of `npm run bench`): CPU time (process.cpuUsage) to decode one worst-case WebSocket frame
 * and the size of the answer it gets, per frame kind. Bounded: each kind runs for about
 * PROBE_MS (default 1000) or 2,000 iterations, whichever comes first.
 *
 *   node --import tsx bench/probes/decodeCost.ts
 */
import { Either } from "effect"
import { errorMsg } from "../../src/connection/messages.js"
import { decodeText } from "../../src/protocol/decode.js"

const SIZE = 65_536
const budgetMs = Number(process.env.PROBE_MS ?? 1000)

const fill = (head: string, unit: string, tail: string) =>
  head + unit.repeat(Math.floor((SIZE - head.length - tail.length) / unit.length)) + tail

const frames: Record<string, string> = {
  "subscribe, 64 KB of numbers in targets": fill(
    '{"type":"subscribe","subscription_type":"stock","targets":[0',
    ",0",
    "]}",
  ),
  "subscribe, 64 KB of strings in targets": fill(
    '{"type":"subscribe","subscription_type":"stock","targets":["a"',
    ',"a"',
    "]}",
  ),
  "nesting 32k deep": fill("", "[", "").slice(0, SIZE / 2) + "]".repeat(SIZE / 2),
  "subscribe, targets nested 32k deep":
    fill('{"type":"subscribe","subscription_type":"stock","targets":', "[", "").slice(0, SIZE / 2) +
    "]".repeat(SIZE / 2 - 57) +
    "}",
  "unknown type, 64 KB string": fill('{"type":"', "x", '"}'),
  "malformed JSON, 64 KB": fill('{"type":"ping","id":"', "x", ""),
  "ping with 6,500 distinct extra keys": `{"type":"ping",${Array.from({ length: 6500 }, (_, i) => `"k${i}":1`).join(",")}}`,
  "valid ping, 61 KB of numbers in arrays of 100": `{"type":"ping","x":[${Array.from({ length: 100 }, () => `[[0${",0".repeat(99)}],[0${",0".repeat(99)}],[0${",0".repeat(99)}]]`).join(",")}]}`,
  "ping with 64 KB of extra keys": fill('{"type":"ping"', ',"k":1', "}"),
  "subscribe with 100 targets of 640 bytes": JSON.stringify({
    type: "subscribe",
    subscription_type: "stock",
    targets: Array.from({ length: 100 }, () => "y".repeat(640)),
  }),
  "subscribe with 100 deep-ish objects": JSON.stringify({
    type: "subscribe",
    subscription_type: "stock",
    targets: Array.from({ length: 100 }, () => ({ a: { b: { c: { d: "z".repeat(600) } } } })),
  }),
  "valid subscribe, 100 targets": JSON.stringify({
    type: "subscribe",
    subscription_type: "stock",
    targets: Array.from({ length: 100 }, (_, i) => String(i).padStart(6, "0")),
  }),
  "valid ping": '{"type":"ping","id":1}',
}

const answerBytes = (text: string): string => {
  try {
    const r = decodeText(text)
    if (Either.isRight(r)) return "valid"
    return String(Buffer.byteLength(JSON.stringify(errorMsg(r.left, new Date().toISOString()).body)))
  } catch (e) {
    return `throws ${e instanceof Error ? e.name : String(e)}`
  }
}

console.log("| frame | bytes | answer bytes | CPU us/frame | CPU ns/byte |\n| --- | --- | --- | --- | --- |")
for (const [name, text] of Object.entries(frames)) {
  const answer = answerBytes(text)
  for (let i = 0; i < 20; i++) {
    try {
      decodeText(text)
    } catch {}
  }
  // CPU time, not wall time: on a shared box CPU time is what a frame takes from the event loop.
  let n = 0
  const cpu0 = process.cpuUsage()
  const deadline = Date.now() + budgetMs
  while (n < 2000 && (n < 3 || Date.now() < deadline)) {
    try {
      decodeText(text)
    } catch {}
    n++
  }
  const cpu = process.cpuUsage(cpu0)
  const ns = ((cpu.user + cpu.system) * 1000) / n
  console.log(
    `| ${name} | ${text.length} | ${answer} | ${(ns / 1000).toFixed(1)} | ${(ns / text.length).toFixed(1)} |`,
  )
}
