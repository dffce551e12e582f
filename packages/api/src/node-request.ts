import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";

/** A body-less Web Request carrying a Node request's method, absolute URL and headers (enough to validate a token). */
export function toWebRequest(method: string, url: string, headers: IncomingHttpHeaders): Request {
  const web = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    for (const v of Array.isArray(value) ? value : [value]) web.append(name, v);
  }
  return new Request(url, { method, headers: web });
}

/** The verified TLS client certificate of a Node socket, if the connection has one (mTLS). */
export function peerCertificate(socket: unknown): X509Certificate | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (!tls || typeof tls.getPeerX509Certificate !== "function" || !tls.authorized) return undefined;
  return tls.getPeerX509Certificate() ?? undefined;
}
