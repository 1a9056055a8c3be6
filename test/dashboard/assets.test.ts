/**
 * The dashboard's HTTP side, without a browser: the page, its stylesheet and the script (loaded on
 * its first request, not at startup), with ETag revalidation and gzip.
 */
import { gunzipSync } from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type RunningGateway, sleep, spawnGateway, startGateway, waitFor } from "../support/gateway.js"

let gw: RunningGateway
beforeAll(async () => {
  gw = await startGateway()
})
afterAll(() => gw.stop())

describe("dashboard assets", () => {
  it("serves the page at / referring to its stylesheet and module script", async () => {
    const res = await fetch(`${gw.httpUrl}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/html/)
    const html = await res.text()
    expect(html).toContain('href="assets/dashboard.css"')
    expect(html).toContain('<script type="module" src="assets/dashboard.js">')
  })

  it("serves the bundled script as one browser ES module", async () => {
    const res = await fetch(`${gw.httpUrl}/assets/dashboard.js`, {
      headers: { "accept-encoding": "identity" },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
    expect(res.headers.get("content-encoding")).toBeNull()
    const code = await res.text()
    expect(code.length).toBeGreaterThan(10_000)
    // Bundled: no bare imports left for the browser to resolve, nothing from Node.
    expect(code).not.toMatch(/\bimport\s*[^(]*?from\s*["']/)
    expect(code).not.toMatch(/["'](node:[a-z]+|ws)["']/)
    // charset utf8: Korean names as text, and the page's hook is in there.
    expect(code).toContain("삼성전자")
    expect(code).toContain("quotecastDashboard")
  })

  it("answers If-None-Match with 304 and gzips for clients that accept it", async () => {
    const plain = await fetch(`${gw.httpUrl}/assets/dashboard.js`, {
      headers: { "accept-encoding": "identity" },
    })
    const body = new Uint8Array(await plain.arrayBuffer())
    const etag = plain.headers.get("etag")
    expect(etag).toMatch(/^".+"$/)
    expect(plain.headers.get("cache-control")).toBe("no-cache")

    const again = await fetch(`${gw.httpUrl}/assets/dashboard.js`, {
      headers: { "if-none-match": etag ?? "" },
    })
    expect(again.status).toBe(304)

    // node's fetch would inflate transparently; read the raw bytes through node:http instead.
    const http = await import("node:http")
    const raw = await new Promise<{ encoding: string | undefined; bytes: Buffer }>((resolve, reject) => {
      http
        .get(`${gw.httpUrl}/assets/dashboard.js`, { headers: { "accept-encoding": "gzip, br" } }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () =>
            resolve({ encoding: res.headers["content-encoding"], bytes: Buffer.concat(chunks) }),
          )
        })
        .on("error", reject)
    })
    expect(raw.encoding).toBe("gzip")
    expect(raw.bytes.length).toBeLessThan(body.length / 2)
    // Buffer.equals, not toEqual: a deep compare of half a megabyte element by element takes seconds.
    expect(gunzipSync(raw.bytes).equals(body)).toBe(true)
  })

  it("serves the stylesheet", async () => {
    const res = await fetch(`${gw.httpUrl}/assets/dashboard.css`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/css; charset=utf-8")
    expect(await res.text()).toContain("--up:")
  })
})

describe("dashboard script loading", () => {
  it("is not loaded until the page or the script is first asked for", async () => {
    // Its own process: the script is loaded once per process.
    const own = await spawnGateway({})
    try {
      await sleep(1_000)
      expect(own.output()).not.toMatch(/dashboard bundle/)
      expect((await fetch(`${own.httpUrl}/assets/dashboard.js`)).status).toBe(200)
      await waitFor(
        () => /dashboard bundle (built|loaded)/.test(own.output()),
        30_000,
        "the script's load to be logged",
      )
    } finally {
      await own.stop()
    }
  }, 60_000)
})
