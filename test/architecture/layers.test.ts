/**
 * ARCHITECTURE.md "Layers": every import in src/ points down the layer list. The same rules run in
 * .ci/run (`npm run check:layers`); here they are also shown to reject an upward import, so the
 * check cannot pass by matching nothing.
 */
import { createRequire } from "node:module"
import path from "node:path"
import { cruise, type ICruiseResult, type IReporterOutput } from "dependency-cruiser"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../..")
const rules = createRequire(import.meta.url)(path.join(root, ".dependency-cruiser.cjs"))

const violationsIn = async (baseDir: string, dirs: ReadonlyArray<string>) => {
  const out: IReporterOutput = await cruise([...dirs], {
    baseDir,
    validate: true,
    ruleSet: { forbidden: rules.forbidden },
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  })
  const result = out.output as ICruiseResult
  return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)
}

describe("layers", () => {
  it("no module of src/ or dashboard/ imports a layer above its own or past its boundary", async () => {
    expect(await violationsIn(root, ["src", "dashboard"])).toEqual([])
  })

  it("an import from market data up into HTTP is reported", async () => {
    const fixture = path.join(import.meta.dirname, "fixture")
    expect(await violationsIn(fixture, ["src"])).toEqual([
      "layer-3-imports-upward: src/market/prices.ts -> src/http/routes.ts",
    ])
  })
})
