import { createHmac } from "node:crypto";
import { randomHandle, sha256Base64url } from "@tessera/protocol";
import type { DataProtector } from "../keys/data-protection.ts";
import type { EndedSessions } from "./ended-sessions.ts";
import { issuerCookieName, parseCookies, serializeCookie, type CookieOptions } from "../http/cookies.ts";
import type { ResolvedOptions } from "../options.ts";
import type { ServerSideSession, SessionStore } from "../stores/interfaces.ts";
import { isStorableText, STORE_LIMITS, StoreValueError } from "../stores/values.ts";

/** Who signed in, as a login page tells the sign-in API. */
export interface SignInUser {
  /** Subject identifier; required, at most 255 characters. No string here may hold NUL or a lone surrogate. */
  sub: string;
  /** Display name (kept in an unbounded column). */
  name?: string;
  /** Authentication methods (RFC 8176), each at most 255 characters; default ["pwd"]. */
  amr?: string[];
  /** When the user authenticated, Unix seconds; default now. */
  auth_time?: number;
  /** Identity provider that authenticated the user, at most 255 characters; default "local". */
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
  /** Unix seconds: when the session started. */
  createdAt: number;
  /** Unix seconds: last renewal. */
  issuedAt: number;
  /** Unix seconds. */
  expiresAt: number;
  /** Client ids that received tokens in this session (for single sign-out). */
  clients: string[];
  persistent: boolean;
  /** The handle the cookie carries when the session lives in the store. */
  serverKey?: string;
}

/** A session read from a request, with any cookies that must be (re)sent with the response. */
export interface SessionRead {
  session: AuthenticationSession;
  cookies: string[];
}

/** Looks up a display name for a subject when the session's own claims lack it. */
export type DisplayNameLookup = (sub: string, claimType: string) => Promise<string | undefined>;

export const SESSION_COOKIE = "tessera.session";
export const SESSION_ID_COOKIE = "tessera.session_id";

/** Longest idp and amr value the sign-in API takes (identifiers; they travel in tokens and the session). */
const MAX_IDENTIFIER_LENGTH = 255;
/**
 * The session cookie's name: `__Host-tessera.session` on an https issuer, so only this exact origin can set
 * it (Secure, Path=/, no Domain: a sibling subdomain cannot plant or shadow it); `tessera.session` on http.
 * An issuer with a base path (`basePath`, e.g. "/tenant1") gets a suffix of its hash, see {@link issuerCookieName}.
 */
export function sessionCookieName(secure: boolean, basePath = ""): string {
  return issuerCookieName(SESSION_COOKIE, secure, basePath);
}

/** The largest cookie browsers reliably keep. */
const MAX_COOKIE_BYTES = 4000;
/** A key cookie's own expiry: long, because the store's record decides (it may be extended server-side). */
const KEY_COOKIE_LIFETIME = 400 * 86_400;

/**
 * The authentication session. Cookie mode: an encrypted, authenticated ticket in an HttpOnly cookie.
 * Server-side mode: the cookie carries only a key and the ticket lives in the store. Either way a
 * script-readable session-id cookie is kept in sync (for check-session). Switching modes migrates
 * sessions on their next request, so nobody is signed out.
 */
