import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import { authenticateIntrospectionCaller, type IntrospectionCaller } from "../client-auth/api-resource.ts";
import { nowSeconds, sessionAllows, type ProviderDeps } from "../deps.ts";
import { readForm } from "../http/params.ts";
import { noStoreJson } from "../http/responses.ts";
import { resolveAccessToken } from "../tokens/access-token-resolver.ts";
import type { RefreshTokenData } from "../tokens/refresh-tokens.ts";

const INACTIVE = { active: false } as const;

async function introspectAccessToken(token: string, caller: IntrospectionCaller, deps: ProviderDeps): Promise<Record<string, unknown> | undefined> {
  const resolved = await resolveAccessToken(token, deps);
  if (!resolved) return undefined;
  const { claims } = resolved;
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  // An API sees tokens meant for it; a client sees its own tokens (RFC 7662 §4).
  const visible = caller.kind === "resource" ? audiences.includes(caller.resource.name) : claims.client_id === caller.client.clientId;
  if (!visible) return undefined;
  return {
    active: true,
    token_type: claims.cnf?.jkt ? "DPoP" : "Bearer",
    ...(claims.cnf ? { cnf: claims.cnf } : {}),
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    client_id: claims.client_id,
    scope: claims.scope,
    iat: claims.iat,
    exp: claims.exp,
    jti: claims.jti,
    ...(claims.auth_time !== undefined ? { auth_time: claims.auth_time, ...(claims.acr !== undefined ? { acr: claims.acr } : {}), amr: claims.amr, idp: claims.idp, sid: claims.sid } : {}),
    // RFC 8693 §4.1: the delegation chain of an exchanged token.
    ...(claims.act !== undefined ? { act: claims.act } : {}),
  };
}

async function introspectRefreshToken(token: string, caller: IntrospectionCaller, deps: ProviderDeps): Promise<Record<string, unknown> | undefined> {
  if (caller.kind !== "client" || token.length > 512) return undefined;
  const grant = await deps.store.grants.get(sha256Base64url(token));
  if (!grant || grant.kind !== "refresh_token" || grant.clientId !== caller.client.clientId) return undefined;
  if (grant.consumedAt !== undefined || grant.expiresAt <= nowSeconds(deps)) return undefined;
  const data = JSON.parse(grant.data) as RefreshTokenData;
  if (!(await sessionAllows(deps, caller.client, data.sid))) return undefined;
  return {
    active: true,
    token_type: "refresh_token",
    iss: deps.options.issuer,
    sub: grant.subject,
    client_id: grant.clientId,
    scope: data.scopes.join(" "),
    iat: grant.createdAt,
    exp: grant.expiresAt,
    sid: data.sid,
  };
}

/** POST {issuer}/connect/introspect (RFC 7662). */
export function introspectionEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const form = await readForm(request, deps.options);
    const caller = await authenticateIntrospectionCaller(request, form, deps);
    const token = form.get("token");
    if (!token) throw new ProtocolError("invalid_request", "token is missing");
    // The hint only orders the lookups (RFC 7662 §2.1).
    const lookups = form.get("token_type_hint") === "refresh_token" ? [introspectRefreshToken, introspectAccessToken] : [introspectAccessToken, introspectRefreshToken];
    for (const lookup of lookups) {
      const result = await lookup(token, caller, deps);
      if (result) return noStoreJson(result);
    }
    return noStoreJson(INACTIVE);
  };
}
