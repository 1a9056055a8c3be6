/**
 * Process lifecycle flags read by `/health` and the upgrade handler: draining (SIGTERM received,
 * no new connections) and the start time.
 */
import { Context, Layer } from "effect"

export class LifecycleImpl {
  draining = false
  readonly startedAt = Date.now()
}

export class Lifecycle extends Context.Tag("quotecast/Lifecycle")<Lifecycle, LifecycleImpl>() {
  static readonly layer = Layer.sync(Lifecycle, () => new LifecycleImpl())
}
