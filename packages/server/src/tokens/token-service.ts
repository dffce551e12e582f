import { ProtocolError, leftHalfHash, randomHandle, sha256Base64url } from "@tessera/protocol";
import { PROTOCOL_CLAIMS } from "./claims.ts";
import { userClaims } from "./profile.ts";
import type { JWTPayload } from "jose";
import type { Client } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import { signJwt } from "./signer.ts";
import { acrOf } from "../session/authentication-context.ts";

/** The user an authorization was made for. */
export interface UserTokenContext {
  sub: string;
  sid: string;
  authTime: number;
  amr: string[];
  idp: string;
  nonce?: string;
  sessionClaims: Record<string, unknown>;
  /** Family id, shared by the code and every token issued from it. */
  grantId: string;
}

/** What tokens are issued for: a user (authorization) or the client itself. */
export interface TokenRequestContext {
  client: Client;
  scopes: string[];
  /** Present for user tokens. */
  user?: UserTokenContext;
  /** A subject without a session (extension grants, token exchange of a client's token); ignored with `user`. */
  subject?: string;
  /** Extra access-token claims from the grant; protocol claims (tokens/claims.ts) are dropped from them. */
  claims?: Record<string, unknown>;
  /** RFC 8693 §4.1: the delegation chain; set only by the built-in token exchange. Such a token always keeps a record. */
  act?: ActClaim;
  /** RFC 8693 §4.4: who may act for the subject; set only explicitly, never through `claims`. */
  mayAct?: MayActClaim;
  /** Seconds, at most the client's (or provider's) access-token lifetime. */
  lifetime?: number;
  /** Issue an ID token for `openid` user requests (default true). */
  idToken?: boolean;
  /** Creates (stores) the refresh token to return; called only once the request is known to succeed. */
  refreshToken?: () => Promise<string>;
  /** Explicit audiences (RFC 8707 resources); default: from the granted scopes. */
  audience?: string[];
  /** Bind the access token to this DPoP key (RFC 9449 §6: `cnf.jkt`, token type DPoP). */
  dpopJkt?: string;
  /** Bind the access token to this client certificate (RFC 8705 §3: `cnf["x5t#S256"]`). */
  certificateThumbprint?: string;
}

/** RFC 8693 §4.1: the acting party, with the earlier actors nested (the least recent deepest). */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/** RFC 8693 §4.4: the party allowed to act for the subject (`sub`, optionally with its issuer). */
export interface MayActClaim {
  sub: string;
  iss?: string;
}

/** A token response (RFC 6749 §5.1, OIDC Core §3.1.3.3). */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer" | "DPoP";
  expires_in: number;
  scope: string;
  /** RFC 8693 §2.2.1: the type of the token issued by a token exchange. */
  issued_token_type?: string;
  id_token?: string;
  refresh_token?: string;
}

/** Access token claims (RFC 9068 §2.2), as signed into a JWT or kept behind a reference. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  client_id: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
  auth_time?: number;
  /** The authentication context class, derived from `amr` (see session/authentication-context.ts). */
  acr?: string;
  amr?: string[];
  idp?: string;
  sid?: string;
  cnf?: { jkt?: string; "x5t#S256"?: string };
  act?: ActClaim;
  may_act?: MayActClaim;
}

/**
 * The server-side record of an access token: every reference token has one (it *is* the token), and so
 * does every JWT issued for a user, so revoking the grant is seen by userinfo and introspection.
 */
export interface AccessTokenRecord {
  format: "jwt" | "reference";
  claims: AccessTokenClaims;
  sessionClaims: Record<string, unknown>;
}

/** A grant's extra claims without the protocol's (tokens/claims.ts: one list for every path). */
function grantClaims(claims: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims ?? {}).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
}

/** A profile service's claims without the delegation chain, which only the token exchange sets. */
function profileClaims(claims: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims ?? {}).filter(([name]) => name !== "act" && name !== "may_act"));
}

/** The `aud` of an access token: the API resources whose scopes were granted, else the client. */
function audienceFor(deps: ProviderDeps, scopes: string[], clientId: string): string[] {
  const audiences = deps.options.apiResources.filter((r) => r.scopes.some((s) => scopes.includes(s))).map((r) => r.name);
  return audiences.length ? audiences : [clientId];
}

