import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";

/** Options of the Node adapters (`@tessera/api/express`, `@tessera/api/fastify`). */
export interface NodeAdapterOptions {
  /**
   * The API's public base URL, e.g. `https://api.example.com` (a path prefix is kept). The request URL that
   * DPoP proofs are checked against (`htu`) is this plus the request path, whatever the `Host` header says.
   * Without it the URL is built from the request's protocol and `Host` header (fine when the API is reached
   * directly; behind a proxy that rewrites the host, set it).
   */
  baseUrl?: string;
}

/** Checks a configured base URL once, when the adapter is made. */
export function parseBaseUrl(baseUrl: string | undefined): URL | undefined {
  if (baseUrl === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`baseUrl ${JSON.stringify(baseUrl)} is not an absolute URL`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.search || url.hash || url.username || url.password) {
    throw new TypeError(`baseUrl ${JSON.stringify(baseUrl)} must be an http(s) URL without query, fragment or credentials`);
  }
  return url;
}

/** The absolute URL of a request: on the configured base URL when there is one, else from the request. */
export function requestUrl(base: URL | undefined, path: string, fromRequest: () => string): string {
  if (!base) return fromRequest();
  // Only the path and query of the request target count (an absolute-form target's host is ignored).
  let target: URL;
  try {
    target = new URL(path, "http://invalid");
  } catch {
    target = new URL("http://invalid/");
  }
  return `${base.origin}${base.pathname.replace(/\/+$/, "")}${target.pathname}${target.search}`;
}

/** A body-less Web Request carrying a Node request's method, absolute URL and headers (enough to validate a token). */
export function toWebRequest(method: string, url: string, headers: IncomingHttpHeaders): Request {
  const web = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    for (const v of Array.isArray(value) ? value : [value]) web.append(name, v);
  }
  return new Request(url, { method, headers: web });
}

/**
 * The TLS client certificate of a Node socket, if the connection has one (mTLS), whether or not it chains
 * to a CA the server trusts: certificate-bound tokens (RFC 8705 §3) are checked by thumbprint, so
 * self-signed certificates work (`requestCert: true, rejectUnauthorized: false`).
 */
export function peerCertificate(socket: unknown): X509Certificate | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (!tls || typeof tls.getPeerX509Certificate !== "function") return undefined;
  return tls.getPeerX509Certificate() ?? undefined;
}
