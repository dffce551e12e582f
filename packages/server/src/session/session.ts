import { randomHandle } from "@tessera/protocol";
import type { DataProtector } from "../keys/data-protection.ts";
import { parseCookies, serializeCookie, type CookieOptions } from "../http/cookies.ts";
import type { ResolvedOptions } from "../options.ts";

/** Who signed in, as a login page tells the sign-in API. */
export interface SignInUser {
  /** Subject identifier; required, at most 255 characters. */
  sub: string;
  /** Display name. */
  name?: string;
  /** Authentication methods (RFC 8176); default ["pwd"]. */
  amr?: string[];
  /** When the user authenticated, Unix seconds; default now. */
  auth_time?: number;
  /** Identity provider that authenticated the user; default "local". */
  idp?: string;
  /** Further claims kept with the session (used when no user store is configured). */
  claims?: Record<string, unknown>;
}

/** An authentication session: the user, how and when they authenticated, and the clients they used. */
export interface AuthenticationSession {
  sid: string;
  sub: string;
  name?: string;
  amr: string[];
  authTime: number;
  idp: string;
  claims: Record<string, unknown>;
  /** Milliseconds: when the sign-in API was last called for this session. */
  signedInAt: number;
  /** Unix seconds. */
  issuedAt: number;
  /** Unix seconds. */
  expiresAt: number;
  /** Client ids that received tokens in this session (for single sign-out). */
  clients: string[];
  persistent: boolean;
}

/** A session read from a request, with any cookies that must be (re)sent with the response. */
export interface SessionRead {
  session: AuthenticationSession;
  cookies: string[];
}

export const SESSION_COOKIE = "tessera.session";
export const SESSION_ID_COOKIE = "tessera.session_id";

/** The largest cookie browsers reliably keep. */
const MAX_COOKIE_BYTES = 4000;

/**
 * The cookie-based authentication session: an encrypted, authenticated ticket in an HttpOnly cookie, and
 * a script-readable session-id cookie kept in sync with it (for check-session).
 */
