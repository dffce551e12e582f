import type { TLSSocket } from "node:tls";
import type { HttpBindings } from "@hono/node-server";

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
 * Whether the request came through the `trustedProxies` reverse proxies, so that what they add to it
 * (forwarded addresses, a client-certificate header) may be believed. Proxies are counted in hops, so on
 * the plain listener the direct peer is the nearest proxy once one is configured. The mTLS listener
 * terminates TLS itself: its peers are clients, whatever their headers say.
 */
export function fromTrustedProxy(env: Partial<HttpBindings> | undefined, trustedProxies: number): boolean {
  if ((env?.incoming?.socket as TLSSocket | undefined)?.encrypted) return false;
  return trustedProxies > 0;
}

/**
 * The client's address. Behind `trustedProxies` reverse proxies (hops), the address the outermost trusted
 * proxy saw: taken from `Forwarded` (RFC 7239) or `X-Forwarded-For`, counting hops from the right. With no
 * trusted proxies (and on the mTLS listener) those headers are ignored, since anyone can send them.
 */
export function clientAddress(request: Request, env: Partial<HttpBindings> | undefined, trustedProxies: number): string | undefined {
  const socketAddress = env?.incoming?.socket?.remoteAddress;
  if (!fromTrustedProxy(env, trustedProxies)) return socketAddress;
  const forwarded = request.headers.get("forwarded");
  const chain = forwarded ? forwardedFor(forwarded) : (request.headers.get("x-forwarded-for") ?? "").split(",").map((a) => a.trim()).filter(Boolean);
  // The socket is the last proxy; each trusted proxy appended the address it saw.
  const index = chain.length - trustedProxies;
  return index >= 0 ? chain[index] : chain[0] ?? socketAddress;
}
