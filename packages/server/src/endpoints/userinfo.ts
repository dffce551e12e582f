import { ProtocolError } from "@tessera/protocol";
import { PATHS, type ProviderDeps } from "../deps.ts";
import { noStoreJson } from "../http/responses.ts";
import { userClaims } from "../tokens/profile.ts";
import { bearerChallenge, validateBearerToken } from "../validation/bearer-token.ts";

/** GET/POST {issuer}/connect/userinfo (OIDC Core §5.3). */
export function userinfoEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const token = await validateBearerToken(request, deps, PATHS.userinfo);
    const scopes = token.claims.scope.split(" ");
    // Only tokens issued for a user with the openid scope may read claims (client tokens have no sid).
    if (!scopes.includes("openid") || token.claims.sid === undefined) {
      throw new ProtocolError("insufficient_scope", "the token was not issued for the openid scope", {
        headers: { "www-authenticate": bearerChallenge(deps, "insufficient_scope") },
      });
    }
    const claims = await userClaims(deps, "userinfo", {
      subject: token.claims.sub,
      clientId: token.claims.client_id,
      scopes,
      sessionClaims: token.record?.sessionClaims ?? {},
    });
    if (!claims) {
      throw new ProtocolError("invalid_token", "the user is no longer active", {
        status: 401,
        headers: { "www-authenticate": bearerChallenge(deps, "invalid_token") },
      });
    }
    return noStoreJson({ ...claims, sub: token.claims.sub });
  };
}
