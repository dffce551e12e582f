import { X509Certificate } from "node:crypto";
import { DPOP_ALGORITHMS, DPOP_CLOCK_TOLERANCE, certificateThumbprint, quotedString, verifyDpopProof } from "@tessera/protocol";
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { NonceIssuer } from "./nonces.ts";
import { createMemoryReplayCache, type ReplayCache } from "./replay-cache.ts";

/** Options of {@link createTokenValidator}. */
export interface TokenValidatorOptions {
  /** The token issuer (its discovery document is read from `{issuer}/.well-known/openid-configuration`). */
  issuer: string;
  /** This API's identifier(s): one must be in the token's `aud`. */
  audience: string | string[];
  /** Scopes every request must carry. */
  requiredScopes?: string[];
  /**
   * RFC 9470: the authentication context class(es) the token's `acr` must meet, else 401
   * `insufficient_user_authentication` with `acr_values` in the challenge. A token meets a value when its
   * `acr` equals it, or when both are in {@link acrHierarchy} and the token's ranks at or above it.
   */
  requiredAcr?: string | string[];
  /**
   * ACR values from weakest to strongest, for "at least" matching of {@link requiredAcr} (RFC 9470 leaves
   * the policy to the resource server). Default `["pwd", "mfa", "phr", "phrh"]` (Tessera's values and the
   * OpenID EAP ACR values); `[]` for exact matching only. Tessera never issues `pwd` (a single factor gets
   * no `acr` at all), so `requiredAcr: "pwd"` refuses Tessera's password-only tokens: ask for `mfa` or more.
   */
  acrHierarchy?: string[];
  /**
   * RFC 9470 §3: seconds since the user last authenticated (`auth_time`) beyond which the token is refused
   * with 401 `insufficient_user_authentication` and `max_age` in the challenge; a token without `auth_time` too.
   * Exact: `clockTolerance` only forgives an `auth_time` slightly in the future, it does not lengthen `maxAge`.
   */
  maxAge?: number;
  /** Credentials of this API at the introspection endpoint, for reference (opaque) tokens. */
  introspection?: {
    clientId: string;
    clientSecret: string;
    /** Seconds an introspection result is reused (default 10; 0 turns caching off). */
    cacheTtl?: number;
  };
  /**
   * DPoP (RFC 9449). Without this option both schemes are accepted: Bearer for tokens that are not
   * sender-constrained, DPoP (with a valid proof) for `cnf.jkt` tokens. `required` refuses Bearer;
   * `requireNonce` makes clients use this API's nonces.
   */
  dpop?: {
    required?: boolean;
    requireNonce?: boolean;
    /**
     * Key of this API's stateless nonces: 32 random bytes (at least 32 characters or bytes). Every process
     * given the same secret accepts the others' nonces; without it each process makes a random key of its own.
     * Processes sharing it should share `replayCache` too, or a proof can be replayed at another process.
     */
    nonceSecret?: string | Uint8Array;
    /** Seconds a proof is accepted after its iat (default 60). */
    proofLifetime?: number;
    /** Seconds of clock skew accepted for a proof's iat in the future, nbf and exp (default 15; FAPI 2.0 SP §5.3.2.1-14 needs at least 10). */
    clockTolerance?: number;
    /**
     * Where used proof `jti`s are remembered, with the proof's `jkt` as key (default: in this process, at most
     * 100 000, at most 10 000 per key; refused when full or when the key has its share).
     */
    replayCache?: ReplayCache;
  };
  /**
   * URL of this API's RFC 9728 protected resource metadata (see `protectedResourceMetadata`, whose `url`
   * it usually is): every challenge then carries `resource_metadata="<url>"` (RFC 9728 §5.1).
   */
  resourceMetadata?: string;
  /** JWS algorithms accepted for access tokens (default RS256, PS256, ES256, EdDSA). */
  algorithms?: string[];
  /** Seconds after a JWKS fetch during which an unknown kid does not trigger another fetch (default 30). */
  jwksCooldown?: number;
  /** Seconds of clock skew tolerated for exp/nbf/iat (default 60). */
  clockTolerance?: number;
  /** Milliseconds clock, for tests. */
  clock?: () => number;
  /** fetch used for discovery, JWKS and introspection (default: the global fetch). */
  fetch?: typeof fetch;
}

/** Claims of a validated access token (RFC 9068 §2.2). */
export interface AccessTokenClaims extends JWTPayload {
  sub: string;
  client_id?: string;
  scope?: string;
  cnf?: { jkt?: string; "x5t#S256"?: string };
  /** OIDC Core §2: the authentication context class the user's authentication met. */
  acr?: string;
  /** RFC 8176 authentication methods. */
  amr?: string[];
  /** When the user authenticated, Unix seconds. */
  auth_time?: number;
}

