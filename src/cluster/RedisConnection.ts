/** One ioredis connection of an instance, made for a Scope: how it connects, reconnects and closes. */
import { Effect } from "effect"
import { Redis, type RedisOptions } from "ioredis"

const common: RedisOptions = {
  lazyConnect: true,
  // Reconnect quickly: an instance serves stale cluster state until Redis is back.
  retryStrategy: (times) => Math.min(times * 100, 1_000),
  keepAlive: 10_000,
}

/** QUIT when connected (at most 1 s), then drop the socket and stop reconnecting. */
const closeGracefully = (r: Redis): Promise<void> => {
  if (r.status !== "ready") {
    r.disconnect()
    return Promise.resolve()
  }
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 1_000)
  })
  const quit = r.quit().then(
    () => undefined,
    () => undefined,
  )
  return Promise.race([quit, gaveUp]).then(() => {
    clearTimeout(timer)
    r.disconnect()
  })
}

/** A connection to `url` (not connected yet: `lazyConnect`), closed with the Scope. */
export const redisConnection = (url: string, connectionName: string, options: RedisOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { ...common, ...options, connectionName })),
    // QUIT lets pending replies arrive; bounded in plain JS because a release runs
    // uninterruptibly (an Effect.timeout here could not cut a QUIT stuck in an offline queue).
    (r) => Effect.promise(() => closeGracefully(r)),
  )
