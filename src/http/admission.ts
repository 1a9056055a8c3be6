/**
 * Admission of WebSocket upgrades: a cap on connections in total and per client address, and a
 * token bucket per address on the rate of new ones. Decided before the handshake, so a refusal is
 * an HTTP answer with a reason and Retry-After (`Server.ts`), never a socket left hanging.
 *
 * A connection is counted from admission until its TCP socket closes (`release`, from the
 * socket's "close" event), so a failed handshake or a connection that dies in setup gives its
 * place back on its own. Addresses are kept in a Map bounded in size: an entry lives while the
 * address has connections or its bucket is refilling, and `sweep` (one periodic clock for the
 * whole table, not a timer per address) drops the rest.
 */
import { readFileSync } from "node:fs"

export type AdmissionReason = "total" | "per_address" | "rate" | "address_table_full"

export interface AdmissionRejection {
  readonly reason: AdmissionReason
  /** 503 when the server as a whole is full, 429 when this address is over its share. */
  readonly status: 429 | 503
  readonly retryAfterS: number
  readonly message: string
}

export interface AdmissionLimits {
  readonly maxTotal: number
  readonly maxPerAddress: number
  /** New connections per second per address, sustained. */
  readonly ratePerSecond: number
  /** New connections an address may open at once before the rate applies. */
  readonly burst: number
}

class AddressEntry {
  open = 0
  constructor(
    public tokens: number,
    public refilledAt: number,
  ) {}
}

/** How long a full server or a full per-address share asks clients to wait. */
const FULL_RETRY_AFTER_S = 5

/**
 * The default total: 80% of the process's soft open-file limit (each connection is a descriptor;
 * the rest is left for HTTP requests, Redis and files), at most 50,000. 10,000 where the limit
 * cannot be read (not Linux).
 */
export const defaultMaxConnections = (): number => {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))
    const soft = m?.[1]
    if (soft === undefined) return 10_000
    if (soft === "unlimited") return 50_000
    return Math.max(1, Math.min(50_000, Math.floor(Number(soft) * 0.8)))
  } catch {
    return 10_000
  }
}

export class Admission {
  private readonly byKey = new Map<string, AddressEntry>()
  private readonly bySocket = new Map<object, AddressEntry>()
  /** Entries beyond live connections are refilling buckets; an attacker cycling addresses meets this. */
  readonly maxTracked: number
  total = 0

  constructor(readonly limits: AdmissionLimits) {
    this.maxTracked = Math.max(100_000, 2 * limits.maxTotal)
  }

  get trackedAddresses(): number {
    return this.byKey.size
  }

  /** Counts `socket` under `key` and returns undefined, or says why it may not connect. */
  admit(socket: object, key: string, now: number): AdmissionRejection | undefined {
    const l = this.limits
    if (this.total >= l.maxTotal) {
      return {
        reason: "total",
        status: 503,
        retryAfterS: FULL_RETRY_AFTER_S,
        message: `The server is at its connection limit (${l.maxTotal})`,
      }
    }
    let entry = this.byKey.get(key)
    if (entry === undefined) {
      if (this.byKey.size >= this.maxTracked) this.sweep(now)
      if (this.byKey.size >= this.maxTracked) {
        return {
          reason: "address_table_full",
          status: 503,
          retryAfterS: FULL_RETRY_AFTER_S,
          message: "Too many client addresses connecting at once",
        }
      }
      entry = new AddressEntry(l.burst, now)
      this.byKey.set(key, entry)
    }
    if (entry.open >= l.maxPerAddress) {
      return {
        reason: "per_address",
        status: 429,
        retryAfterS: FULL_RETRY_AFTER_S,
        message: `Too many connections from this address (limit ${l.maxPerAddress})`,
      }
    }
    this.refill(entry, now)
    if (entry.tokens < 1) {
      return {
        reason: "rate",
        status: 429,
        retryAfterS: Math.max(1, Math.ceil((1 - entry.tokens) / l.ratePerSecond)),
        message: `Connecting too fast from this address (limit ${l.ratePerSecond}/s)`,
      }
    }
    entry.tokens -= 1
    entry.open++
    this.total++
    this.bySocket.set(socket, entry)
    return undefined
  }

  /** The socket closed: its place is free. Safe to call more than once. */
  release(socket: object): void {
    const entry = this.bySocket.get(socket)
    if (entry === undefined) return
    this.bySocket.delete(socket)
    entry.open--
    this.total--
  }

  /** Drops addresses with no connection and a full bucket; returns how many were dropped. */
  sweep(now: number): number {
    let dropped = 0
    for (const [key, entry] of this.byKey) {
      if (entry.open > 0) continue
      this.refill(entry, now)
      if (entry.tokens >= this.limits.burst) {
        this.byKey.delete(key)
        dropped++
      }
    }
    return dropped
  }

  private refill(entry: AddressEntry, now: number): void {
    const elapsed = now - entry.refilledAt
    if (elapsed <= 0) return
    entry.tokens = Math.min(this.limits.burst, entry.tokens + (elapsed / 1000) * this.limits.ratePerSecond)
    entry.refilledAt = now
  }
}
