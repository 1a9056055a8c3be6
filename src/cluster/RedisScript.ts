/** Our Lua scripts, run by EVALSHA. Their replies are decoded by the caller (`codec.ts`, `RedisClient.query`). */
import { createHash } from "node:crypto"
import type { Redis } from "ioredis"

/** A Lua script run by EVALSHA, falling back to EVAL when Redis does not know it (first use, restart). */
export const luaScript = (source: string) => {
  const sha = createHash("sha1").update(source).digest("hex")
  return (r: Redis, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>): Promise<unknown> =>
    r.evalsha(sha, keys.length, ...keys, ...args).catch((e: unknown) => {
      if (e instanceof Error && e.message.startsWith("NOSCRIPT"))
        return r.eval(source, keys.length, ...keys, ...args)
      throw e
    })
}
