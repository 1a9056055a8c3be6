import { randomUUID } from "node:crypto"
import { Context, Layer } from "effect"

/** This process's identity among cluster instances (session ownership, takeover routing). */
export class InstanceId extends Context.Tag("quotecast/InstanceId")<InstanceId, string>() {
  static readonly layer = Layer.sync(InstanceId, () => randomUUID())
}
