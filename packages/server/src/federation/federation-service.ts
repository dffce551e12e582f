import { randomBytes, timingSafeEqual } from "node:crypto";
import * as oauth from "oauth4webapi";
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload, type JWTHeaderParameters } from "jose";
import { ProtocolError, randomHandle, sha256Base64url } from "@tessera/protocol";
import type { TesseraEvent } from "../events.ts";
import type { DataProtector } from "../keys/data-protection.ts";
import { issuerCookieName, parseCookies, serializeCookie } from "../http/cookies.ts";
import type { ResolvedOptions } from "../options.ts";
import type { PendingRequestCap } from "../security/pending-requests.ts";
import type { SessionService } from "../session/session.ts";
import type { SessionManagementService } from "../session/session-management.ts";
import { AccountConflictError, ACCOUNT_LIMITS, type AccountStore, type StoredAccount } from "../stores/accounts.ts";
import type { GrantStore } from "../stores/interfaces.ts";
import type { UserStore } from "../tokens/claims.ts";
import type { ExternalProvider, ExternalProviderRegistry } from "./external-providers.ts";

/** Paths under the issuer, per provider id (contract §15). */
export const FEDERATION_PATHS = {
  callback: "/federation/:id/callback",
  signedOut: "/federation/:id/signed-out",
  backchannel: "/federation/:id/backchannel",
} as const;

/**
 * What waits server-side for the upstream's answer, keyed by a hash of `state`, stored encrypted with the
 * data key (the PKCE verifier and nonce are secrets). `browser` binds it to the browser that started it
 * (RFC 9700 §4.7): the hash of the correlation cookie set at the start.
 */
interface PendingFederation {
  browser: string;
  provider: string;
  /** The pending authorization request to resume (a sign-in). */
  interaction?: string;
  /** Or an account-page action of a signed-in user. */
  link?: LinkTarget;
  verifier: string;
  nonce: string;
}

/** What a local session knows of its upstream one: for federated sign-out and upstream back-channel logout. */
interface FederatedSessionData {
  provider: string;
  upstreamSub: string;
  upstreamSid?: string;
  idToken?: string;
}

/**
 * An account-page trip to a provider: `link` adds the upstream identity to the signed-in account, `reauth`
 * signs the account's user in again through a provider already linked (re-authentication before a change).
 */
export interface LinkTarget {
  sub: string;
  purpose: "link" | "reauth";
  /** A page of the host to return to (a path below the issuer). */
  returnTo: string;
  /** The session that started it: the callback requires the same session (no link CSRF). */
  sid?: string;
}

/** The signed-in session at the callback, if any. */
export interface CurrentSession {
  sub: string;
  sid: string;
}

