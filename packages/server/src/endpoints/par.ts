import { ProtocolError, randomHandle, sha256Base64url } from "@tessera/protocol";
import { authenticateClient } from "../client-auth/index.ts";
import { endpointUrlFor, nowSeconds, PATHS, type ProviderDeps } from "../deps.ts";
import { Params, readForm, requestObjectLimits } from "../http/params.ts";
import { noStoreJson } from "../http/responses.ts";
import type { PersistedGrant } from "../stores/interfaces.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { assertPendingSize } from "../security/pending-requests.ts";
import { validateAuthorizeRequest } from "../validation/authorize-request.ts";
import { issueDpopNonce, validateDpop } from "../validation/dpop.ts";
import { resolveRequestObject, unsignedRequestRefusal } from "../validation/request-object.ts";

/** RFC 9126 §2.2: the prefix of every request_uri this endpoint issues. */
export const PAR_REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:";

/** Width of the creation-order prefix a request_uri's handle starts with (then a `.`). */
const ORDER_WIDTH = 7;

/**
 * The store key of a pushed request: a hash of its request_uri, never the value itself, after the
 * creation-order prefix the request_uri carries (so a bucket's oldest is evicted first to the
 * millisecond, see PendingRequestCap.orderPrefix). A request_uri without one (issued before) keys by its hash.
 */
export function parKey(requestUri: string): string {
  const handle = requestUri.slice(PAR_REQUEST_URI_PREFIX.length);
  const order = handle.charAt(ORDER_WIDTH) === "." && /^[0-9a-z]+$/.test(handle.slice(0, ORDER_WIDTH)) ? handle.slice(0, ORDER_WIDTH) : "";
  return order + sha256Base64url(requestUri);
}

/** Client authentication parameters (RFC 6749 §2.3, RFC 7523): not part of the authorization request. */
const CLIENT_AUTH_PARAMETERS = new Set(["client_secret", "client_assertion", "client_assertion_type"]);

/**
 * POST {issuer}/connect/par (RFC 9126 §2): authenticates the client as the token endpoint does, validates
 * the authorization request as the authorization endpoint does (errors as JSON, never a redirect), binds
 * a DPoP key (RFC 9449 §10.1) and answers a one-time request_uri.
 */
export function parEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const form = await readForm(request, requestObjectLimits(deps.options));
    const client = await authenticateClient(request, form, deps);
    if (form.has("request_uri")) throw new ProtocolError("invalid_request", "request_uri must not be pushed (RFC 9126 §2.1)");
    // RFC 9126 §3 / RFC 9101 §6.3: a pushed request object's parameters replace the form's.
    const resolved = await resolveRequestObject(form, deps, client);
    if (!resolved.ok) throw new ProtocolError(resolved.error.code, resolved.error.description, { status: 400 });
    const unsigned = unsignedRequestRefusal(client, resolved.signed);
    if (unsigned) throw unsigned;
    const pushedParams = resolved.params;
    const entries: [string, string][] = [...pushedParams].filter(([name]) => !CLIENT_AUTH_PARAMETERS.has(name) && name !== "client_id");
    entries.push(["client_id", client.clientId]);
    // FAPI 2.0 SP §5.4.1: the client's profile narrows the proof algorithms here as at the token endpoint.
    const dpop = await validateDpop(request, deps, endpointUrlFor(deps, request, PATHS.par), { algorithms: client.dpopAlgorithms });
    if (dpop) {
      const requested = pushedParams.get("dpop_jkt");
      // RFC 9449 §10.1: both given, they must name the same key.
      if (requested !== undefined && requested !== dpop.jkt) throw new ProtocolError("invalid_dpop_proof", "dpop_jkt does not match the DPoP proof's key");
      if (requested === undefined) entries.push(["dpop_jkt", dpop.jkt]);
    }
    const validation = await validateAuthorizeRequest(Params.fromEntries(entries), deps, "par");
    if (!validation.ok) throw new ProtocolError(validation.error.code, validation.error.description, { status: 400 });
    const params = [...validation.value.params];
    // The same bounds as a pending authorization request: what authorize would refuse is refused here.
    assertPendingSize({ clientId: client.clientId, params, createdAt: deps.clock() }, 512, false);
    // A public client needs no credentials: its pushes count against the per-address and total caps. An
    // authenticated confidential client's backend pushes for all its users from one address: its pushes
    // count in its own bucket only (a client known by a metadata document is anyone's, so counts as public).
    const confidential = client.tokenEndpointAuthMethod !== "none" && client.metadataDocumentHost === undefined;
    const pending = confidential ? await deps.pendingRequests.admitClient("par", client.clientId) : await deps.pendingRequests.admit("par", clientAddressOf(request));
    const nowMs = deps.clock();
    const requestUri = `${PAR_REQUEST_URI_PREFIX}${deps.pendingRequests.orderPrefix(nowMs)}.${randomHandle(32)}`;
    const now = Math.floor(nowMs / 1000);
    // The client's profile may shorten it (FAPI 2.0 SP §5.3.2.2: less than 600 s).
    const lifetime = Math.min(deps.options.par.requestUriLifetime, client.requestUriLifetime ?? Infinity);
    const grant: PersistedGrant = {
      key: parKey(requestUri),
      kind: "par",
      clientId: client.clientId,
      grantId: pending.grantId,
      subject: pending.subject,
      sessionId: pending.sessionId,
      data: JSON.stringify(params),
      createdAt: now,
      expiresAt: now + lifetime,
    };
    await deps.store.grants.put(grant);
    const headers: Record<string, string> = dpop && deps.options.dpop.requireNonce ? { "dpop-nonce": issueDpopNonce(deps) } : {};
    return noStoreJson({ request_uri: requestUri, expires_in: lifetime }, 201, headers);
  };
}