/** A validated request. */
export interface ValidationSuccess {
  ok: true;
  claims: AccessTokenClaims;
  scopes: string[];
  tokenType: "Bearer" | "DPoP";
}

/** A refused request, ready to answer: status, RFC 6750 / RFC 9449 challenge, and a fresh DPoP nonce when one is needed. */
export interface ValidationFailure {
  ok: false;
  status: 401 | 403;
  error: string;
  errorDescription?: string;
  wwwAuthenticate: string;
  dpopNonce?: string;
}

export type ValidationResult = ValidationSuccess | ValidationFailure;

/** Per-request inputs beyond the Request itself. */
export interface ValidateOptions {
  /** The TLS client certificate of the connection (mTLS, RFC 8705), as an X509Certificate or PEM. */
  clientCertificate?: X509Certificate | string;
}

/** Validates access tokens for one API. */
export interface TokenValidator {
  validate(request: Request, options?: ValidateOptions): Promise<ValidationResult>;
}

const DEFAULT_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"];
/** Weakest to strongest: password, two factors, phishing-resistant, phishing-resistant hardware. */
const DEFAULT_ACR_HIERARCHY = ["pwd", "mfa", "phr", "phrh"];

/** RFC 9470: true when the token's `acr` meets one of the required values (exactly, or "at least" in `hierarchy`). */
export function acrSatisfies(acr: unknown, required: readonly string[], hierarchy: readonly string[] = DEFAULT_ACR_HIERARCHY): boolean {
  if (typeof acr !== "string") return false;
  if (required.includes(acr)) return true;
  const rank = hierarchy.indexOf(acr);
  return rank >= 0 && required.some((value) => {
    const needed = hierarchy.indexOf(value);
    return needed >= 0 && rank >= needed;
  });
}

interface Verified {
  ok: true;
  claims: AccessTokenClaims;
}

interface IntrospectionResult {
  active: boolean;
  [claim: string]: unknown;
}

/**
 * Creates a validator: RFC 9068 JWTs checked locally against the issuer's JWKS (fetched once, refetched
 * on an unknown kid at most every 30 s), reference tokens by introspection (cached briefly), required
 * scopes, and sender constraints: DPoP proofs for `cnf.jkt` tokens, the client certificate for
 * `cnf["x5t#S256"]` tokens.
 */
