import { ProtocolError } from "@tessera/protocol";
import type { ProviderDeps } from "../deps.ts";
import { noStoreJson } from "../http/responses.ts";
import { bearerChallenge, validateBearerToken } from "../validation/bearer-token.ts";

/** GET/POST {issuer}/connect/userinfo (OIDC Core §5.3). */
export function userinfoEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const token = await validateBearerToken(request, deps);
    if (!token.scopes.includes("openid") || !token.record) {
      throw new ProtocolError("insufficient_scope", "the token was not issued for the openid scope", {
        headers: { "www-authenticate": bearerChallenge(deps, "insufficient_scope") },
      });
    }
    const claims = await deps.profile({
      subject: token.payload.sub,
      clientId: token.payload.client_id,
      scopes: token.scopes,
      caller: "userinfo",
      sessionClaims: token.record.sessionClaims,
    });
    if (!claims) {
      throw new ProtocolError("invalid_token", "the user is no longer active", {
        headers: { "www-authenticate": bearerChallenge(deps, "invalid_token") },
      });
    }
    return noStoreJson({ ...claims, sub: token.payload.sub }, 200, { "access-control-allow-origin": "*" });
  };
}