/**
 * Any method but POST (and the CORS preflight) at the PAR endpoint: 405 with `Allow: POST` (RFC 9126 §2
 * takes POST only; RFC 9110 §15.5.6), as a JSON error rather than a not-found.
 */
export function parMethodNotAllowed(): Promise<Response> {
  return Promise.reject(new ProtocolError("invalid_request", "the pushed authorization request endpoint accepts only POST", { status: 405, headers: { allow: "POST" } }));
}

/** A pushed request an authorization in progress stands on: its store key and when its request_uri expires. */
export interface PushedRequestRef {
  key: string;
  /** Unix seconds. */
  expiresAt: number;
}

/** The marker that a pushed request's one authorization completed (a hash of its key, never the request_uri). */
function completionKey(ref: PushedRequestRef): string {
  return sha256Base64url(`par-completed:${ref.key}`);
}

/**
 * RFC 9126 §4: the pushed parameters behind a request_uri, for the client that pushed it. Reading does not
 * use it up: FAPI 2.0 SP §5.3.2.2 (NOTE 3) makes it one-time at completion, so a link preloader or a reload
 * before the user finishes does not break the flow; {@link completePushedRequest} takes it when the
 * request ends. A visit moves the push from the pushing address's pending count to the visitor's
 * (`address`), so a backend that pushes for all its users never evicts one for another's visit.
 * Undefined when it was not issued here, expired, was completed already, or belongs to another client.
 */
export async function readPushedRequest(deps: ProviderDeps, requestUri: string, clientId: string, address?: string): Promise<{ params: Params; ref: PushedRequestRef } | undefined> {
  if (!requestUri.startsWith(PAR_REQUEST_URI_PREFIX)) return undefined;
  const key = parKey(requestUri);
  const now = nowSeconds(deps);
  const grant = await deps.store.grants.get(key);
  if (!grant || grant.kind !== "par" || grant.clientId !== clientId || grant.expiresAt <= now || grant.consumedAt !== undefined) return undefined;
  const ref = { key, expiresAt: grant.expiresAt };
  if (await deps.store.grants.get(completionKey(ref))) return undefined;
  let params: Params;
  try {
    params = Params.fromEntries(JSON.parse(grant.data) as [string, string][]);
  } catch {
    return undefined;
  }
  // A confidential client's push stays in its own bucket; a public client's moves to the visitor's address.
  if (!grant.grantId?.startsWith("pending:client:")) {
    const tags = await deps.pendingRequests.admit("par", address);
    const { subject: _subject, sessionId: _sessionId, ...rest } = grant;
    await deps.store.grants.put({ ...rest, ...tags });
  }
  return { params, ref };
}

/**
 * Ends the one authorization a pushed request allows (a code, or an error or denial sent to the client):
 * exactly one caller, across every process sharing the store, gets true; the request_uri is removed.
 * The marker outlives every interaction that may still stand on the push.
 */
export async function completePushedRequest(deps: ProviderDeps, ref: PushedRequestRef, clientId: string): Promise<boolean> {
  const won = await deps.store.grants.putIfAbsent({
    key: completionKey(ref),
    kind: "replay",
    clientId,
    data: "{}",
    createdAt: nowSeconds(deps),
    expiresAt: ref.expiresAt + deps.options.interactionLifetime,
  });
  await deps.store.grants.remove(ref.key);
  return won;
}
