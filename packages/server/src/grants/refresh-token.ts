import { ProtocolError, parseScope, sha256Base64url } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import type { GrantContext } from "./index.ts";
import { createRefreshToken, type RefreshTokenData } from "../tokens/refresh-tokens.ts";
import { issueTokens, type TokenResponse, type UserTokenContext } from "../tokens/token-service.ts";

/** A refresh that passed RFC 6749 §6 and the rotation rules. */
export interface ValidatedRefresh {
  client: Client;
  dpopJkt?: string;
  certificateThumbprint?: string;
  user: UserTokenContext;
  data: RefreshTokenData;
  scopes: string[];
}

/** RFC 6749 §6: same client, unexpired, unused (rotation), scope no wider than the original. */
export async function validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<ValidatedRefresh> {
  const token = form.get("refresh_token");
  if (!token) throw new ProtocolError("invalid_request", "refresh_token is missing");
  const key = sha256Base64url(token);
  // The client binding is checked before the token is consumed, so another client cannot burn it.
  const stored = await deps.store.grants.get(key);
  if (!stored || stored.kind !== "refresh_token" || stored.clientId !== client.clientId) {
    throw new ProtocolError("invalid_grant", "the refresh token is invalid");
  }
  const storedData = JSON.parse(stored.data) as RefreshTokenData;
  // A key-bound refresh token (public client) is only refreshed with a proof by that key; checked before use.
  if (storedData.dpopJkt !== undefined && context.dpopJkt !== storedData.dpopJkt) throw new ProtocolError("invalid_grant", "the refresh token is bound to another DPoP key");
  if (client.coordinateLifetimeWithUserSession && deps.options.serverSideSessions.enabled) {
    // The token lives as long as the user's session, and using it keeps that session alive.
    if (!(await deps.sessions.extend(storedData.sid))) throw new ProtocolError("invalid_grant", "the user session has ended");
  }
  const now = nowSeconds(deps);
  const consumed = await deps.store.grants.consume(key, now);
  if (!consumed) throw new ProtocolError("invalid_grant", "the refresh token is invalid");
  const { grant } = consumed;
  if (!consumed.firstUse) {
    // A rotated-out token came back: it was stolen or leaked, so the whole family goes (OAuth 2.1 §4.3.1).
    const revoked = await deps.store.grants.removeAll({ grantId: grant.grantId! });
    deps.logger.warn({ clientId: client.clientId, grantId: grant.grantId, revoked }, "refresh token reused; token family revoked");
    throw new ProtocolError("invalid_grant", "the refresh token was already used");
  }
  if (grant.expiresAt < now) throw new ProtocolError("invalid_grant", "the refresh token has expired");
  const data = JSON.parse(grant.data) as RefreshTokenData;

  let scopes = data.scopes;
  const requested = form.get("scope");
  if (requested !== undefined) {
    const parsed = parseScope(requested);
    if (!parsed || parsed.length === 0) throw new ProtocolError("invalid_scope", "scope is malformed");
    const wider = parsed.find((s) => !data.scopes.includes(s));
    if (wider) throw new ProtocolError("invalid_scope", `scope ${wider} was not granted`);
    scopes = parsed;
  }
  const user: UserTokenContext = {
    sub: grant.subject!,
    sid: data.sid,
    authTime: data.authTime,
    amr: data.amr,
    idp: data.idp,
    sessionClaims: data.sessionClaims,
    grantId: grant.grantId!,
  };
  return { client, user, data, scopes, dpopJkt: context.dpopJkt, certificateThumbprint: context.certificateThumbprint };
}

/** Rotates: a new refresh token in the same family, and new access (and ID) tokens. */
export async function issue(validated: ValidatedRefresh, deps: ProviderDeps): Promise<TokenResponse> {
  const { client, user, data, scopes, dpopJkt, certificateThumbprint } = validated;
  return issueTokens(deps, { client, scopes, user, dpopJkt, certificateThumbprint, refreshToken: () => createRefreshToken(deps, client, user, data.scopes, data.absoluteExpiresAt, data.dpopJkt) });
}
