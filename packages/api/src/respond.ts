import type { ValidationFailure } from "./validator.ts";

/** The HTTP response for a refused request: status, WWW-Authenticate, DPoP-Nonce, and an RFC 6750 JSON body. */
export function toResponse(failure: ValidationFailure): Response {
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store", "www-authenticate": failure.wwwAuthenticate });
  if (failure.dpopNonce) headers.set("dpop-nonce", failure.dpopNonce);
  return new Response(JSON.stringify({ error: failure.error, ...(failure.errorDescription ? { error_description: failure.errorDescription } : {}) }), { status: failure.status, headers });
}
