import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import { authenticateClient } from "../client-auth/index.ts";
import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import { readForm } from "../http/params.ts";
import { noStoreJson } from "../http/responses.ts";
import { resolveAccessToken } from "../tokens/access-token-resolver.ts";

/** Revokes a refresh token of the client and every token of its grant (RFC 7009 §2.1). */
async function revokeRefreshToken(token: string, client: Client, deps: ProviderDeps): Promise<boolean> {
  if (token.length > 512) return false;
  const grant = await deps.store.grants.get(sha256Base64url(token));
  if (!grant || grant.kind !== "refresh_token") return false;
  if (grant.clientId === client.clientId) {
    await deps.store.grants.removeAll({ grantId: grant.grantId! });
    deps.emit({ type: "token.revoked", clientId: client.clientId, kind: "refresh_token" });
  }
  return true;
}

async function revokeAccessToken(token: string, client: Client, deps: ProviderDeps): Promise<boolean> {
  const resolved = await resolveAccessToken(token, deps);
  if (!resolved) return false;
  if (resolved.claims.client_id !== client.clientId) return true; // a foreign token: nothing to do, nothing to tell
  if (!resolved.recordKey) {
    // Self-contained client-credentials JWTs have no server state to remove.
    throw new ProtocolError("unsupported_token_type", "self-contained access tokens cannot be revoked; use reference tokens");
  }
  await deps.store.grants.remove(resolved.recordKey);
  deps.emit({ type: "token.revoked", clientId: client.clientId, kind: "access_token" });
  return true;
}

/** POST {issuer}/connect/revocation (RFC 7009): 200 for revoked, unknown and foreign tokens alike. */
export function revocationEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const form = await readForm(request, deps.options);
    const client = await authenticateClient(request, form, deps);
    const token = form.get("token");
    if (!token) throw new ProtocolError("invalid_request", "token is missing");
    const order = form.get("token_type_hint") === "access_token" ? [revokeAccessToken, revokeRefreshToken] : [revokeRefreshToken, revokeAccessToken];
    for (const revoke of order) if (await revoke(token, client, deps)) break;
    return noStoreJson({}, 200);
  };
}
