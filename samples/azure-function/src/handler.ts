/**
 * The protected HTTP function's handler: validates the bearer (or DPoP) access token issued by Tessera
 * and answers with who called. Kept apart from the registration so it runs anywhere, tests included.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { createTokenValidator, type TokenValidator } from "@tessera/api";

let validator: TokenValidator | undefined;

/** One validator per function instance: it caches discovery and the JWKS between invocations. */
function getValidator(): TokenValidator {
  validator ??= createTokenValidator({
    issuer: process.env.TESSERA_ISSUER ?? "http://localhost:5000",
    audience: process.env.API_AUDIENCE ?? "urn:api1",
    requiredScopes: (process.env.API_REQUIRED_SCOPES ?? "api1.read").split(" ").filter(Boolean),
  });
  return validator;
}

/** Resets the cached validator (tests change the environment between runs). */
export function resetValidator(): void {
  validator = undefined;
}

export async function protectedHandler(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const result = await getValidator().validate(new Request(request.url, { method: request.method, headers: Object.fromEntries(request.headers) }));
  if (!result.ok) {
    context.warn(`token refused: ${result.error} ${result.errorDescription ?? ""}`);
    return {
      status: result.status,
      headers: { "www-authenticate": result.wwwAuthenticate, "cache-control": "no-store", ...(result.dpopNonce ? { "dpop-nonce": result.dpopNonce } : {}) },
      jsonBody: { error: result.error, error_description: result.errorDescription },
    };
  }
  return { status: 200, jsonBody: { message: "Hello from a protected function", sub: result.claims.sub, client_id: result.claims.client_id, scopes: result.scopes } };
}
