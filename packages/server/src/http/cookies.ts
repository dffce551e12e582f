import { createHash } from "node:crypto";
/** Attributes of a Set-Cookie header (RFC 6265bis). */
export interface CookieOptions {
  path: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: "Lax" | "Strict" | "None";
  /** Seconds; omitted for a browser-session cookie. 0 deletes the cookie. */
  maxAge?: number;
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Serializes one Set-Cookie header value. Values must already be cookie-safe (base64url, JWE). */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (!COOKIE_NAME.test(name)) throw new TypeError(`bad cookie name ${name}`);
  if (!/^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/.test(value)) throw new TypeError(`cookie ${name} has unsafe characters`);
  const parts = [`${name}=${value}`, `Path=${options.path}`];
  if (options.maxAge !== undefined) {
    parts.push(`Max-Age=${options.maxAge}`);
    if (options.maxAge === 0) parts.push("Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  }
  if (options.httpOnly) parts.push("HttpOnly");
  if (options.secure || options.sameSite === "None") parts.push("Secure");
  parts.push(`SameSite=${options.sameSite}`);
  return parts.join("; ");
}

/** Parses a Cookie request header; the first occurrence of a name wins, malformed pairs are skipped. */
export function parseCookies(header: string | null): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/**
 * A cookie name of the issuer at `basePath` (its URL path, "" for a root issuer): `__Host-` prefixed on
 * https (Secure, Path=/, no Domain); under a base path suffixed with the first 8 hex digits of SHA-256 of
 * that path, so issuers on one origin under different paths (whose `__Host-` cookies all have Path=/) never
 * share a cookie. A root issuer keeps the plain name.
 */
export function issuerCookieName(name: string, secure: boolean, basePath: string): string {
  const scoped = basePath && basePath !== "/" ? `${name}.${createHash("sha256").update(basePath).digest("hex").slice(0, 8)}` : name;
  return secure ? `__Host-${scoped}` : scoped;
}
