import { parseScope, ProtocolError } from "@tessera/protocol";
import { authenticateClient } from "../client-auth/index.ts";
import type { Client } from "../clients.ts";
import { endpointUrl, type ProviderDeps } from "../deps.ts";
import { createDeviceAuthorization, deviceKeyOfMarker } from "../device/device-flow.ts";
import type { PersistedGrant } from "../stores/interfaces.ts";
import { formatUserCode } from "../device/user-code.ts";
import type { Params } from "../http/params.ts";
import { readForm } from "../http/params.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { noStoreJson } from "../http/responses.ts";
import { parseResourceIndicators, targetResources } from "../validation/resource-indicators.ts";

/** RFC 8628 §3.4: the grant type a client must be registered for. */
export const DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code";

/**
 * RFC 8628 §3.1: the requested scopes, each known and allowed for the client (as at the authorization
 * endpoint); the client's registered scopes when the request names none.
 */
export function validateDeviceScope(form: Params, client: Client, deps: ProviderDeps): string[] {
  const requested = form.get("scope");
  if (requested === undefined) return [...client.scopes];
  const scopes = parseScope(requested);
  if (!scopes || scopes.length === 0) throw new ProtocolError("invalid_scope", "scope is malformed");
  const known = new Set([...deps.options.identityResources, ...deps.options.apiScopes.map((s) => s.name)]);
  for (const scope of scopes) {
    if (!known.has(scope)) throw new ProtocolError("invalid_scope", `scope ${scope} is unknown`);
    if (!client.scopes.includes(scope)) throw new ProtocolError("invalid_scope", `scope ${scope} is not allowed for this client`);
  }
  return scopes;
}

/** The verification page's URL (RFC 8628 §3.2 `verification_uri`). */
export function verificationUri(deps: Pick<ProviderDeps, "options">): string {
  const page = deps.options.deviceFlow.verificationUri;
  return /^https?:\/\//.test(page) ? page : endpointUrl(deps, page);
}

/**
 * POST {issuer}/connect/deviceauthorization (RFC 8628 §3.1-§3.2): authenticates the client as the token
 * endpoint does (public clients with `none`), validates the scope, and answers a device code, a user code
 * and where the user goes. Requests count against the pending-request caps, like pushed requests.
 */
export function deviceAuthorizationEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const form = await readForm(request, deps.options);
    const client = await authenticateClient(request, form, deps);
    if (!client.grantTypes.includes(DEVICE_CODE_GRANT_TYPE)) throw new ProtocolError("unauthorized_client", "the client may not use the device authorization grant");
    let scopes = validateDeviceScope(form, client, deps);
    // RFC 8707 §2 as at the authorization endpoint; without a `scope` the client's scopes narrow to the resources'.
    let resources: string[] | undefined;
    const indicated = form.getAll("resource");
    if (indicated.length > 0) {
      const target = targetResources(parseResourceIndicators(indicated, deps.options), scopes, deps.options, form.has("scope"));
      resources = target.audience;
      scopes = target.scopes;
    }
    // Anyone can start device flows with a public client id: bounded per address and in total. An
    // authenticated confidential client (one backend for many devices) counts in its own bucket, as PAR does.
    const onEvict = (marker: PersistedGrant) => deps.store.deviceCodes.remove(deviceKeyOfMarker(marker.key));
    const confidential = client.tokenEndpointAuthMethod !== "none" && client.metadataDocumentHost === undefined;
    const pending = confidential ? await deps.pendingRequests.admitClient("device_code", client.clientId, onEvict) : await deps.pendingRequests.admit("device_code", clientAddressOf(request), onEvict);
    const order = deps.pendingRequests.orderPrefix(deps.clock());
    const { deviceCode, userCode, record } = await createDeviceAuthorization(deps, client, scopes, resources);
    await deps.store.grants.put({
      // The creation-order prefix first, so a bucket's oldest is evicted first to the millisecond.
      key: `${order}${record.key}`,
      kind: "device_code",
      clientId: client.clientId,
      grantId: pending.grantId,
      subject: pending.subject,
      sessionId: pending.sessionId,
      data: "{}",
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
    });
    const uri = verificationUri(deps);
    const complete = new URL(uri);
    complete.searchParams.set("user_code", formatUserCode(userCode));
    return noStoreJson({
      device_code: deviceCode,
      user_code: formatUserCode(userCode),
      verification_uri: uri,
      verification_uri_complete: complete.toString(),
      expires_in: record.expiresAt - record.createdAt,
      interval: record.interval,
    });
  };
}
