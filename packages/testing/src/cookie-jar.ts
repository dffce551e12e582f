/** A cookie as a browser keeps it (RFC 6265 §5.3). */
export interface StoredCookie {
  name: string;
  value: string;
  domain: string;
  hostOnly: boolean;
  path: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite: "Strict" | "Lax" | "None";
  /** Milliseconds; undefined for a browser-session cookie. */
  expires?: number;
}

function defaultPath(url: URL): string {
  const path = url.pathname;
  if (!path.startsWith("/") || path.lastIndexOf("/") === 0) return "/";
  return path.slice(0, path.lastIndexOf("/"));
}

function domainMatches(host: string, domain: string): boolean {
  return host === domain || (host.endsWith(`.${domain}`) && !/^\d+\.\d+\.\d+\.\d+$/.test(host));
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/";
}

/** Secure cookies go over https, and to localhost as browsers allow. */
function isSecureContext(url: URL): boolean {
  return url.protocol === "https:" || url.hostname === "localhost" || url.hostname === "127.0.0.1" || url.hostname === "[::1]";
}

/** Cookies per domain and path, with expiry, as RFC 6265 stores and sends them. */
export class CookieJar {
  private cookies: StoredCookie[] = [];

  constructor(private readonly clock: () => number = Date.now) {}

  /** Stores the cookies of one Set-Cookie header value received from `url`. */
  setCookie(header: string, url: URL): void {
    const [pair = "", ...attributes] = header.split(";");
    const eq = pair.indexOf("=");
    if (eq <= 0) return;
    const cookie: StoredCookie = {
      name: pair.slice(0, eq).trim(),
      value: pair.slice(eq + 1).trim(),
      domain: url.hostname,
      hostOnly: true,
      path: defaultPath(url),
      secure: false,
      httpOnly: false,
      sameSite: "Lax",
    };
    let maxAge: number | undefined;
    for (const attribute of attributes) {
      const [rawName = "", ...rawValue] = attribute.split("=");
      const name = rawName.trim().toLowerCase();
      const value = rawValue.join("=").trim();
      if (name === "path" && value.startsWith("/")) cookie.path = value;
      else if (name === "domain" && value) {
        const domain = value.replace(/^\./, "").toLowerCase();
        if (!domainMatches(url.hostname, domain)) return; // a foreign domain: rejected (RFC 6265 §5.3 step 6)
        cookie.domain = domain;
        cookie.hostOnly = false;
      } else if (name === "max-age" && /^-?\d+$/.test(value)) maxAge = Number(value);
      else if (name === "expires" && maxAge === undefined) {
        const at = Date.parse(value);
        if (!Number.isNaN(at)) cookie.expires = at;
      } else if (name === "secure") cookie.secure = true;
      else if (name === "httponly") cookie.httpOnly = true;
      else if (name === "samesite") {
        const v = value.toLowerCase();
        cookie.sameSite = v === "strict" ? "Strict" : v === "none" ? "None" : "Lax";
      }
    }
    if (maxAge !== undefined) cookie.expires = this.clock() + maxAge * 1000;
    if (cookie.secure && !isSecureContext(url)) return;
    this.cookies = this.cookies.filter((c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path));
    if (cookie.expires === undefined || cookie.expires > this.clock()) this.cookies.push(cookie);
  }

  /** The Cookie header value for a request to `url`, or undefined when none apply. */
  cookieHeader(url: URL): string | undefined {
    const now = this.clock();
    this.cookies = this.cookies.filter((c) => c.expires === undefined || c.expires > now);
    const applicable = this.cookies
      .filter((c) => (c.hostOnly ? c.domain === url.hostname : domainMatches(url.hostname, c.domain)))
      .filter((c) => pathMatches(url.pathname, c.path))
      .filter((c) => !c.secure || isSecureContext(url))
      .sort((a, b) => b.path.length - a.path.length);
    return applicable.length ? applicable.map((c) => `${c.name}=${c.value}`).join("; ") : undefined;
  }

  /** The cookie called `name` that would be sent to `url`. */
  get(name: string, url: string | URL): StoredCookie | undefined {
    const target = new URL(url);
    return this.all().find((c) => c.name === name && (c.hostOnly ? c.domain === target.hostname : domainMatches(target.hostname, c.domain)) && pathMatches(target.pathname, c.path));
  }

  /** Every unexpired cookie. */
  all(): StoredCookie[] {
    const now = this.clock();
    return this.cookies.filter((c) => c.expires === undefined || c.expires > now).map((c) => ({ ...c }));
  }

  /** Adds or replaces a cookie directly (to forge or expire one in a test). */
  set(cookie: StoredCookie): void {
    this.cookies = this.cookies.filter((c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path));
    this.cookies.push({ ...cookie });
  }

  /** Removes cookies by name (all domains), or every cookie. */
  clear(name?: string): void {
    this.cookies = name === undefined ? [] : this.cookies.filter((c) => c.name !== name);
  }
}
