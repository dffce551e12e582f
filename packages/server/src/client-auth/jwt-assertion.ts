import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { Client } from "../clients.ts";
import { endpointUrl, nowSeconds, PATHS, type ProviderDeps } from "../deps.ts";

/** RFC 7523 §2.2 client assertion type. */
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** The longest assertion lifetime accepted; it also bounds how long a `jti` is remembered. */
const MAX_ASSERTION_LIFETIME = 600;
const CLOCK_TOLERANCE = 30;

/** Per client: its registered keys, or its jwks_uri's keys fetched and cached. */
const keySets = new WeakMap<Client, JWTVerifyGetKey>();

function fail(description: string): ProtocolError {
  return new ProtocolError("invalid_client", description, { status: 401 });
}

/** The verification key(s) for a client's assertions; remote JWKS are fetched, cached and refreshed on unknown kids. */
function keyFor(client: Client, deps: ProviderDeps): JWTVerifyGetKey | Uint8Array {
  if (client.tokenEndpointAuthMethod === "client_secret_jwt") return new TextEncoder().encode(client.sharedSecret!);
  return clientPublicKeys(client, deps)!;
}

/**
 * The client's registered public keys (`jwks`, or `jwks_uri` fetched through the outbound rules, cached and
 * refreshed on unknown kids); undefined when it registered none. Shared by client assertions and request objects.
 */
export function clientPublicKeys(client: Client, deps: Pick<ProviderDeps, "outboundFetch">): JWTVerifyGetKey | undefined {
  if (!client.jwks && !client.jwksUri) return undefined;
  let keys = keySets.get(client);
  if (!keys) {
    keys = client.jwks
      ? createLocalJWKSet(client.jwks)
      : createRemoteJWKSet(new URL(client.jwksUri!), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000, [customFetch]: (url: string, init: RequestInit) => deps.outboundFetch(url, init) });
    keySets.set(client, keys);
  }
  return keys;
}

/**
 * RFC 7523 §3 (and draft-ietf-oauth-rfc7523bis): the audiences that name this server, all from
 * configuration and never from the request (its Host or URL would accept assertions minted for another
 * server): the issuer (recommended), the token endpoint URL and its mTLS alias (for compatibility).
 */
export function assertionAudiences(deps: Pick<ProviderDeps, "options">): string[] {
  // RFC 9126 §2: the PAR endpoint's URL counts too, as the token endpoint's does (the jti is one-time
  // across both, so an assertion used at one cannot be replayed at the other).
  const audiences = [deps.options.issuer, endpointUrl(deps, PATHS.token), endpointUrl(deps, PATHS.par)];
  const mtlsBase = deps.options.mtls.endpointBaseUrl;
  if (mtlsBase) audiences.push(mtlsBase + PATHS.token, mtlsBase + PATHS.par);
  return audiences;
}

/**
 * RFC 7523 §3 / OIDC Core §9: iss = sub = client_id, aud = this server ({@link assertionAudiences}) as
 * one value, unexpired, a short lifetime, an algorithm of the client's method only (no HMAC with a public
 * key, no `none`), and a `jti` used once. Until the signature verifies, errors say no more than "invalid"
 * (the reason is logged).
 */
export async function verifyClientAssertion(assertion: string, client: Client, deps: ProviderDeps): Promise<void> {
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(assertion).alg;
  } catch {
    throw fail("the client assertion is malformed");
  }
  if (!alg || !client.assertionAlgorithms.includes(alg)) {
    // The detail is for the operator: an unauthenticated caller learns nothing about accepted algorithms.
    deps.logger.warn({ clientId: client.clientId, reason: `alg ${alg ?? "(none)"} is not accepted for ${client.tokenEndpointAuthMethod}` }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  const now = nowSeconds(deps);
  let payload;
  try {
    const key = keyFor(client, deps);
    const options = {
      algorithms: client.assertionAlgorithms,
      issuer: client.clientId,
      subject: client.clientId,
      audience: client.assertionAudience === "issuer" ? deps.options.issuer : assertionAudiences(deps),
      requiredClaims: ["exp", "jti"],
      currentDate: new Date(deps.clock()),
      clockTolerance: CLOCK_TOLERANCE,
    };
    ({ payload } = typeof key === "function" ? await jwtVerify(assertion, key, options) : await jwtVerify(assertion, key, options));
  } catch (error) {
    deps.logger.warn({ clientId: client.clientId, reason: (error as Error).message }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  // draft-ietf-oauth-rfc7523bis: aud is this server alone; an array naming others too (one of them perhaps
  // an attacker's server) is refused, a one-element array is the same as the single value.
  if (Array.isArray(payload.aud) && payload.aud.length !== 1) {
    deps.logger.warn({ clientId: client.clientId, reason: "aud names more than one audience" }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  // FAPI 2.0 SP §5.3.2.1-8: only the issuer identifier, as a string (not an array, not an endpoint URL).
  if (client.assertionAudience === "issuer" && typeof payload.aud !== "string") {
    deps.logger.warn({ clientId: client.clientId, reason: "aud must be the issuer as a string" }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  const exp = payload.exp!;
  if (exp - now > MAX_ASSERTION_LIFETIME) throw fail(`the client assertion may live at most ${MAX_ASSERTION_LIFETIME} seconds`);
  const fresh = await deps.store.grants.putIfAbsent({
    key: sha256Base64url(`assertion:${client.clientId}:${String(payload.jti)}`),
    kind: "replay",
    clientId: client.clientId,
    data: "{}",
    createdAt: now,
    // exp may be fractional (RFC 7519 NumericDate); the store keeps whole seconds, rounded towards later.
    expiresAt: Math.ceil(exp) + CLOCK_TOLERANCE,
  });
  if (!fresh) throw fail("the client assertion was already used (jti)");
}
