import { ProtocolError } from "@tessera/protocol";
import { decodeProtectedHeader, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { clientPublicKeys, typeIsOneOf, useClientJti } from "../client-auth/jwt-assertion.ts";
import { REQUEST_OBJECT_ALGORITHMS, type Client, type ClientLookup } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import { Params } from "../http/params.ts";
import { AUTHORIZE_PARAMETERS, errorsStayOnPage, type AuthorizeReply } from "./authorize-request.ts";
import { iatTooFarAhead } from "./jwt-times.ts";

/** RFC 9101 §10.8 / CONTRACT §10: the longest window from `nbf` (or `iat`) to `exp`. */
export const MAX_REQUEST_OBJECT_LIFETIME = 3600;
/** The same leeway as client assertions get (client-auth/jwt-assertion.ts). */
const CLOCK_TOLERANCE = 30;
/**
 * Accepted `typ` headers, compared case-insensitively without an `application/` prefix (RFC 7515 §4.1.9):
 * absent, RFC 9101 §10.8's explicit type, or the generic `JWT` (RFC 7519 §5.1) older clients send. Any other
 * type names another kind of JWT (DPoP proof, logout token, access token) and is refused (RFC 8725 §3.11).
 */
const ACCEPTED_TYPES: ReadonlySet<string> = new Set(["oauth-authz-req+jwt", "jwt"]);

/** The registered claims jose checks here, the only claim names an error description shows. */
const CHECKED_CLAIMS: ReadonlySet<string> = new Set(["iss", "aud", "exp", "nbf", "iat", "sub", "jti"]);
const SIGNATURE_FAILED = "the request object's signature could not be verified with the client's keys";

/** The authorization request after RFC 9101 §6.3: the object's parameters alone, or the plain ones. */
export type RequestObjectResolution =
  | { ok: true; params: Params; signed: boolean }
  | { ok: false; error: ProtocolError; reply?: AuthorizeReply };

function invalidObject(description: string): ProtocolError {
  return new ProtocolError("invalid_request_object", description);
}

/**
 * RFC 9101 §5-§6: when the request carries a `request` parameter, verifies the request object (signed by
 * the client's registered key, `iss` = client_id, `aud` = this issuer, a bounded lifetime, `jti` once) and
 * returns its parameters with the outer `client_id`; every other outer parameter is ignored, not merged
 * (§6.3). Without `request` the parameters are returned as they are (`signed: false`). `authenticated` is
 * the client the PAR endpoint authenticated; at the authorization endpoint the outer `client_id` names it.
 * Errors carry a reply only to the client's single registered redirect_uri: nothing in a rejected object
 * is trusted, so its redirect_uri and state are never used.
 */
export async function resolveRequestObject(params: Params, deps: ProviderDeps, authenticated?: Client, lookup?: ClientLookup): Promise<RequestObjectResolution> {
  const jws = params.get("request");
  if (jws === undefined) return { ok: true, params, signed: false };
  const refuse = (error: ProtocolError, reply?: AuthorizeReply): RequestObjectResolution => ({ ok: false, error, reply });
  if (params.has("request_uri")) return refuse(new ProtocolError("invalid_request", "request and request_uri cannot both be used", { redirectable: false }));
  const outerClientId = authenticated?.clientId ?? params.get("client_id");
  // RFC 9101 §5: client_id is sent beside the request object, so the client is known before it is parsed.
  if (!outerClientId) return refuse(new ProtocolError("invalid_request", "client_id is missing", { redirectable: false }));
  const client = authenticated ?? (await deps.clients.findClientById(outerClientId, lookup));
  if (!client) return refuse(new ProtocolError("invalid_client", "the client is unknown", { redirectable: false }));
  const single = client.redirectUris.length === 1 && !errorsStayOnPage(client, client.redirectUris[0]!) ? client.redirectUris[0]! : undefined;
  const reply: AuthorizeReply | undefined = single === undefined ? undefined : { redirectUri: single, responseMode: "query" };
  try {
    const payload = await verifyRequestObject(jws, client, deps);
    return { ok: true, params: objectParameters(payload, client), signed: true };
  } catch (error) {
    if (error instanceof ProtocolError) return refuse(error, reply);
    throw error;
  }
}

/**
 * RFC 9101 §10.5 `require_signed_request_object`: a request that came without a request object is refused
 * (at the authorization endpoint after the plain request validated, so the error can go to its redirect_uri).
 */
export function unsignedRequestRefusal(client: Client, signed: boolean): ProtocolError | undefined {
  if (signed || !client.requireSignedRequestObject) return undefined;
  return invalidObject("this client must send its authorization request in a signed request object (RFC 9101)");
}

/** RFC 9101 §6.1-§6.2 and §10.8; the verified claims, or `invalid_request_object`. */
async function verifyRequestObject(jws: string, client: Client, deps: ProviderDeps): Promise<JWTPayload> {
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw invalidObject("the request object is not a JWS");
  }
  // Five parts would be a JWE: encrypted request objects are not supported.
  if (jws.split(".").length !== 3) throw invalidObject("the request object must be a signed JWT (JWS compact serialization)");
  // Header values are the sender's text of any JSON type: checked by type, never echoed (the description
  // may be redirected to the client), and the client's pinned algorithm or keys are not told (the detail is logged).
  const alg: unknown = header.alg;
  if (alg === undefined || alg === "none") throw invalidObject("the request object must be signed (alg none is refused)");
  const rejected = (reason: string, description = "the request object's signing algorithm is not accepted"): ProtocolError => {
    deps.logger.warn({ clientId: client.clientId, reason }, "request object rejected");
    return invalidObject(description);
  };
  const shownAlg = typeof alg === "string" ? JSON.stringify(alg.slice(0, 32)) : `(${typeof alg})`;
  if (typeof alg !== "string" || !REQUEST_OBJECT_ALGORITHMS.includes(alg)) throw rejected(`alg ${shownAlg} is not accepted for request objects`);
  if (!client.requestObjectAlgorithms.includes(alg)) throw rejected(`alg ${shownAlg} is not one of this client's request object algorithms (${client.requestObjectAlgorithms.join(", ")})`);
  if (header.typ !== undefined && !typeIsOneOf(header.typ, ACCEPTED_TYPES)) {
    throw invalidObject("the request object's typ must be oauth-authz-req+jwt");
  }
  const keys = clientPublicKeys(client, deps);
  if (!keys) throw rejected("the client has no registered keys (jwks or jwks_uri) to verify request objects", SIGNATURE_FAILED);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jws, keys, {
      algorithms: client.requestObjectAlgorithms,
      issuer: client.clientId,
      audience: deps.options.issuer,
      requiredClaims: ["iss", "aud", "exp"],
      currentDate: new Date(deps.clock()),
      clockTolerance: CLOCK_TOLERANCE,
    }));
  } catch (error) {
    const code = (error as { code?: string }).code;
    deps.logger.warn({ clientId: client.clientId, reason: (error as Error).message }, "request object rejected");
    if (code === "ERR_JWT_EXPIRED") throw invalidObject("the request object has expired");
    if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") {
      // jose names the registered claim it checked; only those names are shown.
      const claim = (error as { claim?: unknown }).claim;
      throw invalidObject(typeof claim === "string" && CHECKED_CLAIMS.has(claim) ? `the request object's ${claim} claim is invalid` : "the request object's claims are invalid");
    }
    throw invalidObject(SIGNATURE_FAILED);
  }
  const now = nowSeconds(deps);
  if (iatTooFarAhead(payload, now)) throw invalidObject("the request object's iat is in the future");
  const exp = payload.exp!;
  const start = typeof payload.nbf === "number" ? payload.nbf : typeof payload.iat === "number" ? payload.iat : now;
  // A future iat must not stretch the window: exp is also bounded from now.
  if (exp <= start || exp - start > MAX_REQUEST_OBJECT_LIFETIME || exp - now > MAX_REQUEST_OBJECT_LIFETIME + CLOCK_TOLERANCE) {
    throw invalidObject(`the request object may live at most ${MAX_REQUEST_OBJECT_LIFETIME} seconds from nbf (or iat)`);
  }
  // Replay: a jti is one-time while the object is valid, as oidc-provider does (RFC 9101 §10.8 leaves it optional).
  if (payload.jti !== undefined) {
    if (typeof payload.jti !== "string" || payload.jti === "") throw invalidObject("the request object's jti must be a string");
    // One record for every JWT the client signs: an object cannot be replayed as a client assertion.
    if (!(await useClientJti(deps, client.clientId, payload.jti, exp, now, CLOCK_TOLERANCE))) throw invalidObject("the request object was already used (jti)");
  }
  return payload;
}

