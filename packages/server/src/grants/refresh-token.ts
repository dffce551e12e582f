import { ProtocolError, parseScope, sha256Base64url } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import type { GrantContext } from "./index.ts";
import { createRefreshToken, type RefreshTokenData } from "../tokens/refresh-tokens.ts";
import { revokeReplayedFamily, useOnce, withinGrace } from "./one-time-use.ts";
import { issueTokens, type TokenResponse, type UserTokenContext } from "../tokens/token-service.ts";
import { grantTarget } from "../validation/resource-indicators.ts";

/** A refresh that passed RFC 6749 §6 and the rotation rules. */
export interface ValidatedRefresh {
  client: Client;
  /** The presented refresh token and its store key. */
  token: string;
  key: string;
  /** Already rotated, but used again within the client's reuse grace period. */
  reused: boolean;
  dpopJkt?: string;
  certificateThumbprint?: string;
  user: UserTokenContext;
  data: RefreshTokenData;
  scopes: string[];
  /** RFC 8707 §2.2: the audience of the new access token, when resources were indicated. */
  audience?: string[];
}

/** RFC 6749 §6: same client, unexpired, unused (rotation), scope no wider than the original; RFC 8707 §2.2 `resource` within the original. */
export async function validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<ValidatedRefresh> {
  const token = form.get("refresh_token");
  if (!token) throw new ProtocolError("invalid_request", "refresh_token is missing");
  const key = sha256Base64url(token);
  // Another client's token is simply invalid: only its own client can trigger reuse detection.
  const grant = await deps.store.grants.get(key);
  if (!grant || grant.kind !== "refresh_token" || grant.clientId !== client.clientId) {
    throw new ProtocolError("invalid_grant", "the refresh token is invalid");
  }
  const data = JSON.parse(grant.data) as RefreshTokenData;
  // A key- or certificate-bound refresh token (public client) is only refreshed with that key or
  // certificate. Checked before reuse detection: only a caller who proves the key or certificate can
  // replay the token, so a stolen copy alone cannot revoke its owner's token family.
  if (data.dpopJkt !== undefined && context.dpopJkt !== data.dpopJkt) throw new ProtocolError("invalid_grant", "the refresh token is bound to another DPoP key");
  if (data.certificateThumbprint !== undefined && context.certificateThumbprint !== data.certificateThumbprint) throw new ProtocolError("invalid_grant", "the refresh token is bound to another client certificate");
  const now = nowSeconds(deps);
  const reused = grant.consumedAt !== undefined;
  if (reused && !withinGrace(grant.consumedAt, now, client.refreshTokenReuseGracePeriod)) await revokeReplayedFamily(deps, grant);
  if (grant.expiresAt < now) throw new ProtocolError("invalid_grant", "the refresh token has expired");
  if (client.coordinateLifetimeWithUserSession && deps.options.serverSideSessions.enabled) {
    // The token lives as long as the user's session, and using it keeps that session alive.
    if (!(await deps.sessions.extend(data.sid))) throw new ProtocolError("invalid_grant", "the user session has ended");
  }

  let scopes = data.scopes;
  const requested = form.get("scope");
  if (requested !== undefined) {
    const parsed = parseScope(requested);
    if (!parsed || parsed.length === 0) throw new ProtocolError("invalid_scope", "scope is malformed");
    const wider = parsed.find((s) => !data.scopes.includes(s));
    if (wider) throw new ProtocolError("invalid_scope", `scope ${wider} was not granted`);
    scopes = parsed;
  }
  const target = grantTarget(form.getAll("resource"), data, scopes, deps.options, requested !== undefined);
  const user: UserTokenContext = {
    sub: grant.subject!,
    sid: data.sid,
    authTime: data.authTime,
    amr: data.amr,
    idp: data.idp,
    sessionClaims: data.sessionClaims,
    grantId: grant.grantId!,
  };
  return { client, token, key, reused, user, data, scopes: target.scopes, audience: target.audience, dpopJkt: context.dpopJkt, certificateThumbprint: context.certificateThumbprint };
}

/** Rotates (unless the client's policy keeps refresh tokens): a new refresh token in the same family, and new access (and ID) tokens. */
export async function issue(validated: ValidatedRefresh, deps: ProviderDeps): Promise<TokenResponse> {
  const { client, user, data, scopes, audience, dpopJkt, certificateThumbprint } = validated;
  if (!client.rotateRefreshTokens) {
    // FAPI 2.0 SP §5.3.2.1-9: no rotation. The same token is answered again and stays valid until its
    // stored expiry; it is never rewritten (a rewrite racing a revocation would revive the token).
    return issueTokens(deps, { client, scopes, audience, user, dpopJkt, certificateThumbprint, refreshToken: async () => validated.token });
  }
  const grace = client.refreshTokenReuseGracePeriod;
  const tokens = () =>
    issueTokens(deps, { client, scopes, audience, user, dpopJkt, certificateThumbprint, refreshToken: () => createRefreshToken(deps, client, user, data.scopes, data.absoluteExpiresAt, { dpopJkt: data.dpopJkt, certificateThumbprint: data.certificateThumbprint }, validated.token, data.resources) });
  if (validated.reused) {
    deps.logger.info({ clientId: client.clientId, grantId: user.grantId }, "rotated refresh token used again within the reuse grace period");
    return tokens();
  }
  return useOnce(deps, validated.key, { clientId: client.clientId, grantId: user.grantId, kind: "refresh_token" }, tokens, grace);
}
