import { createHmac, timingSafeEqual } from "node:crypto";
import { ProtocolError, quotedString, sha256Base64url, verifyDpopProof, DPOP_ALGORITHMS } from "@tessera/protocol";
import { nowSeconds, type ProviderDeps } from "../deps.ts";

/** A proof that passed every check of RFC 9449 §4.3 and was not seen before. */
export interface ValidatedDpop {
  jkt: string;
}

/** How long a server nonce stays valid; a new one is handed out with every DPoP response. */
const NONCE_WINDOW = 300;

/**
 * Server nonces (RFC 9449 §8): the time, HMAC'd with a key derived from the data key, so every process
 * of a deployment issues and accepts the same nonces without sharing state.
 */
export function issueDpopNonce(deps: ProviderDeps): string {
  const at = nowSeconds(deps).toString(36);
  return `${at}.${nonceMac(deps, at)}`;
}

function nonceMac(deps: ProviderDeps, value: string): string {
  return createHmac("sha256", deps.protector.subkey("dpop-nonce")).update(value).digest("base64url").slice(0, 22);
}

function nonceIsValid(deps: ProviderDeps, nonce: string | undefined): boolean {
  const [at, mac] = (nonce ?? "").split(".");
  if (!at || !mac) return false;
  const expected = Buffer.from(nonceMac(deps, at));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return false;
  const age = nowSeconds(deps) - parseInt(at, 36);
  return age >= -5 && age <= NONCE_WINDOW;
}

/** The `WWW-Authenticate` challenge for a resource (userinfo) refusing a DPoP request. */
export function dpopChallenge(error?: string, description?: string): string {
  let value = `DPoP algs=${quotedString(DPOP_ALGORITHMS.join(" "))}`;
  if (error) value += `, error=${quotedString(error)}`;
  if (description) value += `, error_description=${quotedString(description)}`;
  return value;
}

/**
 * Checks the request's DPoP proof for `url` (the endpoint's public URL), with `ath` for an access token.
 * Undefined when the request has no proof. Errors are `invalid_dpop_proof`, or `use_dpop_nonce` with a
 * fresh nonce in the `DPoP-Nonce` header. At a resource (`resource: true`) they are 401 challenges.
 * `algorithms` narrows the accepted proof algorithms (a client's profile).
 */
export async function validateDpop(request: Request, deps: ProviderDeps, url: string, options: { accessToken?: string; jkt?: string; resource?: boolean; algorithms?: readonly string[] } = {}): Promise<ValidatedDpop | undefined> {
  const header = request.headers.get("dpop");
  if (header === null) return undefined;
  const fail = (code: "invalid_dpop_proof" | "use_dpop_nonce", description: string) => {
    const headers: Record<string, string> = {};
    if (code === "use_dpop_nonce") headers["dpop-nonce"] = issueDpopNonce(deps);
    if (options.resource) headers["www-authenticate"] = dpopChallenge(code, description);
    return new ProtocolError(code, description, { status: options.resource ? 401 : 400, headers });
  };
  if (header.includes(",") || header.length > 8192) throw fail("invalid_dpop_proof", "send exactly one DPoP proof");
  const lifetime = deps.options.dpop.proofLifetime;
  const result = await verifyDpopProof(header, {
    method: request.method,
    url,
    accessToken: options.accessToken,
    jkt: options.jkt,
    lifetime,
    now: deps.clock(),
    ...(options.algorithms ? { algorithms: options.algorithms } : {}),
    ...(deps.options.dpop.requireNonce ? { nonce: (n: string | undefined) => nonceIsValid(deps, n) } : {}),
  });
  if (!result.ok) throw fail(result.error.code, result.error.description);
  // One use per proof, across every process sharing the store (RFC 9449 §11.1).
  const fresh = await deps.store.grants.putIfAbsent({
    key: sha256Base64url(`dpop:${result.proof.jkt}:${result.proof.jti}`),
    kind: "replay",
    clientId: "",
    data: "{}",
    createdAt: nowSeconds(deps),
    // iat may be fractional (RFC 7519 NumericDate); the store keeps whole seconds, rounded towards later.
    expiresAt: Math.ceil(result.proof.iat) + lifetime + 10,
  });
  if (!fresh) throw fail("invalid_dpop_proof", "the DPoP proof was already used");
  return { jkt: result.proof.jkt };
}
