/**
 * The serialization fast path. A message is serialized once, as an "open body": its JSON text
 * without the closing brace. Every connection that receives it appends only its own sequence
 * number (`,"sequence":N}`), so fan-out costs one string concatenation per recipient instead of
 * one JSON.stringify per recipient.
 */

/** One message waiting in a connection's outbox. */
export interface Outgoing {
  /**
   * Conflation key, `type|code` for state messages (price, order book, sector), undefined for
   * messages that must never be dropped or replaced (statuses, alerts, answers, snapshots).
   */
  readonly key: string | undefined
  /** JSON object text without its final `}`. */
  readonly body: string
  /**
   * A market event's own timestamp, in epoch ms: set where the event is encoded (or arrives from
   * another instance), read by the delivery-latency histogram when the frame is written.
   */
  readonly at?: number | undefined
  /**
   * True when one object serves every connection that queues it (a market event as fanned out,
   * a snapshot copy of one): an outbox's memory (`Outbox.footprint`, the gauge
   * `quotecast_outbound_memory_bytes`) then holds a reference to it, not its text. Unset for
   * messages made for one connection, and for anything whose sharing is not known: those count
   * in full. The outbound budget itself counts every message's text (`OutboundBudget.ts`).
   */
  readonly shared?: boolean | undefined
}

const TIMESTAMP_FIELD = '"timestamp":"'

/** The `timestamp` of a market event's body (ISO, 24 characters), in epoch ms; NaN when it has none. */
export const eventTimeOf = (body: string): number => {
  const i = body.lastIndexOf(TIMESTAMP_FIELD)
  if (i < 0) return Number.NaN
  const from = i + TIMESTAMP_FIELD.length
  return Date.parse(body.slice(from, from + 24))
}

/** Open body of a plain object: its JSON without the final brace. */
export const openBody = (value: object): string => {
  const json = JSON.stringify(value)
  return json.slice(0, -1)
}

/** Whether an open body is an `alert` (alert bodies are built with `type` first: `AlertEngine`). */
export const isAlertBody = (body: string): boolean => body.startsWith('{"type":"alert",')

/** Closes an open body with its sequence number. */
export const seal = (body: string, sequence: number): string => `${body},"sequence":${sequence}}`

/** The batch envelope: its own sequence is the number of its last message. */
export const sealBatch = (sealed: ReadonlyArray<string>, lastSequence: number, timestamp: string): string =>
  `{"type":"batch","batch_size":${sealed.length},"messages":[${sealed.join(",")}],"timestamp":"${timestamp}","sequence":${lastSequence}}`

/**
 * Snapshot copies made so far, per state message: every connection that subscribes before the
 * code's next tick gets the same copy. Made per subscriber, the copies were 20 objects and 40
 * strings per `subscribe` of 20 codes, each string flattened again when its frame was written:
 * garbage that lived until the answer was flushed, long enough during a ramp of thousands of
 * connections to be promoted, and its holes in the old space stayed committed (scenario C).
 * Weak: a copy goes with its message once the message is no longer the topic's latest.
 */
const snapshots = new WeakMap<Outgoing, Outgoing>()

/** A snapshot copy of a state message: same payload plus `"snapshot":true`; never conflated. */
export const asSnapshot = (msg: Outgoing): Outgoing => {
  const known = snapshots.get(msg)
  if (known !== undefined) return known
  // Shared as its source is: one copy per message, whoever asks (not so for messages a snapshot
  // store decodes per request, as the cluster's does).
  const copy: Outgoing = { key: undefined, body: `{"snapshot":true,${msg.body.slice(1)}`, shared: msg.shared }
  snapshots.set(msg, copy)
  return copy
}

export const nowIso = (millis: number): string => new Date(millis).toISOString()

const interned = new Map<string, string>()
/** Beyond this many distinct keys (never, with a real universe) keys are no longer interned. */
const MAX_INTERNED = 100_000

/**
 * One string per distinct conflation key, so outboxes compare keys by identity. Keys come from
 * the universe's codes, markets and sectors (ingest validates codes), so the table stays small.
 */
export const internKey = (key: string): string => {
  const known = interned.get(key)
  if (known !== undefined) return known
  if (interned.size < MAX_INTERNED) interned.set(key, key)
  return key
}

/**
 * Conflation key of a candle's bar in progress: one per bar, so an update of the next bar never
 * takes the place of (and goes out before) the previous bar's `closed` message. Not interned:
 * bars come and go all day, and the intern table would fill with keys no one compares again.
 */
export const candleKey = (series: string, barStart: number): string => `candle_update|${series}|${barStart}`

/** A conflation key read back from another instance: interned, except the per-bar candle keys. */
export const keyFromWire = (key: string): string => (key.startsWith("candle_update|") ? key : internKey(key))

/** Conflation key of a state message. */
export const conflationKey = (type: string, code: string): string => internKey(`${type}|${code}`)
