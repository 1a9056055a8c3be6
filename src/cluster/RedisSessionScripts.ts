/**
 * The session store's keys and Lua scripts (module comment of `RedisSessionStore.ts`). Every
 * script touches the keys of one session (one `{hash tag}`, so one Redis Cluster slot) or one
 * group's sorted set. Their replies are decoded by the caller (`codec.ts`).
 */
import type { Owner } from "../session/SessionStore.js"
import type { RedisClientShape } from "./RedisClient.js"
import { luaScript } from "./RedisScript.js"

export const sessionKeyOf = (prefix: string, id: string) => `${prefix}session:{${id}}`

/** The keys of one instance's sessions, under its REDIS_PREFIX. */
export const sessionKeys = (prefix: string) => ({
  session: (id: string) => sessionKeyOf(prefix, id),
  alerts: (id: string) => `${prefix}session-alerts:{${id}}`,
  group: (group: string) => `${prefix}saved-sessions:{${group}}`,
  released: `${prefix}sessions:released`,
  /** RedisClusterView's membership hash: each instance's last beat. */
  members: `${prefix}members`,
})
export type SessionKeys = ReturnType<typeof sessionKeys>

/**
 * KEYS: session, alerts. ARGV: instance, connection, ttl ms, sequence block. Returns nil, or
 * [jumped from ("" when not), previous owner instance, its last write's remaining TTL (ms), ...the
 * hash as claimed]. A session still attached to an owner that never released it continues after
 * the ceiling that owner had reserved.
 */
export const claimScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local from = redis.call('HGET', KEYS[1], 'jump_from') or ''
local owner = redis.call('HGET', KEYS[1], 'owner_conn')
local previous = redis.call('HGET', KEYS[1], 'owner_instance') or ''
local pttl = redis.call('PTTL', KEYS[1])
if owner and owner ~= '' then
  local ceil = tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0')
  if ceil > seq then
    if from == '' then from = tostring(seq) end
    seq = ceil
  end
end
redis.call('HDEL', KEYS[1], 'jump_from')
redis.call('HSET', KEYS[1], 'seq', seq, 'ceil', seq + tonumber(ARGV[4]), 'owner_instance', ARGV[1], 'owner_conn', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, tostring(pttl))
table.insert(out, 1, previous)
table.insert(out, 1, from)
return out
`)

/**
 * KEYS: session, alerts. ARGV: instance, connection, user, subs, seq, ttl ms.
 * Returns 1 when stored as released, 0 when another owner holds it.
 */
export const releaseScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'user', ARGV[3], 'subs', ARGV[4], 'seq', ARGV[5], 'owner_instance', '', 'owner_conn', '')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
`)

/**
 * KEYS: session, alerts. ARGV: cap, bodies. -1: session gone, -2: attached (live delivery),
 * else kept, and how many older alerts the cap dropped.
 */
export const appendAlertsScript = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'owner_conn') ~= '' then return -2 end
local n = 0
for i = 2, #ARGV do n = redis.call('RPUSH', KEYS[2], ARGV[i]) end
local cap = tonumber(ARGV[1])
redis.call('LTRIM', KEYS[2], -cap, -1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if n > cap then return n - cap end
return 0
`)

/**
 * KEYS: a group's saved sessions. ARGV: now, id, expires at, cap. Adds a released session and
 * returns the ids it pushed over the cap (oldest first), which the caller deletes.
 */
export const saveInGroupScript = luaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
local evicted = {}
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #popped, 2 do evicted[#evicted + 1] = popped[i] end
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] ~= nil then redis.call('PEXPIREAT', KEYS[1], top[2]) end
return evicted
`)

/** KEYS: session, alerts. Deletes a session evicted from its group, unless it was restored meanwhile. */
export const evictScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_conn') ~= '' then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

/** KEYS: alerts. Returns the list, emptied. */
export const takeAlertsScript = luaScript(`
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
`)

/** KEYS: session. ARGV: instance, connection, seq, ttl ms. Refreshes an attached session we own. */
export const touchScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'seq', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

/**
 * KEYS: session. ARGV: instance, connection, subs (JSON), seq, ceiling, ttl ms.
 * The persistence clock's write for an attached session we own: 1 when written.
 */
export const saveScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'subs', ARGV[3], 'seq', ARGV[4])
if tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0') then
  redis.call('HSET', KEYS[1], 'ceil', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`)

/**
 * KEYS: session. ARGV: instance, connection, ttl ms. Detaches a session whose owning connection
 * no longer exists (its release failed, e.g. during an outage), keeping its last saved state.
 * Its final number was never saved: the next owner continues after the reserved ceiling.
 */
export const detachScript = luaScript(`
if redis.call('HGET', KEYS[1], 'owner_instance') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'owner_conn') ~= ARGV[2] then
  return 0
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local ceil = tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0')
if ceil > seq then
  if not redis.call('HGET', KEYS[1], 'jump_from') then redis.call('HSET', KEYS[1], 'jump_from', seq) end
  redis.call('HSET', KEYS[1], 'seq', ceil)
end
redis.call('HSET', KEYS[1], 'owner_instance', '', 'owner_conn', '')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

/** For the owning instance when asked to let go of a session whose connection it no longer has. */
export const detachOrphan = (redis: RedisClientShape, sessionId: string, owner: Owner, ttlMs: number) =>
  redis.exec("detach orphaned session", (r) =>
    detachScript(r, [sessionKeyOf(redis.prefix, sessionId)], [owner.instanceId, owner.connectionId, ttlMs]),
  )
