import { BlockList, isIP } from "node:net";
import type { TLSSocket } from "node:tls";
import type { HttpBindings } from "@hono/node-server";

/** What the host believes of the reverse proxies in front of it (config `trustedProxies`, `trustedProxyHeader`, `trustedProxyAddresses`). */
export interface ProxyTrust {
  /** Reverse proxies (hops) in front of the plain listener; 0 believes no forwarded header. */
  hops: number;
  /** The one header the proxies append the client's address to; the other is never read. */
  header: "x-forwarded-for" | "forwarded";
  /** When set, only direct peers in this list are the proxy; requests from anyone else are taken at face value. */
  addresses?: BlockList;
}

/** A {@link BlockList} of IPv4/IPv6 addresses and CIDR ranges (e.g. `10.0.0.0/8`, `2001:db8::/32`); throws on a malformed entry. */
export function addressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split("/");
    const family = isIP(address ?? "");
    if (!family || rest.length) throw new TypeError(`not an IP address or CIDR range: ${entry}`);
    if (prefix === undefined) {
      list.addAddress(address!, family === 4 ? "ipv4" : "ipv6");
      continue;
    }
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) throw new TypeError(`not an IP address or CIDR range: ${entry}`);
    list.addSubnet(address!, bits, family === 4 ? "ipv4" : "ipv6");
  }
  return list;
}

/** Whether `address` (a socket's remote address, IPv4-mapped IPv6 included) is in `list`. */
function listed(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return list.check(mapped[1]!, "ipv4") || list.check(address, "ipv6");
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** Addresses named by RFC 7239 `Forwarded: for=…` elements, in order. */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(",")) {
    const match = /(?:^|;)\s*for=("?)\[?([^\]";,]+)\]?(?::\d+)?\1/i.exec(element);
    if (match) out.push(match[2]!.trim());
  }
  return out;
}

/**
 * Whether the request came through the trusted reverse proxies, so that what they add to it (forwarded
 * addresses, a client-certificate header) may be believed. Proxies are counted in hops, so on the plain
 * listener the direct peer is the nearest proxy once one is configured, and with `addresses` set it must
 * also be one of them. The mTLS listener terminates TLS itself: its peers are clients, whatever their
 * headers say.
 */
export function fromTrustedProxy(env: Partial<HttpBindings> | undefined, trust: ProxyTrust): boolean {
  const socket = env?.incoming?.socket as TLSSocket | undefined;
  if (socket?.encrypted) return false;
  if (trust.hops <= 0) return false;
  return trust.addresses === undefined || listed(trust.addresses, socket?.remoteAddress);
}

/**
 * The client's address. Behind `hops` trusted reverse proxies, the address the outermost one saw, taken
 * from the configured header only (`X-Forwarded-For` by default, or RFC 7239 `Forwarded`), counting hops
 * from the right: a proxy that appends to one header passes a client's own value of the other through.
 * Without trusted proxies (and on the mTLS listener) those headers are ignored, since anyone can send them.
 */
export function clientAddress(request: Request, env: Partial<HttpBindings> | undefined, trust: ProxyTrust): string | undefined {
  const socketAddress = env?.incoming?.socket?.remoteAddress;
  if (!fromTrustedProxy(env, trust)) return socketAddress;
  const chain =
    trust.header === "forwarded"
      ? forwardedFor(request.headers.get("forwarded") ?? "")
      : (request.headers.get("x-forwarded-for") ?? "").split(",").map((a) => a.trim()).filter(Boolean);
  // The socket is the last proxy; each trusted proxy appended the address it saw.
  const index = chain.length - trust.hops;
  return index >= 0 ? chain[index] : chain[0] ?? socketAddress;
}