/** Issues the access token (RFC 9068 JWT or reference) and, for `openid` user requests, the ID token. */
export async function issueTokens(deps: ProviderDeps, context: TokenRequestContext): Promise<TokenResponse> {
  const now = nowSeconds(deps);
  const { client, scopes, user } = context;
  const lifetime = Math.min(context.lifetime ?? Infinity, client.accessTokenLifetime ?? deps.options.accessTokenLifetime);
  const audience = context.audience ?? audienceFor(deps, scopes, client.clientId);
  let extra: Record<string, unknown> | undefined;
  if (user) {
    extra = await userClaims(deps, "access_token", { subject: user.sub, clientId: client.clientId, scopes, sessionClaims: user.sessionClaims });
    // The profile service says the user is no longer active: no tokens (before anything is stored).
    if (!extra) throw new ProtocolError("invalid_grant", "the user is no longer active");
  }
  const subject = user?.sub ?? context.subject;
  const claims: AccessTokenClaims = {
    ...profileClaims(extra),
    ...grantClaims(context.claims),
    iss: deps.options.issuer,
    aud: audience.length === 1 ? audience[0]! : audience,
    sub: subject ?? client.clientId,
    client_id: client.clientId,
    iat: now,
    exp: now + lifetime,
    jti: randomHandle(16),
    scope: scopes.join(" "),
    ...(context.act ? { act: structuredClone(context.act) } : {}),
    ...(context.mayAct ? { may_act: { ...context.mayAct } } : {}),
    ...(user ? { auth_time: user.authTime, ...acrClaim(user.amr), amr: user.amr, idp: user.idp, sid: user.sid } : {}),
    ...(context.dpopJkt || context.certificateThumbprint
      ? { cnf: { ...(context.dpopJkt ? { jkt: context.dpopJkt } : {}), ...(context.certificateThumbprint ? { "x5t#S256": context.certificateThumbprint } : {}) } }
      : {}),
  };

  let accessToken: string;
  let recordKey: string | undefined;
  if (client.accessTokenFormat === "reference") {
    accessToken = randomHandle(32);
    recordKey = sha256Base64url(accessToken);
  } else {
    accessToken = (await signJwt(deps.keys, claims, "at+jwt", client.accessTokenSigningAlg)).jwt;
    // Every JWT for someone other than the client, and every delegated one, has a record, so revoking it is seen.
    if (subject !== undefined || claims.act !== undefined) recordKey = sha256Base64url(claims.jti);
  }
  if (recordKey) {
    const record: AccessTokenRecord = { format: client.accessTokenFormat, claims, sessionClaims: user?.sessionClaims ?? {} };
    await deps.store.grants.put({
      key: recordKey,
      kind: "access_token",
      clientId: client.clientId,
      subject,
      sessionId: user?.sid,
      grantId: user?.grantId,
      data: JSON.stringify(record),
      createdAt: now,
      expiresAt: claims.exp,
    });
  }

  const response: TokenResponse = { access_token: accessToken, token_type: context.dpopJkt ? "DPoP" : "Bearer", expires_in: lifetime, scope: claims.scope };
  if (context.refreshToken) response.refresh_token = await context.refreshToken();
  if (user && scopes.includes("openid") && context.idToken !== false) response.id_token = await issueIdToken(deps, client, user, scopes, accessToken, now);
  return response;
}

async function issueIdToken(deps: ProviderDeps, client: Client, user: UserTokenContext, scopes: string[], accessToken: string, now: number): Promise<string> {
  const key = await deps.keys.signingKey(client.idTokenSignedResponseAlg);
  const claims = await userClaims(deps, "id_token", { subject: user.sub, clientId: client.clientId, scopes, sessionClaims: user.sessionClaims });
  const { jwt } = await signJwt(
    deps.keys,
    {
      // Profile claims first, so the protocol claims below can never be overridden by user data.
      ...(claims ?? {}),
      iss: deps.options.issuer,
      sub: user.sub,
      aud: client.clientId,
      iat: now,
      exp: now + deps.options.idTokenLifetime,
      auth_time: user.authTime,
      ...acrClaim(user.amr),
      amr: user.amr,
      idp: user.idp,
      sid: user.sid,
      at_hash: leftHalfHash(accessToken, key.alg),
      ...(user.nonce !== undefined ? { nonce: user.nonce } : {}),
    },
    "JWT",
    key.alg,
  );
  return jwt;
}

/** `acr` as a claim, when the authentication has one (OIDC Core §2: optional). */
function acrClaim(amr: readonly string[]): { acr?: string } {
  const acr = acrOf(amr);
  return acr ? { acr } : {};
}
