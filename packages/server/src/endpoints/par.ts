import { ProtocolError, randomHandle, sha256Base64url } from "@tessera/protocol";
import { authenticateClient } from "../client-auth/index.ts";
import { endpointUrlFor, nowSeconds, PATHS, type ProviderDeps } from "../deps.ts";
import { Params, readForm } from "../http/params.ts";
import { noStoreJson } from "../http/responses.ts";
import type { PersistedGrant } from "../stores/interfaces.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { assertPendingSize } from "../security/pending-requests.ts";
import { validateAuthorizeRequest } from "../validation/authorize-request.ts";
import { issueDpopNonce, validateDpop } from "../validation/dpop.ts";
import { resolveRequestObject, unsignedRequestRefusal } from "../validation/request-object.ts";

/** RFC 9126 §2.2: the prefix of every request_uri this endpoint issues. */
export const PAR_REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:";

/** The store key of a pushed request: a hash of its request_uri, never the value itself. */
export function parKey(requestUri: string): string {
  return sha256Base64url(requestUri);
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
    const form = await readForm(request, deps.options);
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
    const dpop = await validateDpop(request, deps, endpointUrlFor(deps, request, PATHS.par));
    if (dpop) {
      const requested = pushedParams.get("dpop_jkt");
      // RFC 9449 §10.1: both given, they must name the same key.
      if (requested !== undefined && requested !== dpop.jkt) throw new ProtocolError("invalid_dpop_proof", "dpop_jkt does not match the DPoP proof's key");
      if (requested === undefined) entries.push(["dpop_jkt", dpop.jkt]);
    }
    const validation = await validateAuthorizeRequest(Params.fromEntries(entries), deps, "par");
    if (!validation.ok) throw new ProtocolError(validation.error.code, validation.error.description, { status: 400 });
    const params = [...validation.value.params];
    // The same bounds as a pending authorization request: what authorize would refuse is refused here,
    // and pushes count against the per-address and total caps (a public client needs no credentials).
    assertPendingSize({ clientId: client.clientId, params, createdAt: deps.clock() }, 512, false);
    const pending = await deps.pendingRequests.admit("par", clientAddressOf(request));
    const requestUri = PAR_REQUEST_URI_PREFIX + randomHandle(32);
    const now = nowSeconds(deps);
    const lifetime = deps.options.par.requestUriLifetime;
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

/**
 * RFC 9126 §4: the pushed parameters behind a request_uri, taken once (atomically, across processes) and
 * then removed.
 * Undefined when it was not issued here, expired, was used already, or belongs to another client.
 */
export async function takePushedRequest(deps: ProviderDeps, requestUri: string, clientId: string): Promise<Params | undefined> {
  if (!requestUri.startsWith(PAR_REQUEST_URI_PREFIX)) return undefined;
  const key = parKey(requestUri);
  const now = nowSeconds(deps);
  const grant = await deps.store.grants.get(key);
  if (!grant || grant.kind !== "par" || grant.clientId !== clientId || grant.expiresAt <= now || grant.consumedAt !== undefined) return undefined;
  const consumed = await deps.store.grants.consume(key, now);
  if (!consumed?.firstUse) return undefined;
  // Used, it is gone: a used push must not hold a place in its address's pending cap (a confidential
  // client's backend pushes for all its users from one address) and would only ever be refused again.
  await deps.store.grants.remove(key);
  try {
    return Params.fromEntries(JSON.parse(consumed.grant.data) as [string, string][]);
  } catch {
    return undefined;
  }
}
