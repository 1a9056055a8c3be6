/**
 * `npm run asyncapi`: writes docs/asyncapi.yaml, the AsyncAPI 3.0 document built from the protocol
 * Schemas (src/protocol/asyncapi.ts). test/protocol/asyncapi.test.ts fails while the file differs
 * from what the Schemas give: run this after changing the protocol, and commit the result.
 */
import { fileURLToPath } from "node:url"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect } from "effect"
import { stringify } from "yaml"
import { asyncApiDocument } from "../src/protocol/asyncapi.js"

const target = fileURLToPath(new URL("../docs/asyncapi.yaml", import.meta.url))
const header = "# Generated from src/protocol by `npm run asyncapi`: do not edit by hand.\n"

const program = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  // Multi-line text as literal blocks (the Markdown reads as written); no anchors and aliases for
  // repeated objects, so every schema reads where it is used.
  const yaml = stringify(asyncApiDocument(), {
    lineWidth: 100,
    blockQuote: "literal",
    aliasDuplicateObjects: false,
  })
  yield* fs.writeFileString(target, header + yaml)
  yield* Console.log(`wrote ${target}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(NodeContext.layer)))
