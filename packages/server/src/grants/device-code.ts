import { DEVICE_CODE_GRANT_TYPE } from "../endpoints/device-authorization.ts";
import { redeemDeviceCode, type DeviceFlowDeps, type RedeemedDeviceCode } from "../device/device-flow.ts";
import { grantTarget } from "../validation/resource-indicators.ts";
import type { ExtensionGrant } from "./extension.ts";

export { DEVICE_CODE_GRANT_TYPE };

/**
 * The device code grant (RFC 8628 §3.4-§3.5) on the public extension-grant API, as an embedder would write
 * it: `validate` runs the polling state machine over the device-code store, `issue` issues as the code
 * flow does (ID token with `openid`, refresh token with `offline_access`, DPoP- or certificate-bound when
 * the poll carries a proof or certificate, which the API applies).
 */
export function deviceCodeGrant(deps: DeviceFlowDeps): ExtensionGrant<RedeemedDeviceCode> {
  return {
    validate: (request) =>
      redeemDeviceCode(deps, { clientId: request.client.clientId, coordinateLifetimeWithUserSession: request.client.metadata.coordinate_lifetime_with_user_session === true }, request.params.get("device_code"), (grant) => {
        grantTarget(request.params.getAll("resource"), grant, grant.scopes, deps.options, false);
      }),
    // RFC 8707 §2.2 as for a code: `resource` at the poll picks among the indicated resources (one is best).
    issue: (redeemed, request) => {
      const { scopes, audience } = grantTarget(request.params.getAll("resource"), redeemed, redeemed.scopes, deps.options, false);
      return request.issueTokens({ session: redeemed.session, scopes, ...(audience ? { audience } : {}), ...(redeemed.resources ? { resources: redeemed.resources } : {}), refreshToken: redeemed.scopes.includes("offline_access"), idToken: true });
    },
  };
}

/** The provider's own grants built on the public API (`createGrantRegistry`'s second argument). */
export function deviceGrants(deps: DeviceFlowDeps): Record<string, ExtensionGrant> {
  return { [DEVICE_CODE_GRANT_TYPE]: deviceCodeGrant(deps) as ExtensionGrant };
}

