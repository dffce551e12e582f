import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { issuerCookieName } from "@tessera/server";

/** The device cookie's name without a prefix (the name on an http issuer). */
export const DEVICE_COOKIE = "tessera.device";

/** How long a browser stays known for an account after a successful sign-in (seconds; 180 days). */
export const DEVICE_LIFETIME = 180 * 24 * 3600;

/**
 * The device cookie's name: `__Host-` on https at path "/" (no Domain, so no sibling host can set or
 * shadow it), `__Secure-` on https under a path, no prefix on http (cookie prefixes, RFC 6265bis §4.1.3);
 * under a base path suffixed with the path's hash ({@link issuerCookieName}).
 */
export function deviceCookieName(secure: boolean, path: string): string {
  if (secure && path === "/") return `__Host-${DEVICE_COOKIE}`;
  // Under a base path the name carries the path's hash, so issuers on one origin never share it.
  const scoped = issuerCookieName(DEVICE_COOKIE, false, path === "/" ? "" : path);
  return secure ? `__Secure-${scoped}` : scoped;
}

/**
 * OWASP "device cookies": after a successful sign-in the browser gets a cookie naming the account, signed
 * with a key derived from the data key. Sign-ins presenting a valid one for the same account are throttled
 * on their own counter, so an attacker's failures for that account do not lock its owner out.
 */
export class DeviceCookies {
  /** The cookie's name ({@link deviceCookieName}). */
  readonly name: string;

  constructor(
    private readonly key: Uint8Array,
    private readonly secure: boolean,
    private readonly path: string,
    /** Unix seconds. */
    private readonly now: () => number,
  ) {
    this.name = deviceCookieName(secure, path);
  }

  /** The Set-Cookie value of a fresh device cookie for the account (a new device id every sign-in). */
  issue(account: string): string {
    const payload = Buffer.from(JSON.stringify({ a: account.toLowerCase(), d: randomBytes(16).toString("base64url"), e: this.now() + DEVICE_LIFETIME })).toString("base64url");
    return `${this.name}=${payload}.${this.sign(payload)}; Path=${this.path}; Max-Age=${DEVICE_LIFETIME}; HttpOnly; SameSite=Lax${this.secure ? "; Secure" : ""}`;
  }

  /** The device id of the cookie when it is authentic, unexpired and names this account; otherwise undefined. */
  deviceFor(cookieValue: string | undefined, account: string): string | undefined {
    const [payload, mac, extra] = (cookieValue ?? "").split(".");
    if (!payload || !mac || extra !== undefined || payload.length > 1024) return undefined;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return undefined;
    }
    const { a, d, e } = (parsed ?? {}) as { a?: unknown; d?: unknown; e?: unknown };
    if (typeof a !== "string" || typeof d !== "string" || typeof e !== "number") return undefined;
    if (a !== account.toLowerCase() || e <= this.now()) return undefined;
    return d;
  }

  private sign(value: string): string {
    return createHmac("sha256", this.key).update(value).digest("base64url");
  }
}
