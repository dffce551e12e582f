import { ProtocolError } from "@tessera/protocol";
import type { ProviderDeps } from "../deps.ts";
import { readForm } from "../http/params.ts";
import { resolveAccessToken, type ResolvedAccessToken } from "../tokens/access-token-resolver.ts";

/** RFC 6750 §3 challenge. */
export function bearerChallenge(deps: ProviderDeps, error?: string, description?: string): string {
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
    throw new ProtocolError("invalid_request", "more than one access token", { headers: { "www-authenticate": bearerChallenge(deps, "invalid_request") } });
  }
  const token = fromHeader || fromBody;
  if (!token) throw new ProtocolError("invalid_token", undefined, { status: 401, headers: { "www-authenticate": bearerChallenge(deps) } });
  return token;
}

/** A bearer token presented to this provider (userinfo): valid, unexpired and not revoked. */
export async function validateBearerToken(request: Request, deps: ProviderDeps): Promise<ResolvedAccessToken> {
  const token = await extractToken(request, deps);
  const resolved = await resolveAccessToken(token, deps);
  if (!resolved) {
    const description = "the access token is invalid, expired or revoked";
    throw new ProtocolError("invalid_token", description, { status: 401, headers: { "www-authenticate": bearerChallenge(deps, "invalid_token", description) } });
  }
  return resolved;
}
