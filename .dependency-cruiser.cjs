/**
 * The import rule of ARCHITECTURE.md "Layers", checked by `npm run check:layers` (in .ci/run):
 * a folder of src/ may import its own layer and the layers below it, never one above.
 * The list is the one in ARCHITECTURE.md, bottom first; keep the two in step.
 */
const LAYERS = [
  ["config", "lifecycle", "metrics", "net"],
  ["protocol"],
  ["market"],
  ["broker", "snapshot"],
  ["pipeline"],
  ["feed"],
  ["candles"],
  ["auth", "ratelimit", "session", "alerts"],
  ["connection"],
  ["http"],
  ["cluster"],
  ["mode"],
]

const pathOf = (folders) => `^src/(${folders.join("|")})/`

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${i + 1}-imports-upward`,
  comment: `src/{${layer.join(",")}} may not import a higher layer (ARCHITECTURE.md "Layers")`,
  severity: "error",
  from: { path: pathOf(layer) },
  to: { path: pathOf(LAYERS.slice(i + 1).flat()) },
}))

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "server-imports-entry",
      comment: "only main.ts starts the gateway; nothing inside src/ imports Gateway.ts or main.ts",
      severity: "error",
      from: { path: "^src/[^/]+/" },
      to: { path: "^src/(Gateway|main)\\.ts$" },
    },
    {
      name: "sdk-is-standalone",
      comment: "the client SDK ships alone: it imports only the protocol's Schemas",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/", pathNot: "^src/(client|protocol)/" },
    },
    {
      name: "server-does-not-import-sdk",
      comment: "the server does not run the SDK; the dashboard (its own folder) does",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/client/" },
      to: { path: "^src/client/" },
    },
    {
      name: "dashboard-uses-sdk-and-protocol-only",
      comment:
        "the browser dashboard talks to the gateway through the SDK, like any client, and names instruments from the reference data",
      severity: "error",
      from: { path: "^dashboard/" },
      to: { path: "^src/", pathNot: "^src/(client/|protocol/|market/data/|market/types\\.ts$)" },
    },
    {
      name: "src-is-not-tooling",
      comment: "the product does not import its tests, benchmark or load tools",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|load)/" },
    },
    {
      name: "no-circular",
      severity: "error",
      from: { path: "^(src|dashboard)/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
}