/** The correlation cookie's base name; `.fp` for form_post providers (SameSite=None on https). */
const CORRELATION_COOKIE = "tessera.federation";
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** Authentication method references of RFC 8176 §2 (the IANA registry's initial values). */
const RFC8176_AMR = new Set(["face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd", "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"]);

/**
 * The exact address for linking: the local part as given, only ASCII letters of the domain lowercased (no
 * Unicode folding: `ＣＡＲＯＬ@example.com` is not `carol@example.com`).
 */
export function linkingEmailKey(email: string): string {
  const at = email.lastIndexOf("@");
  return at < 0 ? email : email.slice(0, at + 1) + email.slice(at + 1).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * The session's `amr` of an upstream sign-in: `["external"]`, or with `trustAmr` the upstream's registered
 * RFC 8176 values (others dropped; none left: `["external"]`). Without trustAmr an upstream `mfa` or `hwk`
 * never satisfies a local acr.
 */
export function upstreamAmr(trustAmr: boolean, amr: unknown): string[] {
  if (!trustAmr || !Array.isArray(amr)) return ["external"];
  const registered = [...new Set(amr.filter((v): v is string => typeof v === "string" && RFC8176_AMR.has(v)))];
  return registered.length ? registered : ["external"];
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Seconds since the last authentication within which account-page changes need no re-authentication. */
export const RECENT_AUTHENTICATION = 300;

/** Why a callback ended on the error page; `returnUrl` leads back to the login page. */
export class FederationError extends Error {
  constructor(
    readonly code: string,
    readonly description: string,
    readonly returnUrl?: string,
  ) {
    super(description);
    this.name = "FederationError";
  }
}

const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
/** Seconds a pending federation waits for the upstream (at most the interaction lifetime). */
const PENDING_LIFETIME = 900;
/** Seconds a logout token's iat may lie in the future or past. */
const LOGOUT_TOKEN_SKEW = 300;
const SESSION_PAGE = 500;

/**
 * Sign-in through external identity providers (contract §15): the redirect to the upstream with PKCE, state
 * and nonce, the callback's checks (state once, RFC 9207 iss, the ID token's signature, issuer, audience and
 * nonce), account linking by (iss, sub), the session with `idp`, federated sign-out, and the upstream's
 * back-channel logout.
 */
export class FederationService {
  /** Remote key sets by provider id, jwks_uri and issuer: a changed entry never uses the old one's keys. */
  private readonly jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(
    readonly registry: ExternalProviderRegistry,
    private readonly deps: {
      options: ResolvedOptions;
      grants: GrantStore;
      /** Required when providers are configured (the provider checks at start). */
      accounts: AccountStore | undefined;
      /** The host's users (config users): verified-email linking refuses an address one of them has. */
      users?: UserStore;
      sessions: SessionService;
      sessionManagement: SessionManagementService;
      protector: DataProtector;
      cap: PendingRequestCap;
      fetch: (url: string, init?: RequestInit) => Promise<Response>;
      emit: (event: TesseraEvent) => void;
      clock: () => number;
    },
  ) {}

  private get accounts(): AccountStore {
    if (!this.deps.accounts) throw new ProtocolError("server_error", "external providers need a store with accounts");
    return this.deps.accounts;
  }

  private now(): number {
    return Math.floor(this.deps.clock() / 1000);
  }

  private url(path: string, provider: ExternalProvider): string {
    return this.deps.options.issuer + path.replace(":id", provider.id);
  }

  /** The provider an `acr_values` of `idp:{id}` names (the first known one), if any. */
  async requestedProvider(acrValues: string | undefined): Promise<ExternalProvider | undefined> {
    for (const value of (acrValues ?? "").split(" ").slice(0, 10)) {
      if (value.startsWith("idp:")) {
        const provider = await this.registry.get(value.slice(4));
        if (provider) return provider;
      }
    }
    return undefined;
  }

  private correlationCookieName(formPost: boolean): string {
    return issuerCookieName(formPost ? `${CORRELATION_COOKIE}.fp` : CORRELATION_COOKIE, this.deps.options.secureCookies, this.deps.options.basePath);
  }

  /**
   * The URL of the upstream's authorization endpoint for a pending authorization request (`interaction`: its
   * id) or an account-page trip, and the correlation cookie to set with the redirect: HttpOnly, random (kept
   * when the browser has one, so parallel tabs work), `__Host-` and Secure on https; SameSite=None for a
   * form_post provider on https (a cross-site POST comes back), else Lax.
   */
  async start(provider: ExternalProvider, target: string | LinkTarget, request: Request, address?: string): Promise<{ url: string; cookie: string }> {
    const as = await this.registry.serverMetadata(provider);
    const state = oauth.generateRandomState();
    const secure = this.deps.options.secureCookies;
    const crossSite = secure && provider.options.response_mode === "form_post";
    const cookieName = this.correlationCookieName(crossSite);
    const existing = parseCookies(request.headers.get("cookie")).get(cookieName);
    const browser = existing && COOKIE_VALUE.test(existing) ? existing : randomBytes(32).toString("base64url");
    const cookie = serializeCookie(cookieName, browser, { path: secure ? "/" : `${this.deps.options.basePath}/federation`, httpOnly: true, secure, sameSite: crossSite ? "None" : "Lax", maxAge: PENDING_LIFETIME });
    const pending: PendingFederation = { browser: sha256Base64url(`federation-browser:${browser}`), provider: provider.id, ...(typeof target === "string" ? { interaction: target } : { link: target }), verifier: oauth.generateRandomCodeVerifier(), nonce: oauth.generateRandomNonce() };
    const tags = await this.deps.cap.admit("federation", address);
    const now = this.now();
    await this.deps.grants.put({
      key: sha256Base64url(`federation:${state}`),
      kind: "federation",
      clientId: provider.id,
      grantId: tags.grantId,
      subject: tags.subject,
      sessionId: tags.sessionId,
      data: await this.deps.protector.protect("federation-pending", JSON.stringify(pending)),
      createdAt: now,
      expiresAt: now + Math.min(PENDING_LIFETIME, this.deps.options.interactionLifetime),
    });
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set("client_id", provider.options.client_id);
    url.searchParams.set("redirect_uri", this.url(FEDERATION_PATHS.callback, provider));
    url.searchParams.set("response_type", "code");
    if (provider.scope) url.searchParams.set("scope", provider.scope);
    url.searchParams.set("state", state);
    if (provider.kind === "oidc") url.searchParams.set("nonce", pending.nonce);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(pending.verifier));
    url.searchParams.set("code_challenge_method", "S256");
    if (provider.options.response_mode === "form_post") url.searchParams.set("response_mode", "form_post");
    return { url: url.toString(), cookie };
  }

  /**
   * The upstream's answer at the callback: returns who signed in and where to resume, or throws
   * {@link FederationError}. The pending request is used once, so a replayed callback is refused; it must come
   * from the browser that started it (its correlation cookie), and an account-page trip from the same session.
   */
  async callback(provider: ExternalProvider, params: URLSearchParams, loginPage: (interaction: string) => string, request: Request, current: CurrentSession | undefined): Promise<{ account: StoredAccount; interaction?: string; link?: LinkTarget; amr: string[]; federated: FederatedSessionData }> {
    const state = params.get("state");
    if (!state || state.length > 512) throw new FederationError("invalid_request", "The sign-in response has no valid state.");
    const consumed = await this.deps.grants.consume(sha256Base64url(`federation:${state}`), this.now());
    const grant = consumed?.grant;
    if (!consumed?.firstUse || !grant || grant.kind !== "federation" || grant.clientId !== provider.id || grant.expiresAt < this.now()) {
      throw new FederationError("invalid_request", "This sign-in response is unknown, expired or was already used.");
    }
    const json = await this.deps.protector.unprotect("federation-pending", grant.data);
    if (!json) throw new FederationError("invalid_request", "This sign-in response is unknown, expired or was already used.");
    const pending = JSON.parse(json) as PendingFederation;
    const back = pending.link ? new URL(this.deps.options.issuer).origin + pending.link.returnTo : loginPage(pending.interaction ?? "");
    const cookies = parseCookies(request.headers.get("cookie"));
    const presented = [this.correlationCookieName(false), this.correlationCookieName(true)].map((name) => cookies.get(name)).filter((v): v is string => v !== undefined && COOKIE_VALUE.test(v));
    if (!presented.some((v) => sameHash(sha256Base64url(`federation-browser:${v}`), pending.browser))) {
      throw new FederationError("correlation_failed", `This sign-in was not started in this browser (or its cookie was blocked or has expired), so it cannot be completed here. Start the sign-in again.`, back);
    }
    if (pending.link && (!current || current.sub !== pending.link.sub || (pending.link.sid !== undefined && current.sid !== pending.link.sid))) {
      throw new FederationError("access_denied", "You are no longer signed in with the session that started this; sign in and try again.", back);
    }
    const error = params.get("error");
    if (error) {
      const text = error === "access_denied" ? `Sign-in at ${provider.displayName} was cancelled or refused.` : `${provider.displayName} answered with an error.`;
      throw new FederationError(error.slice(0, 100), text, back);
    }
    const as = await this.registry.serverMetadata(provider).catch((e: ProtocolError) => {
      throw new FederationError(e.code, e.description ?? "The identity provider cannot be reached.", back);
    });
    const client = this.registry.client(provider);
    const options = this.registry.requestOptions(provider);
    try {
      // RFC 9207 iss (when the upstream says it sends it) and state. A plain OAuth 2.0 provider has no issuer
      // identifier configured to compare an iss with; its own callback URL is the mix-up defence (RFC 9207 §1).
      const response_ = new URLSearchParams(params);
      if (provider.kind === "oauth2") response_.delete("iss");
      const validated = oauth.validateAuthResponse(as, client, response_, state);
      let response = await oauth.authorizationCodeGrantRequest(as, client, this.registry.clientAuth(provider), validated, this.url(FEDERATION_PATHS.callback, provider), pending.verifier, options);
      // A plain OAuth 2.0 provider is known by no issuer: an ID token it may add is not used (nor checkable).
      if (provider.kind === "oauth2") response = await withoutIdToken(response);
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, provider.kind === "oidc" ? { expectedNonce: pending.nonce, requireIdToken: true } : undefined);
      let claims: Record<string, unknown> = {};
      let upstreamSub: string;
      let upstreamSid: string | undefined;
      let amr = ["external"];
      if (provider.kind === "oidc") {
        const idClaims = oauth.getValidatedIdTokenClaims(tokens)!;
        // oauth4webapi trusts the token endpoint's TLS; the signature is checked too, against the upstream's JWKS.
        await this.verifyUpstreamJwt(provider, as, tokens.id_token!, { audience: provider.options.client_id });
        upstreamSub = idClaims.sub;
        upstreamSid = typeof idClaims.sid === "string" ? idClaims.sid : undefined;
        claims = { ...idClaims };
        amr = upstreamAmr(provider.trustAmr, idClaims.amr);
        if (as.userinfo_endpoint) {
          const info = await oauth.processUserInfoResponse(as, client, upstreamSub, await oauth.userInfoRequest(as, client, tokens.access_token, options));
          claims = { ...info, ...idClaims };
        }
      } else {
        const info = await oauth.processUserInfoResponse(as, client, oauth.skipSubjectCheck, await oauth.userInfoRequest(as, client, tokens.access_token, options));
        const id = info[provider.claims.sub ?? "sub"];
        if ((typeof id !== "string" && typeof id !== "number") || String(id) === "") throw new Error("the userinfo response names no user id");
        upstreamSub = String(id);
        claims = { ...info };
      }
      const account = pending.link ? await this.linkToAccount(provider, upstreamSub, pending.link, back) : await this.findOrLink(provider, upstreamSub, claims, back);
      return { account, interaction: pending.interaction, link: pending.link, amr, federated: { provider: provider.id, upstreamSub, upstreamSid, idToken: tokens.id_token } };
    } catch (cause) {
      if (cause instanceof FederationError) throw cause;
      throw new FederationError("invalid_response", `The answer of ${provider.displayName} could not be verified.`, back);
    }
  }

  private async verifyUpstreamJwt(provider: ExternalProvider, as: oauth.AuthorizationServer, token: string, check: { audience: string }): Promise<{ payload: JWTPayload; protectedHeader: JWTHeaderParameters }> {
    const cacheKey = JSON.stringify([provider.id, as.jwks_uri, as.issuer]);
    let keys = this.jwks.get(cacheKey);
    if (!keys) {
      // The entry changed (or is new): the key sets of its earlier versions go.
      for (const key of this.jwks.keys()) if ((JSON.parse(key) as string[])[0] === provider.id) this.jwks.delete(key);
      if (this.jwks.size >= 1000) this.jwks.clear();
      keys = createRemoteJWKSet(new URL(as.jwks_uri!), { [customFetch]: (url: string, init: RequestInit) => this.deps.fetch(url, init) });
      this.jwks.set(cacheKey, keys);
    }
    const { payload, protectedHeader } = await jwtVerify(token, keys, { issuer: as.issuer, audience: check.audience, clockTolerance: 60, currentDate: new Date(this.deps.clock()) });
    return { payload, protectedHeader };
  }

  /** Mapped local claims of an upstream user. */
  private mapClaims(provider: ExternalProvider, upstream: Record<string, unknown>): Record<string, unknown> {
    const mapped: Record<string, unknown> = {};
    for (const [local, remote] of Object.entries(provider.claims)) {
      if (local === "sub" || local === "email") continue;
      const value = upstream[remote];
      if (value !== undefined && value !== null) mapped[local] = value;
    }
    return mapped;
  }

  /**
   * The local account of an upstream user: by its (iss, sub) link only; else, with `verified-email` linking,
   * the account with exactly that email (only the domain's ASCII case folded) when the upstream says it is
   * verified and the account's email was verified here or by a `trustEmail` provider; else a new account,
   * whose email counts as verified only from a `trustEmail` provider. Never by email alone otherwise
   * (account takeover through auto-linking, Keycloak #53041).
   */
  private async findOrLink(provider: ExternalProvider, upstreamSub: string, upstream: Record<string, unknown>, back: string): Promise<StoredAccount> {
    const accounts = this.accounts;
    const now = this.now();
    const emailClaim = provider.claims.email ?? "email";
    const email = typeof upstream[emailClaim] === "string" && (upstream[emailClaim] as string).length <= ACCOUNT_LIMITS.email ? (upstream[emailClaim] as string) : undefined;
    const upstreamVerified = upstream.email_verified === true;
    // Keycloak's "Trust Email": only such a provider's word makes a stored email verified.
    const emailVerified = upstreamVerified && provider.trustEmail;
    const mapped = this.mapClaims(provider, upstream);
    const linked = await accounts.findByExternalLink(provider.linkIssuer, upstreamSub);
    if (linked) {
      if (linked.disabled) throw new FederationError("access_denied", "This account is disabled.", back);
      if (provider.syncMode !== "force") return linked;
      return (await accounts.update(linked.sub, { claims: { ...linked.claims, ...mapped }, updatedAt: now })) ?? linked;
    }
    if (provider.linking === "verified-email" && email !== undefined) {
      const refuse = (why: string) => new FederationError("access_denied", `${why} It cannot be linked to your ${provider.displayName} sign-in automatically; sign in with your password and link it on the account page.`, back);
      // Emails are unique in the store (by their NFKC, lower-case form): at most one account matches.
      const match = await accounts.findByEmail(email);
      // A user store that knows config users (the UserDirectory answers them first) names one here; the
      // stored match itself is not one.
      const known = await this.deps.users?.findByEmail?.(email);
      const configUser = known !== undefined && known.sub !== match?.sub ? known : undefined;
      if (match || configUser) {
        if (!upstreamVerified) throw new FederationError("access_denied", `${provider.displayName} does not report this email address as verified, so it cannot be linked to an existing account.`, back);
        if (configUser) throw refuse("An account of this server's configuration uses this email address.");
        if (match!.disabled) throw new FederationError("access_denied", "This account is disabled.", back);
        if (match!.email === undefined || linkingEmailKey(match!.email) !== linkingEmailKey(email)) throw refuse("An account uses a similar but not identical email address.");
        if (!match!.emailVerified) throw refuse("The email address of the existing account has not been verified.");
        await this.link(provider, upstreamSub, match!.sub, now);
        return match!;
      }
    }
    const base = `${provider.id}.${upstreamSub}`.slice(0, ACCOUNT_LIMITS.username);
    const account: StoredAccount = {
      sub: randomBytes(16).toString("base64url"),
      username: base,
      email: emailVerified ? email : undefined,
      emailVerified: emailVerified && email !== undefined,
      // An email nobody verified stays a claim, with email_verified: false said explicitly to clients.
      claims: { ...mapped, ...(email !== undefined && !emailVerified ? { email, email_verified: false } : {}) },
      disabled: false,
      createdAt: now,
      updatedAt: now,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await accounts.create(account);
        break;
      } catch (error) {
        if (!(error instanceof AccountConflictError) || attempt > 3) throw error;
        // The email belongs to another account (subject linking never takes it over): keep it as a claim.
        if (error.field === "email") [account.email, account.emailVerified, account.claims] = [undefined, false, { ...account.claims, email, email_verified: false }];
        else account.username = `${base.slice(0, ACCOUNT_LIMITS.username - 12)}.${randomHandle(8)}`;
        if (error.field === "sub") account.sub = randomBytes(16).toString("base64url");
      }
    }
    try {
      await this.link(provider, upstreamSub, account.sub, now);
    } catch (error) {
      // Two first sign-ins raced: the other one's account wins, this one's goes.
      await accounts.remove(account.sub);
      const winner = error instanceof AccountConflictError ? await accounts.findByExternalLink(provider.linkIssuer, upstreamSub) : undefined;
      if (!winner) throw error;
      return winner;
    }
    this.deps.emit({ type: "account.created", sub: account.sub, by: "system" });
    return account;
  }

  /** The account-page trips: link the upstream identity to the signed-in account, or re-authenticate through it. */
  private async linkToAccount(provider: ExternalProvider, upstreamSub: string, target: LinkTarget, back: string): Promise<StoredAccount> {
    const account = await this.accounts.findBySubject(target.sub);
    if (!account || account.disabled) throw new FederationError("access_denied", "This account is not available.", back);
    const linked = await this.accounts.findByExternalLink(provider.linkIssuer, upstreamSub);
    if (target.purpose === "reauth") {
      if (linked?.sub !== target.sub) throw new FederationError("access_denied", `This ${provider.displayName} account is not linked to your account.`, back);
      return account;
    }
    if (linked && linked.sub !== target.sub) throw new FederationError("access_denied", `This ${provider.displayName} account is already linked to another account.`, back);
    if (!linked) await this.link(provider, upstreamSub, target.sub, this.now());
    return account;
  }

  /** The account's links with the provider each belongs to (when it still exists). */
  async links(sub: string): Promise<{ provider?: ExternalProvider; issuer: string; externalSubject: string; createdAt: number }[]> {
    const links = await this.accounts.listLinks(sub);
    const providers = await this.registry.list();
    return links.map((l) => ({ provider: providers.find((p) => p.linkIssuer === l.issuer), issuer: l.issuer, externalSubject: l.externalSubject, createdAt: l.createdAt }));
  }

  /**
   * Removes a link of the account; refuses ("last_method") when it is the account's only way to sign in
   * (no password and no other link). Checked again after the removal: when a concurrent unlink took the
   * other way, the link is put back, so two racing requests never leave the account without one.
   */
  async unlink(sub: string, issuer: string, externalSubject: string): Promise<"removed" | "not_found" | "last_method"> {
    const accounts = this.accounts;
    const account = await accounts.findBySubject(sub);
    const links = account ? await accounts.listLinks(sub) : [];
    const link = links.find((l) => l.issuer === issuer && l.externalSubject === externalSubject);
    if (!link) return "not_found";
    if (!account!.passwordHash && links.length === 1) return "last_method";
    if (!(await accounts.removeLink(sub, issuer, externalSubject))) return "not_found";
    const after = await accounts.findBySubject(sub);
    if (after && !after.passwordHash && (await accounts.listLinks(sub)).length === 0) {
      try {
        await accounts.addLink(link);
      } catch (error) {
        if (!(error instanceof AccountConflictError)) throw error;
      }
      return "last_method";
    }
    return "removed";
  }

  private async link(provider: ExternalProvider, upstreamSub: string, sub: string, now: number): Promise<void> {
    await this.accounts.addLink({ issuer: provider.linkIssuer, externalSubject: upstreamSub, subject: sub, createdAt: now });
  }

  /** Remembers the upstream session of a local one (the ID token sealed), for sign-out both ways. */
  async rememberSession(sid: string, sub: string, data: FederatedSessionData): Promise<void> {
    const now = this.now();
    const sealed = await this.deps.protector.protect("federated-session", JSON.stringify(data));
    await this.deps.grants.put({
      key: sha256Base64url(`federated_session:${sid}`),
      kind: "federated_session",
      clientId: data.provider,
      subject: sub,
      sessionId: sid,
      grantId: data.upstreamSid ? `upstream-sid:${sha256Base64url(data.upstreamSid)}` : undefined,
      data: sealed,
      createdAt: now,
      expiresAt: now + this.deps.options.cookieLifetime,
    });
  }

  private async sessionData(sid: string): Promise<FederatedSessionData | undefined> {
    const grant = await this.deps.grants.get(sha256Base64url(`federated_session:${sid}`));
    if (!grant || grant.kind !== "federated_session") return undefined;
    const json = await this.deps.protector.unprotect("federated-session", grant.data);
    return json ? (JSON.parse(json) as FederatedSessionData) : undefined;
  }

  /**
   * Where the browser goes after a local session ended (RP-initiated logout): the upstream's end-session
   * endpoint when the provider has one and `federatedSignOut` is on (coming back to `/federation/{id}/signed-out`,
   * which continues to `signedOutUrl`), else `signedOutUrl` itself.
   */
  async signOutRedirect(sid: string | undefined, signedOutUrl: string): Promise<string> {
    if (!sid) return signedOutUrl;
    const data = await this.sessionData(sid);
    if (!data) return signedOutUrl;
    await this.deps.grants.remove(sha256Base64url(`federated_session:${sid}`));
    const provider = await this.registry.get(data.provider);
    if (!provider?.federatedSignOut) return signedOutUrl;
    const as = await this.registry.serverMetadata(provider).catch(() => undefined);
    if (!as?.end_session_endpoint) return signedOutUrl;
    const url = new URL(as.end_session_endpoint);
    if (data.idToken) url.searchParams.set("id_token_hint", data.idToken);
    url.searchParams.set("client_id", provider.options.client_id);
    url.searchParams.set("post_logout_redirect_uri", this.url(FEDERATION_PATHS.signedOut, provider));
    url.searchParams.set("state", await this.deps.protector.sealJwt("federation-signout", { next: signedOutUrl, provider: provider.id }, this.now() + this.deps.options.interactionLifetime));
    return url.toString();
  }

  /** The upstream came back from its sign-out: where to continue (Tessera's signed-out page), if `state` is ours. */
  async signedOut(provider: ExternalProvider, state: string | null): Promise<string | undefined> {
    if (!state || state.length > 16384) return undefined;
    const payload = await this.deps.protector.openJwt("federation-signout", state, this.now());
    if (!payload || payload.provider !== provider.id || typeof payload.next !== "string") return undefined;
    return payload.next;
  }

  /**
   * A back-channel logout token from the upstream (OIDC Back-Channel Logout 1.0 §2.6): signature against its
   * JWKS, iss, aud = our client_id there, iat, the event, no nonce, sid or sub, jti once. Ends the local
   * sessions it names (server-side sessions) and notifies their clients; returns how many ended.
   */
  async backChannelLogout(provider: ExternalProvider, token: string): Promise<number> {
    if (provider.kind !== "oidc") throw new ProtocolError("invalid_request", "this provider does not send logout tokens");
    const as = await this.registry.serverMetadata(provider);
    let claims: JWTPayload;
    try {
      const verified = await this.verifyUpstreamJwt(provider, as, token, { audience: provider.options.client_id });
      claims = verified.payload;
      // §2.4: typ "logout+jwt" when present (never an ID token's "JWT"); media type names are case-insensitive.
      const typ = verified.protectedHeader.typ?.toLowerCase();
      if (typ !== undefined && typ !== "logout+jwt" && typ !== "application/logout+jwt") throw new Error("typ");
    } catch {
      throw new ProtocolError("invalid_request", "the logout token is not valid");
    }
    const now = this.now();
    if (typeof claims.exp !== "number") throw new ProtocolError("invalid_request", "the logout token has no exp");
    const events = claims.events as Record<string, unknown> | undefined;
    if (typeof claims.iat !== "number" || Math.abs(claims.iat - now) > LOGOUT_TOKEN_SKEW) throw new ProtocolError("invalid_request", "the logout token's iat is missing or out of range");
    if (!events || typeof events !== "object" || typeof events[BACKCHANNEL_EVENT] !== "object" || events[BACKCHANNEL_EVENT] === null) throw new ProtocolError("invalid_request", "the logout token has no back-channel logout event");
    if ("nonce" in claims) throw new ProtocolError("invalid_request", "a logout token must not carry a nonce");
    const sid = typeof claims.sid === "string" ? claims.sid : undefined;
    const sub = typeof claims.sub === "string" ? claims.sub : undefined;
    if (!sid && !sub) throw new ProtocolError("invalid_request", "the logout token names neither sid nor sub");
    if (typeof claims.jti !== "string" || claims.jti.length > 255) throw new ProtocolError("invalid_request", "the logout token has no jti");
    const replayKey = sha256Base64url(`federation-logout:${provider.id}:${claims.jti}`);
    // One conditional insert: of two processes given the same token, only one accepts it.
    const fresh = await this.deps.grants.putIfAbsent({ key: replayKey, kind: "replay", clientId: provider.id, data: "{}", createdAt: now, expiresAt: now + 2 * LOGOUT_TOKEN_SKEW + Math.max(0, claims.exp - now) });
    if (!fresh) throw new ProtocolError("invalid_request", "the logout token was already used");

    const records = sid
      ? await this.deps.grants.findAll({ kind: "federated_session", clientId: provider.id, grantId: `upstream-sid:${sha256Base64url(sid)}` }, SESSION_PAGE)
      : await this.recordsOfUpstreamSubject(provider, sub!);
    let ended = 0;
    for (const record of records) {
      if (!record.sessionId) continue;
      const data = await this.sessionData(record.sessionId);
      // A sid names an upstream session; with a sub too, it must be that user's.
      if (!data || data.provider !== provider.id || (sub !== undefined && data.upstreamSub !== sub)) continue;
      await this.deps.grants.remove(record.key);
      ended += await this.deps.sessionManagement.remove({ sessionId: record.sessionId, sendBackchannelLogout: true, revokeTokens: true });
    }
    return ended;
  }

  private async recordsOfUpstreamSubject(provider: ExternalProvider, sub: string) {
    const account = await this.accounts.findByExternalLink(provider.linkIssuer, sub);
    if (!account) return [];
    return this.deps.grants.findAll({ kind: "federated_session", clientId: provider.id, subject: account.sub }, SESSION_PAGE);
  }
}

/** The token response without `id_token` (same status and headers). */
async function withoutIdToken(response: Response): Promise<Response> {
  if (!response.ok) return response;
  const body = (await response.json()) as Record<string, unknown>;
  delete body.id_token;
  return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
}
