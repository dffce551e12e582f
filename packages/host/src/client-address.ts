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
 * Whether the request's direct peer is one of the `trustedProxies` reverse proxies, so that what it adds
 * to the request (forwarded addresses, a client-certificate header) may be believed. The proxies are
 * counted in hops, so any direct peer of the plain listener is the nearest proxy once one is configured.
 */
export function fromTrustedProxy(trustedProxies: number): boolean {
  return trustedProxies > 0;
}

/**
 * The client's address. Behind `trustedProxies` reverse proxies (hops), the address the outermost trusted
 * proxy saw: taken from `Forwarded` (RFC 7239) or `X-Forwarded-For`, counting hops from the right. With no
 * trusted proxies those headers are ignored, since anyone can send them.
 */
export function clientAddress(request: Request, env: Partial<HttpBindings> | undefined, trustedProxies: number): string | undefined {
  const socketAddress = env?.incoming?.socket?.remoteAddress;
  if (!fromTrustedProxy(trustedProxies)) return socketAddress;
  const forwarded = request.headers.get("forwarded");
  const chain = forwarded ? forwardedFor(forwarded) : (request.headers.get("x-forwarded-for") ?? "").split(",").map((a) => a.trim()).filter(Boolean);
  // The socket is the last proxy; each trusted proxy appended the address it saw.
  const index = chain.length - trustedProxies;
  return index >= 0 ? chain[index] : chain[0] ?? socketAddress;
}