/**
 * RFC 9101 §4-§6.3: the authorization parameters the object carries (the JWT claims that name parameters
 * this provider reads), plus the client_id. Strings stay as they are, numbers and booleans (`max_age`)
 * become their JSON text, arrays of strings repeat a parameter; anything else is malformed.
 */
function objectParameters(payload: JWTPayload, client: Client): Params {
  if ("request" in payload || "request_uri" in payload) throw invalidObject("a request object must not contain request or request_uri (RFC 9101 section 4)");
  if (payload.client_id !== undefined && payload.client_id !== client.clientId) throw invalidObject("the request object's client_id does not match the client");
  const entries: [string, string][] = [];
  for (const [name, value] of Object.entries(payload)) {
    if (name === "client_id" || !AUTHORIZE_PARAMETERS.has(name) || value === null) continue;
    const values = Array.isArray(value) ? value : [value];
    if (Array.isArray(value) && name !== "resource") throw invalidObject(`the request object's ${name} must be a single value`);
    for (const item of values) {
      if (typeof item === "string") {
        // RFC 6749 §3.1: an empty value counts as omitted, as in a query string.
        if (item !== "") entries.push([name, item]);
      } else if ((typeof item === "number" && Number.isFinite(item)) || typeof item === "boolean") {
        entries.push([name, String(item)]);
      } else {
        throw invalidObject(`the request object's ${name} must be a string`);
      }
    }
  }
  entries.push(["client_id", client.clientId]);
  return Params.fromEntries(entries);
}
