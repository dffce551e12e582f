import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import { createLocalJWKSet, jwtVerify, type JWTPayload } from "jose";
import type { ProviderDeps } from "../deps.ts";
import { readForm } from "../http/params.ts";
import type { AccessTokenRecord } from "../tokens/token-service.ts";

/** An access token presented to this provider (userinfo) that is valid and not revoked. */
export interface ValidatedAccessToken {
  payload: JWTPayload & { sub: string; client_id: string; scope?: string };
  scopes: string[];
  record?: AccessTokenRecord;
}

function challenge(deps: ProviderDeps, error?: string, description?: string): string {
  let value = `Bearer realm="${deps.options.issuer}"`;
  if (error) value += `, error="${error}"`;
  if (description) value += `, error_description="${description}"`;
  return value;
}

/** RFC 6750 §2: the token from the Authorization header or (POST) the form body, never both. */
async function extractToken(request: Request, deps: ProviderDeps): Promise<string> {
  const header = request.headers.get("authorization");
  let fromBody: string | undefined;
  if (request.method === "POST" && request.headers.get("content-type")?.startsWith("application/x-www-form-urlencoded")) {
    fromBody = (await readForm(request, deps.options)).get("access_token");
  }
  const fromHeader = header && /^bearer /i.test(header) ? header.slice(7).trim() : undefined;
  if (fromHeader && fromBody) {
    throw new ProtocolError("invalid_request", "more than one access token", { headers: { "www-authenticate": challenge(deps, "invalid_request") } });
  }
  const token = fromHeader || fromBody;
  if (!token) throw new ProtocolError("invalid_token", undefined, { status: 401, headers: { "www-authenticate": challenge(deps) } });
  return token;
}

/** Validates an RFC 9068 access token issued here, and checks it was not revoked. */
export async function validateBearerToken(request: Request, deps: ProviderDeps): Promise<ValidatedAccessToken> {
  const token = await extractToken(request, deps);
  const invalid = (description: string) =>
    new ProtocolError("invalid_token", description, { status: 401, headers: { "www-authenticate": challenge(deps, "invalid_token", description) } });
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(await deps.keys.jwks()), {
      issuer: deps.options.issuer,
      typ: "at+jwt",
      algorithms: deps.options.algorithms,
      currentDate: new Date(deps.clock()),
      requiredClaims: ["exp", "sub", "client_id", "jti"],
    }));
  } catch {
    throw invalid("the access token is invalid or expired");
  }
  const scopes = typeof payload.scope === "string" ? payload.scope.split(" ").filter(Boolean) : [];
  let record: AccessTokenRecord | undefined;
  if (payload.sid !== undefined) {
    // User tokens have a server-side record; without it the token was revoked.
    const grant = await deps.store.grants.get(sha256Base64url(String(payload.jti)));
    if (!grant || grant.kind !== "access_token") throw invalid("the access token was revoked");
    record = JSON.parse(grant.data) as AccessTokenRecord;
  }
  return { payload: payload as ValidatedAccessToken["payload"], scopes, record };
}

export { challenge as bearerChallenge };
