import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { issuerCookieName } from "@tessera/server";

export const CSRF_COOKIE = "tessera.csrf";

/**
 * Double-submit CSRF protection with a keyed twist: the cookie holds a random value, the form field holds
 * an HMAC under a server key of that value *and* of what the form acts for (the session's sid, or the
 * pending request before sign-in). A cookie planted by a sibling site, paired with a token the attacker got
 * in their own session, does not verify in the victim's. On https the cookie is `__Host-` (Secure, Path=/,
 * no Domain), so a sibling cannot plant it at all.
 */
export class CsrfProtection {
  /** The cookie's name: `__Host-tessera.csrf` on https, `tessera.csrf` on http; suffixed under a base path (issuerCookieName). */
  readonly cookieName: string;
  private readonly path: string;

  constructor(
    private readonly key: Uint8Array,
    private readonly secure: boolean,
    path: string,
  ) {
    this.cookieName = issuerCookieName(CSRF_COOKIE, secure, path);
    this.path = secure ? "/" : path;
  }

  /** The form token for this request and binding, and the Set-Cookie value when a new cookie was needed. */
  issue(cookieValue: string | undefined, binding: string): { token: string; cookie?: string } {
    const value = cookieValue && /^[A-Za-z0-9_-]{43}$/.test(cookieValue) ? cookieValue : undefined;
    if (value) return { token: this.sign(value, binding) };
    const fresh = randomBytes(32).toString("base64url");
    const cookie = `${this.cookieName}=${fresh}; Path=${this.path}; HttpOnly; SameSite=Lax${this.secure ? "; Secure" : ""}`;
    return { token: this.sign(fresh, binding), cookie };
  }

  /** True when the submitted token belongs to the cookie and to the same binding. */
  verify(cookieValue: string | undefined, token: string | undefined, binding: string): boolean {
    if (!cookieValue || !token) return false;
    const expected = Buffer.from(this.sign(cookieValue, binding));
    const given = Buffer.from(token);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private sign(value: string, binding: string): string {
    return createHmac("sha256", this.key).update(value).update("\0").update(binding).digest("base64url");
  }
}
