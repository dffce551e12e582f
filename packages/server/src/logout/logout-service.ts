import { ProtocolError, randomHandle, sha256Base64url } from "@tessera/protocol";
import { clientAddressOf } from "../http/request-context.ts";
import type { Client, ClientStore } from "../clients.ts";
import type { DataProtector } from "../keys/data-protection.ts";
import { assertPendingSize, type PendingRequestCap, type PendingTags } from "../security/pending-requests.ts";
import type { GrantStore } from "../stores/interfaces.ts";
import type { SessionService } from "../session/session.ts";
import type { BackChannelLogoutService } from "./back-channel.ts";
import type { TesseraEvent } from "../events.ts";

/** A logout in progress: what the client asked for, and (once ended) whose session ended. */
export interface LogoutRequestData {
  clientId?: string;
  /** Already validated against the client's registered list. */
  postLogoutRedirectUri?: string;
  state?: string;
  uiLocales?: string;
  /** True when the client asked for a redirect URI that is not registered (so none is followed). */
  redirectRejected?: boolean;
  ended: boolean;
  sub?: string;
  sid?: string;
  /** Client ids of the ended session. */
  clients: string[];
  /** Where the request is counted against the caps on pending requests. */
  pending?: PendingTags;
}

/** What the signed-out page shows and does. */
export interface SignedOutDetails {
  /** Front-channel logout URLs to load in hidden iframes (with iss and sid where the client asked). */
  frontChannelUrls: string[];
  /** Where to continue, with `state`, when the client asked for a registered URI. */
  postLogoutRedirectUri?: string;
  clientName?: string;
  redirectRejected: boolean;
  /** Set-Cookie values to send with the page (when showing it ended a session). */
  cookies?: string[];
}

/** Where a finished logout continues: the (validated) post_logout_redirect_uri with `state`. */
export function postLogoutRedirect(postLogoutRedirectUri: string, state: string | undefined): string {
  const url = new URL(postLogoutRedirectUri);
  if (state !== undefined) url.searchParams.set("state", state);
  return url.toString();
}

/** Bytes of a stored logout request kept for its pending tags and what ending it adds. */
const LOGOUT_RESERVE = 1024;

/** Seconds an ended logout carried sealed (not stored) is shown on the signed-out page. */
const SEALED_ENDED_LIFETIME = 120;

/** A logout id that is a sealed value (compact JWE), not a stored handle. */
const isSealed = (id: string) => id.length <= 16384 && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/.test(id);

/**
 * Ends authentication sessions and tells the session's clients (front- and back-channel). A logout request
 * is stored under a random id (counted against the pending-request cap); when the cap refuses one, the
 * request travels instead as a short-lived sealed value (encrypted and authenticated with the provider's
 * data key, purpose "logout-request"), so signing out is never refused.
 */
export class LogoutService {
  constructor(
    private readonly issuer: string,
    private readonly grants: GrantStore,
    private readonly clients: ClientStore,
    private readonly sessions: SessionService,
    private readonly backChannel: BackChannelLogoutService,
    private readonly lifetime: number,
    private readonly now: () => number,
    private readonly cap: PendingRequestCap,
    private readonly protector: DataProtector,
    private readonly emit: (event: TesseraEvent) => void = () => {},
  ) {}

