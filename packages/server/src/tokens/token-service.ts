import { leftHalfHash, randomHandle, sha256Base64url } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import { signJwt } from "./signer.ts";

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
  /** A refresh token to return (already stored). */
  refreshToken?: string;
}

/** A token response (RFC 6749 §5.1, OIDC Core §3.1.3.3). */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  id_token?: string;
  refresh_token?: string;
}

/** Stored alongside a code-flow access token, so it can be revoked and its claims found later. */
export interface AccessTokenRecord {
  scopes: string[];
  sessionClaims: Record<string, unknown>;
}

/** The `aud` of an access token: the API resources whose scopes were granted, else the client. */
function audienceFor(deps: ProviderDeps, scopes: string[], clientId: string): string | string[] {
  const audiences = deps.options.apiResources.filter((r) => r.scopes.some((s) => scopes.includes(s))).map((r) => r.name);
  if (audiences.length === 0) return clientId;
  return audiences.length === 1 ? audiences[0]! : audiences;
}

/** Issues the access token (RFC 9068 JWT) and, for `openid` user requests, the ID token. */
export async function issueTokens(deps: ProviderDeps, context: TokenRequestContext): Promise<TokenResponse> {
  const now = nowSeconds(deps);
  const { client, scopes, user } = context;
  const lifetime = client.accessTokenLifetime ?? deps.options.accessTokenLifetime;
  const jti = randomHandle(16);
  const { jwt: accessToken } = await signJwt(
    deps.keys,
    {
      iss: deps.options.issuer,
      aud: audienceFor(deps, scopes, client.clientId),
      sub: user?.sub ?? client.clientId,
      client_id: client.clientId,
      iat: now,
      exp: now + lifetime,
      jti,
      scope: scopes.join(" "),
      ...(user ? { auth_time: user.authTime, amr: user.amr, idp: user.idp, sid: user.sid } : {}),
    },
    "at+jwt",
  );
  const response: TokenResponse = { access_token: accessToken, token_type: "Bearer", expires_in: lifetime, scope: scopes.join(" ") };
  if (context.refreshToken) response.refresh_token = context.refreshToken;
  if (!user) return response;

  const record: AccessTokenRecord = { scopes, sessionClaims: user.sessionClaims };
  await deps.store.grants.put({
    key: sha256Base64url(jti),
    kind: "access_token",
    clientId: client.clientId,
    subject: user.sub,
    sessionId: user.sid,
    grantId: user.grantId,
    data: JSON.stringify(record),
    createdAt: now,
    expiresAt: now + lifetime,
  });

  if (scopes.includes("openid")) {
    const alg = client.idTokenSignedResponseAlg;
    const key = await deps.keys.signingKey(alg);
    const claims = await deps.profile({ subject: user.sub, clientId: client.clientId, scopes, caller: "id_token", sessionClaims: user.sessionClaims });
    const { jwt } = await signJwt(
      deps.keys,
      {
        // Claims first, so the protocol claims below can never be overridden by user data.
        ...(claims ?? {}),
        iss: deps.options.issuer,
        sub: user.sub,
        aud: client.clientId,
        iat: now,
        exp: now + deps.options.idTokenLifetime,
        auth_time: user.authTime,
        amr: user.amr,
        idp: user.idp,
        sid: user.sid,
        at_hash: leftHalfHash(accessToken, key.alg),
        ...(user.nonce !== undefined ? { nonce: user.nonce } : {}),
      },
      "JWT",
      key.alg,
    );
    response.id_token = jwt;
  }
  return response;
}
