/**
 * The subscriber connection's messages, routed by channel to one handler each: one "message"
 * listener for every channel of the instance.
 */
import { Effect } from "effect"

export type MessageHandler = (message: string) => void

import type { Redis } from "ioredis"

/** How long a SUBSCRIBE may wait for its confirmation before the caller goes on (and it is reported). */
const CONFIRM_WAIT_MS = 5_000

export const routeMessages = (sub: Redis, prefix: string, report: (what: string, cause: unknown) => void) => {
  const routes = new Map<string, MessageHandler>()
  sub.on("message", (channel: string, message: string) => {
    // A throw here would unwind into ioredis' reply parser and lose the replies behind it.
    try {
      routes.get(channel)?.(message)
    } catch (e) {
      report(`handling a message on ${channel.slice(prefix.length)}`, e instanceof Error ? (e.stack ?? e) : e)
    }
  })
  const subscribe = (channel: string, handler: MessageHandler): Promise<void> => {
    routes.set(channel, handler)
    let timer: NodeJS.Timeout | undefined
    // Settles within CONFIRM_WAIT_MS whatever happens: callers may wait uninterruptibly (an
    // acquire), and a SUBSCRIBE queued offline is only confirmed once Redis is back.
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        report("SUBSCRIBE confirmation", `${channel} not confirmed within ${CONFIRM_WAIT_MS} ms`)
        resolve()
      }, CONFIRM_WAIT_MS)
    })
    const confirmed = sub.subscribe(channel).then(
      () => undefined,
      (e: unknown) => report("SUBSCRIBE", e),
    )
    return Promise.race([confirmed, late]).then(() => clearTimeout(timer))
  }
  const unsubscribe = (channel: string) => {
    routes.delete(channel)
    sub.unsubscribe(channel).catch((e: unknown) => report("UNSUBSCRIBE", e))
  }
  const listen = (channel: string, handler: MessageHandler) =>
    Effect.acquireRelease(
      Effect.promise(() => subscribe(channel, handler)),
      () => Effect.sync(() => unsubscribe(channel)),
    )
  return { routes, subscribe, unsubscribe, listen }
}
