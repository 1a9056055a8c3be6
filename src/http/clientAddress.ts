/**
 * The client's address of a request. Behind a load balancer the TCP peer is the proxy, and the
 * client is named in `X-Forwarded-For`; that header is believed only when the peer is one of
 * TRUSTED_PROXIES (anyone can send it). The answer is the rightmost address that is not a
 * trusted proxy: every hop appends the address it saw, so entries left of the first untrusted one
 * were written by the client itself and prove nothing.
 *
 * An entry may carry a port, as some load balancers write it: `203.0.113.7:53211`,
 * `[2001:db8::1]:443`, `[2001:db8::1]`; the address is taken and the port dropped (a bare IPv6
 * address is read whole: `2001:db8::1:443` is an address). Anything else (`unknown`, an
 * obfuscated `_hidden`, garbage) names no address. Rule for such an entry: it is never skipped,
 * because the entry left of it was written by whoever sent the request to the proxy that wrote it,
 * i.e. possibly by the client. Walking from the right, an invalid entry where the client address
 * should be (the first entry that is not a trusted proxy) attributes the request to the nearest
 * trusted hop, the proxy that wrote it (the peer, or the last trusted entry passed). Only empty
 * entries (`a,,b`, a trailing comma) are skipped: no proxy writes one for a hop.
 */
import { isIP } from "node:net"
import { familyOf, normalizeAddress, type TrustedProxies } from "../net/addresses.js"

const PORT = /^\d{1,5}$/

/**
 * The address of one X-Forwarded-For entry (`ip`, `ip:port`, `[ipv6]`, `[ipv6]:port`), normalized;
 * undefined when it names no address.
 */
export const forwardedAddressOf = (entry: string): string | undefined => {
  const e = entry.trim()
  if (e.startsWith("[")) {
    const close = e.indexOf("]")
    if (close < 0) return undefined
    const rest = e.slice(close + 1)
    if (rest !== "" && !(rest.startsWith(":") && PORT.test(rest.slice(1)) && Number(rest.slice(1)) <= 65_535))
      return undefined
    const inner = e.slice(1, close)
    return isIP(inner) === 6 ? normalizeAddress(inner) : undefined
  }
  const a = normalizeAddress(e)
  if (familyOf(a) !== undefined) return a
  // One colon: IPv4 with a port (an IPv6 address has at least two).
  const colon = e.indexOf(":")
  if (colon < 0 || e.indexOf(":", colon + 1) >= 0) return undefined
  const port = e.slice(colon + 1)
  const host = e.slice(0, colon)
  return PORT.test(port) && Number(port) <= 65_535 && isIP(host) === 4 ? host : undefined
}

/**
 * The client address of a request from `peer` carrying `forwardedFor` (the X-Forwarded-For
 * header, all of its lines). Without a trusted peer the header is ignored. Walking from the right,
 * trusted proxies are skipped; the first other entry is the client. An entry that names no
 * address stops the walk at the hop that wrote it (the last trusted one, see the module comment);
 * when every entry is a trusted proxy, the leftmost is the best that is known.
 */
export const clientAddressOf = (
  proxies: TrustedProxies,
  peer: string | undefined,
  forwardedFor: string | ReadonlyArray<string> | undefined,
): string | undefined => {
  if (peer === undefined) return undefined
  const direct = normalizeAddress(peer)
  if (proxies.empty || forwardedFor === undefined || !proxies.trusts(direct)) return direct
  const hops = (typeof forwardedFor === "string" ? forwardedFor : forwardedFor.join(",")).split(",")
  let last = direct
  for (let i = hops.length - 1; i >= 0; i--) {
    const entry = (hops[i] ?? "").trim()
    if (entry === "") continue
    const hop = forwardedAddressOf(entry)
    if (hop === undefined) return last
    if (!proxies.trusts(hop)) return hop
    last = hop
  }
  return last
}

/**
 * The key connections are counted under: the address itself for IPv4, its /64 network for IPv6
 * (one host is routinely given a whole /64, so counting single IPv6 addresses would bound nothing).
 */
export const admissionKeyOf = (address: string): string => {
  if (isIP(address) !== 6) return address
  const [head = "", tail] = address.toLowerCase().split("::")
  const left = head === "" ? [] : head.split(":")
  const right = tail === undefined || tail === "" ? [] : tail.split(":")
  // An embedded IPv4 tail (::ffff:1.2.3.4 forms) counts as two groups but lies past the /64.
  const groups =
    tail === undefined
      ? left
      : [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`
}