export class SessionService {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly protector: DataProtector,
    private readonly clock: () => number,
  ) {}

  private get cookiePath(): string {
    return this.options.basePath || "/";
  }

  private cookieOptions(session: AuthenticationSession | undefined, httpOnly: boolean): CookieOptions {
    const secure = this.options.secureCookies;
    return {
      path: this.cookiePath,
      httpOnly,
      secure,
      // The session-id cookie is read inside the check-session iframe, which may be third-party.
      sameSite: httpOnly || !secure ? "Lax" : "None",
      maxAge: session?.persistent ? Math.max(0, session.expiresAt - this.nowSeconds()) : undefined,
    };
  }

  private nowSeconds(): number {
    return Math.floor(this.clock() / 1000);
  }

  /** Reads and verifies the session cookie; renews it (sliding) and re-syncs the session-id cookie. */
  async read(request: Request): Promise<SessionRead | undefined> {
    const cookies = parseCookies(request.headers.get("cookie"));
    const value = cookies.get(SESSION_COOKIE);
    if (!value || value.length > MAX_COOKIE_BYTES) return undefined;
    const now = this.nowSeconds();
    const payload = await this.protector.openJwt("session-cookie", value, now);
    const session = payload ? toSession(payload) : undefined;
    if (!session) return undefined;
    const out: string[] = [];
    if (this.options.cookieSlidingExpiration && now - session.issuedAt > this.options.cookieLifetime / 2) {
      session.issuedAt = now;
      session.expiresAt = now + this.options.cookieLifetime;
      out.push(...(await this.write(session)));
    } else if (cookies.get(SESSION_ID_COOKIE) !== session.sid) {
      out.push(this.sessionIdCookie(session));
    }
    return { session, cookies: out };
  }

  /** Starts (or, for the same subject, refreshes) the session; returns it and its Set-Cookie values. */
  async signIn(request: Request, user: SignInUser, persistent = false): Promise<SessionRead> {
    validateUser(user);
    const existing = await this.read(request);
    const now = this.nowSeconds();
    const same = existing && existing.session.sub === user.sub ? existing.session : undefined;
    const session: AuthenticationSession = {
      // The same user signing in again keeps the sid, so clients' sessions stay tied to it.
      sid: same?.sid ?? randomHandle(16),
      sub: user.sub,
      name: user.name,
      amr: user.amr ?? ["pwd"],
      authTime: user.auth_time ?? now,
      idp: user.idp ?? "local",
      claims: { ...(user.claims ?? {}), ...(user.name !== undefined ? { name: user.name } : {}) },
      signedInAt: this.clock(),
      issuedAt: now,
      expiresAt: now + this.options.cookieLifetime,
      clients: same?.clients ?? [],
      persistent,
    };
    return { session, cookies: await this.write(session) };
  }

  /** Records that `clientId` got tokens in this session; returns the cookies to send when that changed. */
  async addClient(session: AuthenticationSession, clientId: string): Promise<string[]> {
    if (session.clients.includes(clientId)) return [];
    session.clients = [...session.clients, clientId];
    return this.write(session);
  }

  /** Set-Cookie values that remove both cookies. */
  signOutCookies(): string[] {
    const base = { path: this.cookiePath, secure: this.options.secureCookies, maxAge: 0 };
    return [
      serializeCookie(SESSION_COOKIE, "", { ...base, httpOnly: true, sameSite: "Lax" }),
      serializeCookie(SESSION_ID_COOKIE, "", { ...base, httpOnly: false, sameSite: this.options.secureCookies ? "None" : "Lax" }),
    ];
  }

  private async write(session: AuthenticationSession): Promise<string[]> {
    const sealed = await this.protector.sealJwt(
      "session-cookie",
      {
        sid: session.sid,
        sub: session.sub,
        name: session.name,
        amr: session.amr,
        auth_time: session.authTime,
        idp: session.idp,
        claims: session.claims,
        sat: session.signedInAt,
        iat: session.issuedAt,
        clients: session.clients,
        persistent: session.persistent,
      },
      session.expiresAt,
    );
    if (sealed.length > MAX_COOKIE_BYTES) {
      throw new Error("the session does not fit in a cookie: pass fewer claims to signIn");
    }
    return [serializeCookie(SESSION_COOKIE, sealed, this.cookieOptions(session, true)), this.sessionIdCookie(session)];
  }

  private sessionIdCookie(session: AuthenticationSession): string {
    return serializeCookie(SESSION_ID_COOKIE, session.sid, this.cookieOptions(session, false));
  }
}

function validateUser(user: SignInUser): void {
  if (typeof user.sub !== "string" || user.sub.length === 0 || user.sub.length > 255) {
    throw new TypeError("signIn: sub must be a non-empty string of at most 255 characters");
  }
  if (user.amr !== undefined && (!Array.isArray(user.amr) || !user.amr.every((v) => typeof v === "string"))) {
    throw new TypeError("signIn: amr must be an array of strings");
  }
  if (user.auth_time !== undefined && !Number.isInteger(user.auth_time)) {
    throw new TypeError("signIn: auth_time must be whole Unix seconds");
  }
}

function toSession(payload: Record<string, unknown>): AuthenticationSession | undefined {
  const { sid, sub, name, amr, auth_time, idp, claims, sat, iat, exp, clients, persistent } = payload;
  if (typeof sid !== "string" || typeof sub !== "string" || typeof auth_time !== "number" || typeof iat !== "number" || typeof exp !== "number") {
    return undefined;
  }
  return {
    sid,
    sub,
    name: typeof name === "string" ? name : undefined,
    amr: Array.isArray(amr) ? amr.filter((v): v is string => typeof v === "string") : ["pwd"],
    authTime: auth_time,
    idp: typeof idp === "string" ? idp : "local",
    claims: claims && typeof claims === "object" ? (claims as Record<string, unknown>) : {},
    signedInAt: typeof sat === "number" ? sat : iat * 1000,
    issuedAt: iat,
    expiresAt: exp,
    clients: Array.isArray(clients) ? clients.filter((v): v is string => typeof v === "string") : [],
    persistent: persistent === true,
  };
}
