/**
 * IP addresses as the gateway reads them: normalized (an IPv4 peer on a dual-stack socket is its
 * IPv4 address), by family, and lists of addresses and CIDRs (TRUSTED_PROXIES). Used by the
 * config's validation at startup and by the HTTP layer's client-address resolution.
 */
import { BlockList, isIP } from "node:net"

export interface TrustedProxies {
  readonly trusts: (address: string) => boolean
  readonly empty: boolean
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
export const normalizeAddress = (address: string): string => {
  const a = address.trim()
  if (a.length > 7 && a.slice(0, 7).toLowerCase() === "::ffff:" && isIP(a.slice(7)) === 4) return a.slice(7)
  return a
}

export const familyOf = (address: string): "ipv4" | "ipv6" | undefined => {
  switch (isIP(address)) {
    case 4:
      return "ipv4"
    case 6:
      return "ipv6"
    default:
      return undefined
  }
}

/** One entry of TRUSTED_PROXIES: an address or a CIDR; undefined when it is neither. */
const parseEntry = (
  entry: string,
):
  | { readonly address: string; readonly family: "ipv4" | "ipv6"; readonly prefix: number | undefined }
  | undefined => {
  const slash = entry.indexOf("/")
  const address = normalizeAddress(slash < 0 ? entry : entry.slice(0, slash))
  const family = familyOf(address)
  if (family === undefined) return undefined
  if (slash < 0) return { address, family, prefix: undefined }
  const text = entry.slice(slash + 1)
  const prefix = Number(text)
  const max = family === "ipv4" ? 32 : 128
  if (!/^\d{1,3}$/.test(text) || prefix > max) return undefined
  return { address, family, prefix }
}

const entriesOf = (list: string): ReadonlyArray<string> =>
  list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)

/** The entries of a TRUSTED_PROXIES value that are neither an address nor a CIDR. */
export const invalidProxyEntries = (list: string): ReadonlyArray<string> =>
  entriesOf(list).filter((e) => parseEntry(e) === undefined)

/** Parses TRUSTED_PROXIES (validated at startup by AppConfig; invalid entries are skipped here). */
export const trustedProxies = (list: string): TrustedProxies => {
  const block = new BlockList()
  let count = 0
  for (const e of entriesOf(list)) {
    const p = parseEntry(e)
    if (p === undefined) continue
    if (p.prefix === undefined) block.addAddress(p.address, p.family)
    else block.addSubnet(p.address, p.prefix, p.family)
    count++
  }
  return {
    empty: count === 0,
    trusts: (address) => {
      if (count === 0) return false
      const a = normalizeAddress(address)
      const family = familyOf(a)
      return family !== undefined && block.check(a, family)
    },
  }
}