export function createTokenValidator(options: TokenValidatorOptions): TokenValidator {
  const issuer = options.issuer.replace(/\/+$/, "");
  const audiences = Array.isArray(options.audience) ? options.audience : [options.audience];
  const clock = options.clock ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const tolerance = options.clockTolerance ?? 60;
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  const requiredAcr = options.requiredAcr === undefined ? [] : Array.isArray(options.requiredAcr) ? options.requiredAcr : [options.requiredAcr];
  if (requiredAcr.some((value) => typeof value !== "string" || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(value))) {
    throw new TypeError("requiredAcr values must be non-empty strings of visible ASCII without spaces, quotes or backslashes");
  }
  const acrHierarchy = options.acrHierarchy ?? DEFAULT_ACR_HIERARCHY;
  if (options.maxAge !== undefined && !(Number.isSafeInteger(options.maxAge) && options.maxAge >= 0)) throw new TypeError("maxAge must be whole, non-negative seconds");
  const dpopOptions = options.dpop ?? {};
  const replayCache = dpopOptions.replayCache ?? createMemoryReplayCache(clock);
  const nonces = new NonceIssuer(Math.max(60, (dpopOptions.proofLifetime ?? 60) * 5), clock, dpopOptions.nonceSecret);
  const introspectionCache = new Map<string, { result: IntrospectionResult; until: number }>();
  let metadata: Promise<{ jwks_uri: string; introspection_endpoint?: string; issuer: string }> | undefined;
  let jwks: JWTVerifyGetKey | undefined;

  const discover = () => {
    metadata ??= (async () => {
      const response = await doFetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw new Error(`discovery failed: HTTP ${response.status}`);
      const document = (await response.json()) as { jwks_uri: string; introspection_endpoint?: string; issuer: string };
      if (document.issuer !== issuer) throw new Error(`discovery names issuer ${document.issuer}, expected ${issuer}`);
      return document;
    })().catch((error: unknown) => {
      metadata = undefined; // try again on the next request
      throw error;
    });
    return metadata;
  };

  const metadataParameter = options.resourceMetadata === undefined ? undefined : `resource_metadata=${quotedString(absoluteUrl(options.resourceMetadata))}`;
  const schemes = () => {
    const dpopChallenge = `DPoP algs=${quotedString(DPOP_ALGORITHMS.join(" "))}${metadataParameter ? `, ${metadataParameter}` : ""}`;
    return dpopOptions.required ? [dpopChallenge] : [metadataParameter ? `Bearer ${metadataParameter}` : "Bearer", dpopChallenge];
  };
  const fail = (status: 401 | 403, error: string, description?: string, scheme?: "Bearer" | "DPoP", extra: Record<string, string> = {}): ValidationFailure => {
    const params = [`error=${quotedString(error)}`, ...(description ? [`error_description=${quotedString(description)}`] : []), ...Object.entries(extra).map(([k, v]) => `${k}=${quotedString(v)}`)];
    const challenges = schemes().map((challenge) => {
      const name = challenge.split(" ")[0];
      if (scheme && name !== scheme) return challenge;
      return challenge.includes(" ") ? `${challenge}, ${params.join(", ")}` : `${challenge} ${params.join(", ")}`;
    });
    return { ok: false, status, error, errorDescription: description, wwwAuthenticate: challenges.join(", ") };
  };

  async function verifyJwt(token: string): Promise<Verified | ValidationFailure> {
    const { jwks_uri } = await discover();
    jwks ??= createRemoteJWKSet(new URL(jwks_uri), {
      cooldownDuration: (options.jwksCooldown ?? 30) * 1000,
      cacheMaxAge: 600_000,
      timeoutDuration: 5000,
      [customFetch]: (url: string, init: RequestInit) => doFetch(url, init),
    });
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer,
        audience: audiences,
        algorithms,
        typ: "at+jwt",
        clockTolerance: tolerance,
        currentDate: new Date(clock()),
        requiredClaims: ["exp", "sub"],
      });
      if (typeof payload.iat === "number" && payload.iat > clock() / 1000 + tolerance) return fail(401, "invalid_token", "the token is not valid yet");
      return { ok: true, claims: payload as AccessTokenClaims };
    } catch (error) {
      return fail(401, "invalid_token", describeJoseError(error));
    }
  }

  async function introspect(token: string): Promise<Verified | ValidationFailure> {
    if (!options.introspection) return fail(401, "invalid_token", "the token is not a JWT and introspection is not configured");
    const now = clock();
    const cached = introspectionCache.get(token);
    let result = cached && cached.until > now ? cached.result : undefined;
    if (!result) {
      const { introspection_endpoint } = await discover();
      if (!introspection_endpoint) return fail(401, "invalid_token", "the issuer has no introspection endpoint");
      const { clientId, clientSecret } = options.introspection;
      const response = await doFetch(introspection_endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
        },
        body: new URLSearchParams({ token, token_type_hint: "access_token" }),
        signal: AbortSignal.timeout(5000),
      });
      if (!response.ok) throw new Error(`introspection failed: HTTP ${response.status}`);
      result = (await response.json()) as IntrospectionResult;
      const ttl = (options.introspection.cacheTtl ?? 10) * 1000;
      if (ttl > 0) {
        const exp = typeof result.exp === "number" ? result.exp * 1000 : Infinity;
        introspectionCache.set(token, { result, until: Math.min(now + ttl, exp) });
        if (introspectionCache.size > 10_000) introspectionCache.delete(introspectionCache.keys().next().value!);
      }
    }
    if (result.active !== true) return fail(401, "invalid_token", "the token is not active");
    const aud: unknown[] = Array.isArray(result.aud) ? result.aud : [result.aud];
    if (!aud.some((a) => typeof a === "string" && audiences.includes(a))) return fail(401, "invalid_token", "the token is for another audience");
    if (typeof result.exp === "number" && result.exp * 1000 <= clock() - tolerance * 1000) return fail(401, "invalid_token", "the token has expired");
    return { ok: true, claims: result as unknown as AccessTokenClaims };
  }

  return {
    async validate(request, validateOptions = {}) {
      const header = request.headers.get("authorization") ?? "";
      const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
      if (!match) {
        const missing = header.trim() === "";
        const result = missing ? { ok: false as const, status: 401 as const, error: "invalid_token", errorDescription: "no access token", wwwAuthenticate: schemes().join(", ") } : fail(401, "invalid_request", "the Authorization header is malformed");
        if (missing && dpopOptions.requireNonce) result.dpopNonce = nonces.issue();
        return result;
      }
      const scheme = match[1]!.toLowerCase() === "dpop" ? "DPoP" : "Bearer";
      const token = match[2]!;
      if (scheme === "Bearer" && dpopOptions.required) return fail(401, "invalid_token", "this API requires DPoP", "DPoP");

      let verified: Verified | ValidationFailure;
      try {
        verified = isJws(token) ? await verifyJwt(token) : await introspect(token);
      } catch (error) {
        // The reason (a discovery or network failure) is not the client's business, nor safe in a header.
        return fail(401, "invalid_token", "the token could not be checked");
      }
      if (!verified.ok) return { ...verified, wwwAuthenticate: fail(401, verified.error, verified.errorDescription, scheme).wwwAuthenticate };
      const valid = verified.claims;

      // Sender constraints (RFC 9449 §7, RFC 8705 §3).
      const jkt = valid.cnf?.jkt;
      if (jkt !== undefined || scheme === "DPoP") {
        if (scheme !== "DPoP") return fail(401, "invalid_token", "a DPoP-bound token needs the DPoP scheme", "DPoP");
        if (jkt === undefined) return fail(401, "invalid_token", "the token is not DPoP-bound", "DPoP");
        const proofs = request.headers.get("dpop");
        if (!proofs || proofs.includes(",")) return fail(401, "invalid_dpop_proof", "exactly one DPoP proof is required", "DPoP");
        const lifetime = dpopOptions.proofLifetime ?? 60;
        const proofTolerance = dpopOptions.clockTolerance ?? DPOP_CLOCK_TOLERANCE;
        const checked = await verifyDpopProof(proofs, {
          method: request.method,
          url: request.url,
          accessToken: token,
          jkt,
          lifetime,
          clockTolerance: proofTolerance,
          now: clock(),
          ...(dpopOptions.requireNonce ? { nonce: (n: string | undefined) => nonces.valid(n) } : {}),
        });
        if (!checked.ok) {
          const failure = fail(401, checked.error.code, checked.error.description, "DPoP");
          if (checked.error.code === "use_dpop_nonce") failure.dpopNonce = nonces.issue();
          return failure;
        }
        const remembered = await replayCache.add(`${jkt}:${checked.proof.jti}`, (checked.proof.iat + lifetime + proofTolerance + 1) * 1000, jkt);
        if (remembered === "key-quota") return fail(401, "invalid_dpop_proof", "too many proofs for this key, retry later", "DPoP");
        if (remembered === "full") return fail(401, "invalid_dpop_proof", "the replay cache is full, retry with a new proof later", "DPoP");
        if (remembered !== true) return fail(401, "invalid_dpop_proof", "the DPoP proof was already used", "DPoP");
      }
      const x5t = valid.cnf?.["x5t#S256"];
      if (x5t !== undefined) {
        const certificate = validateOptions.clientCertificate;
        if (!certificate) return fail(401, "invalid_token", "the token is bound to a client certificate", scheme);
        let thumbprint: string;
        try {
          thumbprint = certificateThumbprint(certificate);
        } catch {
          return fail(401, "invalid_token", "the client certificate is unreadable", scheme);
        }
        if (thumbprint !== x5t) return fail(401, "invalid_token", "the client certificate is not the one the token is bound to", scheme);
      }

      // RFC 9470 §3: the authentication behind the token is too weak or too old.
      const acrRefused = requiredAcr.length > 0 && !acrSatisfies(valid.acr, requiredAcr, acrHierarchy);
      const authTime = valid.auth_time;
      // The clock tolerance is for skew into the future only (an auth_time a little ahead of this clock);
      // the age itself is not stretched, so maxAge: 0 means "this second".
      const age = typeof authTime === "number" ? clock() / 1000 - authTime : Number.NaN;
      const ageRefused = options.maxAge !== undefined && !(age <= options.maxAge && age >= -tolerance);
      if (acrRefused || ageRefused) {
        const description = acrRefused ? "a stronger authentication is required" : "a more recent authentication is required";
        return fail(401, "insufficient_user_authentication", description, scheme, {
          ...(acrRefused ? { acr_values: requiredAcr.join(" ") } : {}),
          ...(ageRefused ? { max_age: String(options.maxAge) } : {}),
        });
      }

      const scopes = typeof valid.scope === "string" ? valid.scope.split(" ").filter(Boolean) : [];
      const missing = (options.requiredScopes ?? []).filter((s) => !scopes.includes(s));
      if (missing.length > 0) return fail(403, "insufficient_scope", `the token lacks scope ${missing.join(" ")}`, scheme, { scope: (options.requiredScopes ?? []).join(" ") });
      return { ok: true, claims: valid, scopes, tokenType: scheme };
    },
  };
}

function absoluteUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`resourceMetadata ${value} is not an absolute URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError(`resourceMetadata ${value} is not an http(s) URL`);
  return url.href;
}

/** Compact JWS syntax only; the signature check decides the rest (and reference tokens have no dots). */
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
function isJws(token: string): boolean {
  return JWS_COMPACT.test(token);
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `the token's ${error.claim} claim is not acceptable`;
  if (error instanceof errors.JWKSNoMatchingKey) return "the token is signed by an unknown key";
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature is invalid";
  return "the token is invalid";
}