  /**
   * A new logout request's id: stored, with `address` (the client's) counting it against the per-address
   * cap; or, when the cap refuses it, a sealed value carrying the request (never refused for the cap).
   * Only the validated fields logout needs are kept; a request over 8 KiB stored (a `state` and
   * `ui_locales` no client sends) is refused with `invalid_request` ("request too large"), shown on a page.
   */
  async create(data: Omit<LogoutRequestData, "ended" | "clients" | "pending">, address?: string): Promise<string> {
    const { clientId, postLogoutRedirectUri, state, uiLocales, redirectRejected } = data;
    data = { clientId, postLogoutRedirectUri, state, uiLocales, redirectRejected };
    // Room for the cap's tags and what an ended logout adds (sub, sid, the session's client ids).
    assertPendingSize({ ...data, ended: false, clients: [] }, LOGOUT_RESERVE, false);
    let pending: PendingTags;
    try {
      pending = await this.cap.admit("logout", address);
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== "temporarily_unavailable") throw error;
      return this.seal({ ...data, ended: false, clients: [] });
    }
    const id = randomHandle(24);
    await this.save(id, { ...data, ended: false, clients: [], pending });
    return id;
  }

  async get(id: string): Promise<LogoutRequestData | undefined> {
    if (isSealed(id)) return this.unseal(id);
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(id)) return undefined;
    const grant = await this.grants.get(sha256Base64url(id));
    if (!grant || grant.kind !== "logout" || grant.expiresAt < this.now()) return undefined;
    return JSON.parse(grant.data) as LogoutRequestData;
  }

  /**
   * Ends the request's session: clears both cookies, records the session's clients for the signed-out
   * page, and starts back-channel notifications. Returns the logout id and the cookies to send.
   */
  async endSession(request: Request, logoutId?: string): Promise<{ logoutId: string; cookies: string[]; sid?: string }> {
    const pending = logoutId ? await this.get(logoutId) : undefined;
    // An ended request is never reused: its redirect and notifications belong to a session already gone.
    // Whoever is signed in now gets a fresh logout of their own session.
    const session = (await this.sessions.read(request))?.session;
    // Nobody signed in and no request to finish: nothing to log out, and nothing is stored.
    let [id, data, stored]: [string, LogoutRequestData, boolean] =
      pending && !pending.ended ? [logoutId!, pending, !isSealed(logoutId!)] : session ? await this.fresh(clientAddressOf(request)) : [randomHandle(24), { ended: false, clients: [] }, false];
    if (session) await this.sessions.end(session);
    if (session) {
      data.sub = session.sub;
      data.sid = session.sid;
      data.clients = session.clients;
      const clients = (await Promise.all(session.clients.map((c) => this.clients.findClientById(c)))).filter((c): c is Client => !!c);
      this.backChannel.notify({ sub: session.sub, sid: session.sid, clients });
      this.emit({ type: "session.ended", sub: session.sub, sid: session.sid, clients: session.clients });
    }
    data.ended = true;
    if (stored) await this.save(id, data);
    // Unstored: the signed-out page's details travel sealed (only when there is something to show).
    else if (session || (pending && !pending.ended)) id = await this.seal(data);
    return { logoutId: id, cookies: this.sessions.signOutCookies(), ...(session ? { sid: session.sid } : {}) };
  }

  /**
   * The signed-out page's data for an ended logout, once: a replayed id never shows the old logout's
   * iframes or redirect again, and never ends a session (a GET must not: anyone can send the link). For a
   * replay, "confirm" when `request` carries a session (the user confirms on the logout prompt, whose POST
   * is CSRF-protected, as for an end-session request without a valid hint), else undefined (a plain page).
   */
  async signedOut(id: string, request?: Request): Promise<SignedOutDetails | "confirm" | undefined> {
    const data = await this.get(id);
    const signedIn = async () => !!request && !!(await this.sessions.read(request));
    // A stored one is shown once. A sealed one cannot be burnt: it is shown only within its short lifetime
    // and only to a browser without a session (right after the logout it carries); a signed-in user
    // confirms on the prompt instead, as for a replay, so a sealed id never stands in for a logout.
    const shown = !data?.ended ? undefined : isSealed(id) ? { firstUse: !(await signedIn()) } : await this.grants.consume(sha256Base64url(id), this.now());
    if (!data || !shown?.firstUse) return (await signedIn()) ? "confirm" : undefined;
    const frontChannelUrls: string[] = [];
    for (const clientId of data.clients) {
      const client = await this.clients.findClientById(clientId);
      if (!client?.frontchannelLogoutUri) continue;
      const url = new URL(client.frontchannelLogoutUri);
      if (client.frontchannelLogoutSessionRequired && data.sid) {
        url.searchParams.set("iss", this.issuer);
        url.searchParams.set("sid", data.sid);
      }
      frontChannelUrls.push(url.toString());
    }
    const postLogoutRedirectUri = data.postLogoutRedirectUri ? postLogoutRedirect(data.postLogoutRedirectUri, data.state) : undefined;
    const client = data.clientId ? await this.clients.findClientById(data.clientId) : undefined;
    return { frontChannelUrls, postLogoutRedirectUri, clientName: client?.clientName, redirectRejected: data.redirectRejected ?? false };
  }

  /** A new logout request; when the pending-request cap refuses one, an unstored one (signing out must still work). */
  private async fresh(address: string | undefined): Promise<[string, LogoutRequestData, boolean]> {
    const id = await this.create({}, address);
    if (isSealed(id)) return [id, { ended: false, clients: [] }, false];
    return [id, (await this.get(id)) ?? { ended: false, clients: [] }, true];
  }

  /** A sealed logout id: a pending request lives as long as a stored one, an ended one briefly. */
  private async seal(data: LogoutRequestData): Promise<string> {
    const { pending: _pending, ...carried } = data;
    const lifetime = data.ended ? Math.min(this.lifetime, SEALED_ENDED_LIFETIME) : this.lifetime;
    return this.protector.sealJwt("logout-request", { logout: carried }, this.now() + lifetime);
  }

  private async unseal(id: string): Promise<LogoutRequestData | undefined> {
    const payload = await this.protector.openJwt("logout-request", id, this.now());
    const data = payload?.logout as LogoutRequestData | undefined;
    if (!data || typeof data !== "object" || typeof data.ended !== "boolean" || !Array.isArray(data.clients)) return undefined;
    return data;
  }

  private async save(id: string, data: LogoutRequestData): Promise<void> {
    const now = this.now();
    await this.grants.put({
      key: sha256Base64url(id),
      kind: "logout",
      clientId: data.clientId ?? "",
      grantId: data.pending?.grantId,
      subject: data.sub ?? data.pending?.subject,
      sessionId: data.sid ?? data.pending?.sessionId,
      data: JSON.stringify(data),
      createdAt: now,
      expiresAt: now + this.lifetime,
    });
  }
}