export class SessionService {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly protector: DataProtector,
    private readonly store: SessionStore,
    private readonly clock: () => number,
    private readonly ended: EndedSessions,
    private readonly displayNameLookup?: DisplayNameLookup,
    /** The user store's {@link UserStore.isSessionValid}: false ends the session (a disabled account). */
    private readonly sessionValid?: (sub: string, signedInAt: number) => Promise<boolean>,
  ) {}

  private get serverSide(): boolean {
    return this.options.serverSideSessions.enabled;
  }

  private get cookiePath(): string {
    return this.options.basePath || "/";
  }

  private get sessionCookie(): string {
    return sessionCookieName(this.options.secureCookies, this.options.basePath);
  }

  private cookieOptions(session: AuthenticationSession | undefined, httpOnly: boolean): CookieOptions {
    const secure = this.options.secureCookies;
    return {
      // __Host- requires Path=/.
      path: httpOnly && secure ? "/" : this.cookiePath,
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

  /** Reads and verifies the session; renews it (sliding), migrates it between modes, re-syncs the session-id cookie. */
  async read(request: Request): Promise<SessionRead | undefined> {
    const cookies = parseCookies(request.headers.get("cookie"));
    const value = cookies.get(this.sessionCookie);
    if (!value || value.length > MAX_COOKIE_BYTES) return undefined;
    const now = this.nowSeconds();
    const payload = await this.protector.openJwt("session-cookie", value, now);
    if (!payload) return undefined;
    let session: AuthenticationSession | undefined;
    let rewrite = false;
    let migrated = false;
    if (typeof payload.ssk === "string") {
      session = await this.fromStore(payload.ssk, now);
      // Server-side sessions were switched off: hand the session back to a cookie (and drop the record).
      if (session && !this.serverSide) {
        await this.store.remove([sha256Base64url(session.serverKey!)]);
        session.serverKey = undefined;
        rewrite = true;
      }
    } else {
      session = toSession(payload);
      // Server-side sessions were switched on: this cookie-only session moves into the store, on its cookie.
      if (session && this.serverSide) {
        session = await this.migrate(session, now);
        migrated = true;
      }
    }
    if (!session) return undefined;
    if (this.sessionValid && !(await this.sessionValid(session.sub, session.signedInAt))) {
      // The account was disabled or deleted since: the session is over, its record and sid too.
      await this.end(session);
      return undefined;
    }
    if (this.options.cookieSlidingExpiration && now - session.issuedAt > this.options.cookieLifetime / 2) {
      session.issuedAt = now;
      session.expiresAt = now + this.options.cookieLifetime;
      rewrite = true;
    }
    if (rewrite) {
      const written = await this.write(session, "update");
      return written && { session, cookies: written };
    }
    // A migrated session's record is in the store already: only the cookie changes (to the key cookie).
    if (migrated) return { session, cookies: (await this.write(session, "none"))! };
    const out = cookies.get(SESSION_ID_COOKIE) !== session.sid ? [this.sessionIdCookie(session)] : [];
    return { session, cookies: out };
  }

  /** Starts (or, for the same subject, refreshes) the session; returns it and its Set-Cookie values. */
  async signIn(request: Request, user: SignInUser, persistent = false): Promise<SessionRead> {
    validateUser(user);
    const existing = (await this.read(request))?.session;
    const now = this.nowSeconds();
    let same = existing && existing.sub === user.sub ? existing : undefined;
    // Every sign-in (re-authentication included) gets a new handle: a new cookie and a new server-side key,
    // so a handle planted or seen before the sign-in is worth nothing after it (session fixation). The same
    // user keeps the sid (as IdentityServer does), so the clients that know it stay in the session: their
    // logout notifications still match and coordinated refresh tokens live on. Server-side, the record moves
    // to the new key in one atomic step. The new key is the old key's successor, HMAC(server secret, old
    // key), so sign-ins racing with the same cookie (a double-submitted login form) all compute the same
    // key: the one whose rekey moved the record wins, and the others find the record under the successor
    // with the same sid and sub and update it (never inserting), so every racer returns the same cookie and
    // the session keeps its sid and clients, and its single logout reaches them all. This does not weaken
    // fixation protection: the successor cannot be computed without the server secret (an attacker who
    // planted or saw the old key learns nothing of the new one), the old key's record is gone once moved,
    // and a request with the old key that is not racing the move reads no session at all (so it never gets
    // here, except as a sign-in of that same user, below). Only when no such record exists (it is gone, or
    // belongs to someone else) does this sign-in start a session of its own: a sid is never stored twice.
    let serverKey: string | undefined;
    if (same?.serverKey && this.serverSide) {
      serverKey = this.successorKey(same.serverKey);
      if (!(await this.store.rekey(sha256Base64url(same.serverKey), sha256Base64url(serverKey)))) {
        const moved = await this.fromStore(serverKey, now);
        if (moved && moved.sid === same.sid && moved.sub === same.sub) same = moved;
        else [same, serverKey] = [undefined, undefined];
      }
    } else if (existing) {
      await this.end(existing);
    } else if (this.serverSide) {
      // A racer read the cookie only after another sign-in moved its record: the same user, authenticated
      // just now, joins the moved session under its successor key (again never inserting).
      const oldKey = await this.serverKeyOf(request);
      const moved = oldKey ? await this.fromStore(this.successorKey(oldKey), now) : undefined;
      if (moved && moved.sub === user.sub) [same, serverKey] = [moved, moved.serverKey];
    }
    const session: AuthenticationSession = {
      sid: same?.sid ?? randomHandle(16),
      sub: user.sub,
      name: user.name,
      amr: user.amr ?? ["pwd"],
      authTime: user.auth_time ?? now,
      idp: user.idp ?? "local",
      claims: { ...(user.claims ?? {}), ...(user.name !== undefined ? { name: user.name } : {}) },
      signedInAt: this.clock(),
      createdAt: same?.createdAt ?? now,
      issuedAt: now,
      expiresAt: now + this.options.cookieLifetime,
      // The same user's clients stay on the list, so single sign-out still reaches them.
      clients: same?.clients ?? [],
      persistent,
      serverKey,
    };
    const written = await this.write(session, same ? "update" : "create");
    if (written) return { session, cookies: written };
    // The moved record was removed before it was updated (revoked meanwhile): a session of its own.
    const fresh = { ...session, sid: randomHandle(16), createdAt: now, clients: [], serverKey: undefined };
    return { session: fresh, cookies: (await this.write(fresh, "create"))! };
  }

  /** The server-side key the request's session cookie carries (whether or not its record exists). */
  private async serverKeyOf(request: Request): Promise<string | undefined> {
    const value = parseCookies(request.headers.get("cookie")).get(this.sessionCookie);
    if (!value || value.length > MAX_COOKIE_BYTES) return undefined;
    const payload = await this.protector.openJwt("session-cookie", value, this.nowSeconds());
    return typeof payload?.ssk === "string" ? payload.ssk : undefined;
  }

  /** The server-side key a re-authentication moves a session's record to (see {@link signIn}). */
  private successorKey(serverKey: string): string {
    return createHmac("sha256", this.protector.subkey("session-rekey")).update(serverKey).digest("base64url");
  }

  /** Records that `clientId` got tokens in this session; returns the cookies to send when that changed. */
  async addClient(session: AuthenticationSession, clientId: string): Promise<string[]> {
    if (session.clients.includes(clientId)) return [];
    session.clients = [...session.clients, clientId];
    return (await this.write(session, "update")) ?? [];
  }

  /** Removes the session's server-side record and leaves its tombstone (no-op for cookie sessions). */
  async end(session: AuthenticationSession): Promise<void> {
    if (!session.serverKey) return;
    await this.store.remove([sha256Base64url(session.serverKey)]);
    await this.ended.mark([session.sid]);
  }

  /**
   * The server-side session of a cookie-only session, on its first request after server-side sessions were
   * switched on. The key is derived from the sid under a server secret, so concurrent requests carrying the
   * same cookie all name the same record; the record is only ever inserted when absent (never overwritten:
   * a live record is authoritative, the cookie's copy is stale). A sid that ended server-side (tombstone), or
   * lives on under another key (re-authenticated since), gives no session.
   */
  private async migrate(session: AuthenticationSession, now: number): Promise<AuthenticationSession | undefined> {
    const serverKey = createHmac("sha256", this.protector.subkey("session-migration")).update(session.sid).digest("base64url");
    if (await this.ended.has(session.sid)) return undefined;
    const stored = await this.fromStore(serverKey, now);
    if (stored) return stored;
    if (session.expiresAt <= now) return undefined;
    const candidate = { ...session, serverKey };
    let created: boolean;
    try {
      created = await this.storing(candidate, async (record) => this.store.create(record));
    } catch (error) {
      // A cookie from before the store checks may hold what no store keeps (a NUL in sub or name): it
      // cannot move into the store, so it counts as no session; the next sign-in replaces the cookie.
      if (error instanceof StoreValueError) return undefined;
      throw error;
    }
    if (created) return candidate;
    // A racing request inserted it first (use theirs), or the sid is held by another key (none).
    return this.fromStore(serverKey, now);
  }

  /**
   * Extends a live server-side session by the session lifetime (refresh tokens of clients that coordinate
   * their lifetime with it); false when the session no longer exists.
   */
  async extend(sessionId: string): Promise<boolean> {
    const record = await this.store.getBySessionId(sessionId);
    const now = this.nowSeconds();
    if (!record || record.expires <= now) return false;
    // An update, never an insert: a record re-keyed meanwhile (re-authentication) is not stored twice.
    return this.store.update({ ...record, renewed: now, expires: Math.max(record.expires, now + this.options.cookieLifetime) });
  }

  /** True when a server-side session with this sid exists and has not expired. */
  async isAlive(sessionId: string): Promise<boolean> {
    const record = await this.store.getBySessionId(sessionId);
    return !!record && record.expires > this.nowSeconds();
  }

  /** Set-Cookie values that remove both cookies. */
  signOutCookies(): string[] {
    const base = { path: this.cookiePath, secure: this.options.secureCookies, maxAge: 0 };
    return [
      serializeCookie(this.sessionCookie, "", { ...base, path: this.options.secureCookies ? "/" : this.cookiePath, httpOnly: true, sameSite: "Lax" }),
      serializeCookie(SESSION_ID_COOKIE, "", { ...base, httpOnly: false, sameSite: this.options.secureCookies ? "None" : "Lax" }),
    ];
  }

  private async fromStore(handle: string, now: number): Promise<AuthenticationSession | undefined> {
    const record = await this.store.get(sha256Base64url(handle));
    if (!record || record.expires <= now) return undefined;
    const json = await this.protector.unprotect("session-ticket", record.ticket);
    const session = json ? toSession(JSON.parse(json) as Record<string, unknown>) : undefined;
    if (!session || session.sid !== record.sessionId) return undefined;
    // The record is authoritative for lifetime and clients: admin actions and refreshes change it.
    return { ...session, serverKey: handle, issuedAt: record.renewed, expiresAt: record.expires, createdAt: record.created, clients: record.clientIds };
  }

  private async recordOf(session: AuthenticationSession): Promise<ServerSideSession> {
    const claimType = this.options.serverSideSessions.userDisplayNameClaimType;
    const own = session.claims[claimType];
    const displayName = typeof own === "string" ? own : await this.displayNameLookup?.(session.sub, claimType);
    return {
      key: sha256Base64url(session.serverKey!),
      sessionId: session.sid,
      subject: session.sub,
      displayName,
      created: session.createdAt,
      renewed: session.issuedAt,
      expires: session.expiresAt,
      clientIds: session.clients,
      ticket: await this.protector.protect("session-ticket", JSON.stringify({ ...ticketOf(session), exp: session.expiresAt })),
    };
  }

  /** Stores the session's record; a display name the user store gave that no store keeps is the server's fault. */
  private async storing<T>(session: AuthenticationSession, write: (record: ServerSideSession) => Promise<T>): Promise<T> {
    const claimType = this.options.serverSideSessions.userDisplayNameClaimType;
    try {
      return await write(await this.recordOf(session));
    } catch (error) {
      if (error instanceof StoreValueError && error.field === "displayName" && typeof session.claims[claimType] !== "string") {
        throw new StoreValueError("displayName", `from the user store (claim ${claimType}) cannot be stored: ${error.message}`, "server");
      }
      throw error;
    }
  }

  /**
   * The session's cookies. Server-side, the record is stored first: `create` for a new session (new key and
   * sid), `update` for a live one (never inserting: undefined when its key is gone, re-keyed or removed
   * meanwhile, so a stale key never stores a sid twice), `none` when the store already has it.
   */
  private async write(session: AuthenticationSession, mode: "create" | "update" | "none"): Promise<string[] | undefined> {
    let sealed: string;
    if (this.serverSide) {
      session.serverKey ??= randomHandle(32);
      if (mode === "create") await this.storing(session, (record) => this.store.put(record));
      if (mode === "update" && !(await this.storing(session, (record) => this.store.update(record)))) return undefined;
      sealed = await this.protector.sealJwt("session-cookie", { ssk: session.serverKey }, this.nowSeconds() + KEY_COOKIE_LIFETIME);
    } else {
      sealed = await this.protector.sealJwt("session-cookie", ticketOf(session), session.expiresAt);
    }
    if (sealed.length > MAX_COOKIE_BYTES) {
      throw new Error("the session does not fit in a cookie: pass fewer claims to signIn, or enable server-side sessions");
    }
    return [serializeCookie(this.sessionCookie, sealed, this.cookieOptions(session, true)), this.sessionIdCookie(session)];
  }

  private sessionIdCookie(session: AuthenticationSession): string {
    return serializeCookie(SESSION_ID_COOKIE, session.sid, this.cookieOptions(session, false));
  }
}

function ticketOf(session: AuthenticationSession): Record<string, unknown> {
  return {
    sid: session.sid,
    sub: session.sub,
    name: session.name,
    amr: session.amr,
    auth_time: session.authTime,
    idp: session.idp,
    claims: session.claims,
    sat: session.signedInAt,
    cat: session.createdAt,
    iat: session.issuedAt,
    clients: session.clients,
    persistent: session.persistent,
  };
}

/** A string every store keeps unchanged (no NUL, no lone surrogate), of 1 to `max` characters. */
const storableString = (value: unknown, max: number): value is string => typeof value === "string" && value.length > 0 && value.length <= max && isStorableText(value);

/** True when no string inside `value` holds text a store refuses (a claim may become the display name). */
function storableClaims(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return isStorableText(value);
  if (depth > 20) return false;
  if (Array.isArray(value)) return value.every((v) => storableClaims(v, depth + 1));
  if (value && typeof value === "object") return Object.entries(value).every(([k, v]) => isStorableText(k) && storableClaims(v, depth + 1));
  return true;
}

/** The sign-in API's edge: what a login page passes must fit every store, or it is refused here with a clear error. */
function validateUser(user: SignInUser): void {
  if (!storableString(user.sub, STORE_LIMITS.subject)) {
    throw new TypeError(`signIn: sub must be a non-empty string of at most ${STORE_LIMITS.subject} characters, without NUL or lone surrogates`);
  }
  if (user.name !== undefined && !storableString(user.name, Infinity)) {
    throw new TypeError("signIn: name must be a non-empty string without NUL or lone surrogates");
  }
  if (user.idp !== undefined && !storableString(user.idp, MAX_IDENTIFIER_LENGTH)) {
    throw new TypeError(`signIn: idp must be a non-empty string of at most ${MAX_IDENTIFIER_LENGTH} characters, without NUL or lone surrogates`);
  }
  if (user.amr !== undefined && (!Array.isArray(user.amr) || !user.amr.every((v) => storableString(v, MAX_IDENTIFIER_LENGTH)))) {
    throw new TypeError(`signIn: amr must be an array of non-empty strings of at most ${MAX_IDENTIFIER_LENGTH} characters, without NUL or lone surrogates`);
  }
  if (user.auth_time !== undefined && !(Number.isSafeInteger(user.auth_time) && user.auth_time >= 0)) {
    throw new TypeError("signIn: auth_time must be whole, non-negative Unix seconds");
  }
  if (user.claims !== undefined && (typeof user.claims !== "object" || user.claims === null || Array.isArray(user.claims) || !storableClaims(user.claims))) {
    throw new TypeError("signIn: claims must be an object whose strings hold no NUL or lone surrogates");
  }
}

function toSession(payload: Record<string, unknown>): AuthenticationSession | undefined {
  const { sid, sub, name, amr, auth_time, idp, claims, sat, cat, iat, exp, clients, persistent } = payload;
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
    createdAt: typeof cat === "number" ? cat : iat,
    issuedAt: iat,
    expiresAt: exp,
    clients: Array.isArray(clients) ? clients.filter((v): v is string => typeof v === "string") : [],
    persistent: persistent === true,
  };
}
