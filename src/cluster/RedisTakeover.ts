/**
 * Session takeover across instances (docs/protocol.md "Sessions", cluster mode). Every instance
 * listens on its control channel `prefix + "instance:{id}"`. To take a session over from a
 * connection on another instance, the new owner publishes a takeover request there; the owning
 * instance closes that connection with 4000 (Registry.takeover), whose scope releases the session
 * with its final sequence number. The requester waits until the session shows no owner (or
 * another one), so its numbering continues from there; if the owner does not answer in time, or
 * no instance listens on that channel (it is gone), the requester claims the session anyway.
 */
import { Duration, Effect, Layer, Option, Runtime, Schedule } from "effect"
import { AppConfig } from "../config/AppConfig.js"
import { Registry } from "../connection/Registry.js"
import { Takeover, type TakeoverShape } from "../connection/Takeover.js"
import { SessionStore } from "../session/SessionStore.js"
import { TakeoverRequest } from "./codec.js"
import { RedisClient } from "./RedisClient.js"
import { detachOrphan } from "./RedisSessionScripts.js"

/** How long a new owner waits for the old one to let go before claiming anyway. */
export const TAKEOVER_TIMEOUT = Duration.seconds(3)

export const controlChannel = (prefix: string, instanceId: string) => `${prefix}instance:{${instanceId}}`

export const RedisTakeoverLive = Layer.scoped(
  Takeover,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const registry = yield* Registry
    const sessions = yield* SessionStore
    const config = yield* AppConfig
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())

    yield* redis.listen(controlChannel(redis.prefix, redis.instanceId), (payload) => {
      const decoded = redis.decode(TakeoverRequest, payload)
      if (Option.isNone(decoded)) return
      const request = decoded.value
      runFork(
        registry.takeover(request.connection_id).pipe(
          Effect.flatMap((found) =>
            found
              ? Effect.logInfo("session taken over by another instance").pipe(
                  Effect.annotateLogs({
                    session_id: request.session_id,
                    connection_id: request.connection_id,
                  }),
                )
              : // The connection is gone but the session still names it (its release failed):
                // let go on its behalf so the requester need not wait for its timeout.
                detachOrphan(
                  redis,
                  request.session_id,
                  { instanceId: redis.instanceId, connectionId: request.connection_id },
                  config.sessionTtlS * 1000,
                ).pipe(
                  Effect.catchAll((e) => Effect.logWarning("could not detach an orphaned session", e.reason)),
                ),
          ),
        ),
      )
    })

    const released = (sessionId: string, connectionId: string) =>
      sessions.get(sessionId).pipe(
        Effect.map((found) =>
          Option.match(found, {
            onNone: () => true,
            onSome: (s) => s.owner === null || s.owner.connectionId !== connectionId,
          }),
        ),
        Effect.orElseSucceed(() => false),
      )

    const takeover: TakeoverShape["takeover"] = (sessionId, owner) => {
      if (owner.instanceId === redis.instanceId) return Effect.asVoid(registry.takeover(owner.connectionId))
      return Effect.gen(function* () {
        const request: TakeoverRequest = {
          type: "takeover",
          session_id: sessionId,
          connection_id: owner.connectionId,
        }
        const receivers = yield* redis.exec("PUBLISH takeover", (r) =>
          r.publish(controlChannel(redis.prefix, owner.instanceId), JSON.stringify(request)),
        )
        // Nobody listens there: that instance is gone and will never release the session.
        if (receivers === 0) return
        const done = yield* Effect.repeat(released(sessionId, owner.connectionId), {
          schedule: Schedule.spaced("25 millis"),
          until: (ok) => ok,
        }).pipe(Effect.timeout(TAKEOVER_TIMEOUT), Effect.option)
        if (Option.isNone(done)) {
          yield* Effect.logWarning("takeover not confirmed in time; claiming the session anyway").pipe(
            Effect.annotateLogs({ session_id: sessionId, owner_instance: owner.instanceId }),
          )
        }
      }).pipe(Effect.catchAll((e) => Effect.logWarning("takeover request failed", e.reason)))
    }
    return { takeover }
  }),
)
