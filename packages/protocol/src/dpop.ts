import { createHash } from "node:crypto";
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from "jose";

/** Asymmetric algorithms a DPoP proof may use (RFC 9449 §4.2: never `none`, never a MAC). */
export const DPOP_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"] as const;

/**
 * Default seconds of clock skew a proof's `iat` (and `nbf`/`exp`) may show: FAPI 2.0 SP §5.3.2.1-14 asks to
 * accept an `iat` up to 10 s in the future, and to refuse one more than 60 s ahead.
 */
export const DPOP_CLOCK_TOLERANCE = 15;

const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** What a proof must match. */
export interface DpopProofExpectations {
  /** The request's method. */
  method: string;
  /** The request's URL; query and fragment are ignored (RFC 9449 §4.3 step 9). */
  url: string;
  /** With an access token, the proof's `ath` must be its hash (RFC 9449 §4.3 step 11). */
  accessToken?: string;
  /** With a key thumbprint (`cnf.jkt`), the proof's key must be that key. */
  jkt?: string;
  /** A nonce the server requires (RFC 9449 §8/§9). */
  nonce?: string | ((nonce: string | undefined) => boolean);
  /** Seconds a proof is accepted after its `iat` (default 60). */
  lifetime?: number;
  /** Seconds of clock skew for `iat` in the future, `nbf` and `exp` (default {@link DPOP_CLOCK_TOLERANCE}). */
  clockTolerance?: number;
  algorithms?: readonly string[];
  /** Milliseconds. */
  now?: number;
}

/** A valid proof. */
export interface DpopProof {
  jwk: JWK;
  /** RFC 7638 thumbprint of the proof key. */
  jkt: string;
  jti: string;
  iat: number;
  payload: JWTPayload;
}

/** Why a proof was refused; `use_dpop_nonce` means the client should retry with a fresh nonce. */
export type DpopProofError = { code: "invalid_dpop_proof" | "use_dpop_nonce"; description: string };

/** base64url(SHA-256(access token)), the `ath` claim (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash("sha256").update(accessToken, "ascii").digest("base64url");
}

/** RFC 9449 §4.3 step 9: scheme, host, port and path; no query, no fragment; default ports dropped. */
export function normalizeHtu(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return undefined;
  }
}

/**
 * Checks a DPoP proof (RFC 9449 §4.3): one proof, `typ` dpop+jwt, an allowed asymmetric `alg`, a public
 * `jwk` only, a valid signature by that key, `htm`/`htu` matching the request, a fresh `iat`, a `jti`,
 * and when asked `ath`, `nonce` and the bound key. Replay of `jti` is the caller's to check (it needs shared state).
 */
export async function verifyDpopProof(proof: string, expected: DpopProofExpectations): Promise<{ ok: true; proof: DpopProof } | { ok: false; error: DpopProofError }> {
  const fail = (description: string, code: DpopProofError["code"] = "invalid_dpop_proof") => ({ ok: false as const, error: { code, description } });
  const algorithms = expected.algorithms ?? DPOP_ALGORITHMS;
  let header;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    return fail("the DPoP proof is not a JWS");
  }
  if (header.typ !== "dpop+jwt") return fail("typ must be dpop+jwt");
  if (!header.alg || !algorithms.includes(header.alg)) return fail("the proof's alg is not accepted");
  const jwk = header.jwk;
  if (!jwk || typeof jwk !== "object") return fail("the proof has no jwk");
  if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) return fail("the jwk holds private key material");
  const now = Math.floor((expected.now ?? Date.now()) / 1000);
  const tolerance = expected.clockTolerance ?? DPOP_CLOCK_TOLERANCE;
  let payload: JWTPayload;
  try {
    const key = await importJWK(jwk, header.alg);
    ({ payload } = await jwtVerify(proof, key, { typ: "dpop+jwt", algorithms: [header.alg], currentDate: new Date(now * 1000), clockTolerance: tolerance }));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_JWT_EXPIRED" || code === "ERR_JWT_CLAIM_VALIDATION_FAILED") return fail("the DPoP proof is not valid now (nbf, exp or iat)");
    return fail("the DPoP proof signature is invalid");
  }
  if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > 256) return fail("jti is missing");
  if (payload.htm !== expected.method.toUpperCase()) return fail("htm does not match the request method");
  const htu = typeof payload.htu === "string" ? normalizeHtu(payload.htu) : undefined;
  if (!htu || htu !== normalizeHtu(expected.url)) return fail("htu does not match the request URL");
  const lifetime = expected.lifetime ?? 60;
  if (typeof payload.iat !== "number" || !Number.isFinite(payload.iat)) return fail("iat is missing");
  if (payload.iat > now + tolerance) return fail("iat is in the future");
  if (payload.iat < now - lifetime - tolerance) return fail("the DPoP proof is too old");
  if (expected.accessToken !== undefined && payload.ath !== accessTokenHash(expected.accessToken)) return fail("ath does not match the access token");
  if (expected.nonce !== undefined) {
    const nonce = typeof payload.nonce === "string" ? payload.nonce : undefined;
    const valid = typeof expected.nonce === "function" ? expected.nonce(nonce) : nonce === expected.nonce;
    if (!valid) return fail(nonce ? "the DPoP nonce is stale" : "a DPoP nonce is required", "use_dpop_nonce");
  }
  const jkt = await calculateJwkThumbprint(jwk, "sha256");
  if (expected.jkt !== undefined && jkt !== expected.jkt) return fail("the proof key is not the key the token is bound to");
  return { ok: true, proof: { jwk, jkt, jti: payload.jti, iat: payload.iat, payload } };
}
