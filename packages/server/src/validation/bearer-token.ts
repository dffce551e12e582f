import { ProtocolError, certificateThumbprint, quotedString } from "@tessera/protocol";
import { clientCertificateOf } from "../http/request-context.ts";
import { endpointUrlFor, type ProviderDeps } from "../deps.ts";
import { readForm } from "../http/params.ts";
import { resolveAccessToken, type ResolvedAccessToken } from "../tokens/access-token-resolver.ts";
import { dpopChallenge, validateDpop } from "./dpop.ts";

/** RFC 6750 §3 challenge (and RFC 9449 §7.1's DPoP challenge beside it). */
export function bearerChallenge(deps: ProviderDeps, error?: string, description?: string): string {
  let value = `Bearer realm=${quotedString(deps.options.issuer)}`;
  if (error) value += `, error=${quotedString(error)}`;
  if (description) value += `, error_description=${quotedString(description)}`;
  return `${value}, ${dpopChallenge()}`;
}

/** RFC 6750 §2 / RFC 9449 §7.1: the token and its scheme, from the Authorization header or (Bearer, POST) the form. */
async function extractToken(request: Request, deps: ProviderDeps): Promise<{ token: string; scheme: "Bearer" | "DPoP" }> {
  const header = request.headers.get("authorization");
  let fromBody: string | undefined;
  if (request.method === "POST" && request.headers.get("content-type")?.startsWith("application/x-www-form-urlencoded")) {
    fromBody = (await readForm(request, deps.options)).get("access_token");
  }
  const match = header ? /^(Bearer|DPoP) +(\S+)$/i.exec(header.trim()) : null;
  if (match && fromBody) {
    throw new ProtocolError("invalid_request", "more than one access token", { headers: { "www-authenticate": bearerChallenge(deps, "invalid_request") } });
  }
  if (match) return { token: match[2]!, scheme: match[1]!.toLowerCase() === "dpop" ? "DPoP" : "Bearer" };
  if (fromBody) return { token: fromBody, scheme: "Bearer" };
  throw new ProtocolError("invalid_token", undefined, { status: 401, headers: { "www-authenticate": bearerChallenge(deps) } });
}

/**
 * An access token presented to this provider (userinfo): valid, unexpired, not revoked, and for DPoP-bound
 * tokens presented with the DPoP scheme and a valid proof by the bound key.
 */
export async function validateBearerToken(request: Request, deps: ProviderDeps, path: string): Promise<ResolvedAccessToken> {
  const { token, scheme } = await extractToken(request, deps);
  const invalid = (description: string, challenge = bearerChallenge(deps, "invalid_token", description)) =>
    new ProtocolError("invalid_token", description, { status: 401, headers: { "www-authenticate": challenge } });
  const resolved = await resolveAccessToken(token, deps);
  if (!resolved) throw invalid("the access token is invalid, expired or revoked");
  // RFC 8705 §3: a certificate-bound token is honoured only over a connection with that certificate.
  const x5t = resolved.claims.cnf?.["x5t#S256"];
  if (x5t !== undefined) {
    const presented = clientCertificateOf(request);
    if (!presented || certificateThumbprint(presented.certificate) !== x5t) throw invalid("the access token is bound to another client certificate");
  }
  const jkt = resolved.claims.cnf?.jkt;
  if (jkt === undefined) {
    if (scheme === "DPoP") throw invalid("the access token is not DPoP-bound");
    return resolved;
  }
  if (scheme !== "DPoP") throw invalid("a DPoP-bound access token needs the DPoP scheme", dpopChallenge("invalid_token", "a DPoP-bound access token needs the DPoP scheme"));
  // The token's client's profile narrows the proof algorithms (FAPI 2.0 SP §5.4.1), as at the token endpoint.
  const algorithms = (await deps.clients.findClientById(resolved.claims.client_id))?.dpopAlgorithms;
  const proof = await validateDpop(request, deps, endpointUrlFor(deps, request, path), { accessToken: token, jkt, resource: true, algorithms });
  if (!proof) throw new ProtocolError("invalid_dpop_proof", "a DPoP proof is required", { status: 401, headers: { "www-authenticate": dpopChallenge("invalid_dpop_proof", "a DPoP proof is required") } });
  return resolved;
}
