import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey, type ProtectedHeaderParameters } from "jose";
import type { Client } from "../clients.ts";
import { endpointUrl, nowSeconds, PATHS, type ProviderDeps } from "../deps.ts";
import { iatTooFarAhead } from "../validation/jwt-times.ts";

/** RFC 7523 §2.2 client assertion type. */
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** The longest assertion lifetime accepted; it also bounds how long a `jti` is remembered. */
const MAX_ASSERTION_LIFETIME = 600;
const CLOCK_TOLERANCE = 30;

/**
 * Accepted `typ` headers of a client assertion, compared case-insensitively without an `application/`
 * prefix (RFC 7515 §4.1.9): absent, the generic `JWT` (RFC 7519 §5.1), or the explicit type of
 * draft-ietf-oauth-rfc7523bis. Any other (a request object's `oauth-authz-req+jwt`, a DPoP proof's) names
 * another kind of JWT the client signs and is refused (RFC 8725 §3.11).
 */
const ASSERTION_TYPES: ReadonlySet<string> = new Set(["jwt", "client-authentication+jwt"]);

/**
 * Claims only an authorization request (a request object, RFC 9101) carries: a JWT holding one is not a
 * client assertion, however it is typed. `scope` and `client_id` are not listed: some libraries put them
 * in assertions.
 */
const AUTHORIZATION_REQUEST_CLAIMS = ["response_type", "redirect_uri", "response_mode", "code_challenge", "request", "request_uri"];

/**
 * The store key remembering that `client` used `jti` in a JWT it signed: ONE record for client assertions
 * and request objects alike, so a JWT used as one cannot be replayed as the other.
 */
function clientJtiKey(clientId: string, jti: string): string {
  return sha256Base64url(`client-jwt:${JSON.stringify([clientId, jti])}`);
}

/**
 * Records a `jti` of a JWT the client signed (assertion or request object) until its `exp` plus
 * `tolerance`; false when it was already used. One record per client for both kinds, so neither is
 * accepted as the other. `exp` may be fractional (RFC 7519 NumericDate): the store keeps whole seconds,
 * rounded towards later.
 */
export async function useClientJti(deps: ProviderDeps, clientId: string, jti: string, exp: number, now: number, tolerance: number): Promise<boolean> {
  return deps.store.grants.putIfAbsent({ key: clientJtiKey(clientId, jti), kind: "replay", clientId, data: "{}", createdAt: now, expiresAt: Math.ceil(exp) + tolerance });
}

/** True when `typ` (a JOSE header value, anything a sender wrote) names one of `accepted` (lower case, no `application/`). */
export function typeIsOneOf(typ: unknown, accepted: ReadonlySet<string>): boolean {
  return typeof typ === "string" && accepted.has(typ.toLowerCase().replace(/^application\//, ""));
}

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
 * key, no `none`), `typ` absent, `JWT` or `client-authentication+jwt`, no authorization request
 * parameters, and a string `jti` used once across every JWT the client signs ({@link useClientJti}). Until
 * the signature verifies, errors say no more than "invalid" (the reason is logged).
 */
export async function verifyClientAssertion(assertion: string, client: Client, deps: ProviderDeps): Promise<void> {
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(assertion);
  } catch {
    throw fail("the client assertion is malformed");
  }
  // Header values are the sender's text of any JSON type: checked by type, never interpolated.
  const alg: unknown = header.alg;
  if (typeof alg !== "string" || !client.assertionAlgorithms.includes(alg)) {
    // The detail is for the operator: an unauthenticated caller learns nothing about accepted algorithms.
    deps.logger.warn({ clientId: client.clientId, reason: `alg ${typeof alg === "string" ? JSON.stringify(alg.slice(0, 32)) : `(${typeof alg})`} is not accepted for ${client.tokenEndpointAuthMethod}` }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  // A request object (typ oauth-authz-req+jwt) or any other JWT the client signs is not an assertion.
  if (header.typ !== undefined && !typeIsOneOf(header.typ, ASSERTION_TYPES)) {
    deps.logger.warn({ clientId: client.clientId, reason: "typ names another kind of JWT" }, "client assertion rejected");
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
  // A signed authorization request (it travels through browsers, histories and logs) is never an assertion.
  if (AUTHORIZATION_REQUEST_CLAIMS.some((claim) => Object.hasOwn(payload, claim))) {
    deps.logger.warn({ clientId: client.clientId, reason: "the assertion carries authorization request parameters" }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  // RFC 7519 §4.1.7: a string (jose checks only that it is present).
  if (typeof payload.jti !== "string" || payload.jti === "") {
    deps.logger.warn({ clientId: client.clientId, reason: "jti is not a non-empty string" }, "client assertion rejected");
    throw fail("the client assertion is invalid");
  }
  if (iatTooFarAhead(payload, now)) throw fail("the client assertion's iat is in the future");
  const exp = payload.exp!;
  if (exp - now > MAX_ASSERTION_LIFETIME) throw fail(`the client assertion may live at most ${MAX_ASSERTION_LIFETIME} seconds`);
  if (!(await useClientJti(deps, client.clientId, payload.jti, exp, now, CLOCK_TOLERANCE))) throw fail("the client assertion was already used (jti)");
}
