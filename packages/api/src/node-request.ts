import { validateHeaderValue, type IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import type { ValidationFailure } from "./validator.ts";

/** Options of the Node adapters (`@tessera/api/express`, `@tessera/api/fastify`). */
export interface NodeAdapterOptions {
  /**
   * The API's public base URL, e.g. `https://api.example.com` (a path prefix is kept). The request URL that
   * DPoP proofs are checked against (`htu`) is this plus the request path, whatever the `Host` header says.
   * Without it the URL is built from the request's protocol and `Host` header (fine when the API is reached
   * directly; behind a proxy that rewrites the host, set it). Set it in production: without it, another API
   * accepting tokens for an overlapping audience could, if compromised, replay a proof it received here,
   * naming its own host in `Host`, within the proof's lifetime.
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

/** A Node request as a Web Request, or why none can be made (the adapters answer 400 invalid_request). */
export type NodeWebRequest = { ok: true; request: Request } | { ok: false; description: string };

/** A DNS label: letters, digits, hyphens inside, and underscores (service names such as `my_api`). */
const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?";
/**
 * Host header or absolute-form authority: a DNS name (dot-separated labels, one trailing dot allowed) or
 * IPv4 address, or a bracketed IPv6 literal, and an optional port.
 */
const HOST = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*\\.?|\\[[0-9A-Fa-f:.]+\\])(?::([0-9]{1,5}))?$`);
/** An absolute-form target (RFC 9112 §3.2.2): http(s) scheme, authority (up to the first "/", "?" or "#"), the rest. */
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/i;
/** A dot segment (RFC 3986 §3.3), also percent-encoded, which a URL parser would resolve. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

function validHost(host: string | undefined): boolean {
  const valid = host === undefined ? null : HOST.exec(host);
  return valid !== null && (valid[1] === undefined || Number(valid[1]) <= 65535);
}

/**
 * The Web Request a token is checked against, built from the raw request target without resolving it:
 * origin-form targets (a single leading "/", no backslash or control character, no dot segments), so the
 * URL is the one the router serves, or absolute-form http(s) targets whose path and query follow the same
 * rules. The URL is the configured base URL plus that path and query when there is a base URL; else the
 * request's protocol and the target's authority (absolute-form, RFC 9112 §3.2.2: Host is then ignored) or
 * the `Host` header.
 */
export function nodeWebRequest(base: URL | undefined, method: string, target: string, headers: IncomingHttpHeaders, origin: () => { protocol: string; host: string | undefined }): NodeWebRequest {
  // (Control characters too: a URL parser drops tabs and newlines, which would join "." and "." into "..".)
  if (/[\\\x00-\x20\x7f]/.test(target)) return { ok: false, description: "the request target must be a path" };
  let pathAndQuery = target;
  let authority: { scheme: string; host: string } | undefined;
  if (!target.startsWith("/")) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (!absolute) return { ok: false, description: "the request target must be a path or an absolute http(s) URL" };
    if (!validHost(absolute[2])) return { ok: false, description: "the request target's authority is invalid" };
    authority = { scheme: absolute[1]!.toLowerCase(), host: absolute[2]! };
    pathAndQuery = absolute[3]!;
  }
  if (!pathAndQuery.startsWith("/") || pathAndQuery.startsWith("//")) return { ok: false, description: "the request target must be a path" };
  const path = pathAndQuery.split(/[?#]/, 1)[0]!;
  if (path.split("/").some((segment) => DOT_SEGMENT.test(segment))) return { ok: false, description: "the request path must not contain dot segments" };
  let prefix: string;
  if (base) {
    prefix = `${base.origin}${base.pathname.replace(/\/+$/, "")}`;
  } else {
    const { protocol, host: hostHeader } = origin();
    const host = authority ? authority.host : hostHeader;
    if (!validHost(host)) return { ok: false, description: "the Host header is invalid" };
    if (protocol !== "http" && protocol !== "https") return { ok: false, description: "the request protocol is not http or https" };
    // An https target on a plain connection (or the reverse) is misdirected (RFC 9110 §7.4): refused, not rewritten.
    if (authority && authority.scheme !== protocol) return { ok: false, description: "the request target's scheme is not the request's protocol" };
    prefix = `${protocol}://${host}`;
  }
  try {
    const web = new Headers();
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || name.startsWith(":")) continue;
      for (const v of Array.isArray(value) ? value : [value]) web.append(name, v);
    }
    return { ok: true, request: new Request(`${prefix}${pathAndQuery}`, { method, headers: web }) };
  } catch {
    return { ok: false, description: "the request's URL or headers cannot be read" };
  }
}

/** The 400 body for a request {@link nodeWebRequest} refused (RFC 6750 §3.1 invalid_request). */
export function invalidRequestBody(description: string): { error: "invalid_request"; error_description: string } {
  return { error: "invalid_request", error_description: description };
}

/**
 * The response headers of a refused request, checked before anything is written: a value Node would refuse
 * throws here, so the framework answers 500 cleanly instead of failing halfway through the response.
 */
export function refusalHeaders(failure: ValidationFailure): Record<string, string> {
  const headers: Record<string, string> = { "www-authenticate": failure.wwwAuthenticate, "cache-control": "no-store", ...(failure.dpopNonce ? { "dpop-nonce": failure.dpopNonce } : {}) };
  for (const [name, value] of Object.entries(headers)) validateHeaderValue(name, value);
  return headers;
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
