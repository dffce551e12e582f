import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const CSRF_COOKIE = "tessera.csrf";

/**
 * Double-submit CSRF protection with a keyed twist: the cookie holds a random value, the form field holds
 * its HMAC under a server key, so a cookie planted by a sibling site cannot be paired with a valid field.
 */
export class CsrfProtection {
  constructor(
    private readonly key: Uint8Array,
    private readonly secure: boolean,
    private readonly path: string,
  ) {}

  /** The form token for this request, and the Set-Cookie value when a new cookie was needed. */
  issue(cookieValue: string | undefined): { token: string; cookie?: string } {
    const value = cookieValue && /^[A-Za-z0-9_-]{43}$/.test(cookieValue) ? cookieValue : undefined;
    if (value) return { token: this.sign(value) };
    const fresh = randomBytes(32).toString("base64url");
    const cookie = `${CSRF_COOKIE}=${fresh}; Path=${this.path}; HttpOnly; SameSite=Lax${this.secure ? "; Secure" : ""}`;
    return { token: this.sign(fresh), cookie };
  }

  /** True when the submitted token belongs to the cookie. */
  verify(cookieValue: string | undefined, token: string | undefined): boolean {
    if (!cookieValue || !token) return false;
    const expected = Buffer.from(this.sign(cookieValue));
    const given = Buffer.from(token);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private sign(value: string): string {
    return createHmac("sha256", this.key).update(value).digest("base64url");
  }
}
