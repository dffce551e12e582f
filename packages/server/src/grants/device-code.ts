import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import { redeemDeviceCode, type RedeemedDeviceCode } from "../device/device-flow.ts";
import type { Params } from "../http/params.ts";
import { createRefreshToken, wantsRefreshToken } from "../tokens/refresh-tokens.ts";
import { issueTokens, type TokenResponse } from "../tokens/token-service.ts";
import type { GrantContext } from "./index.ts";

/** A redeemed device code and the token endpoint's bindings. */
export interface ValidatedDeviceCode extends RedeemedDeviceCode {
  dpopJkt?: string;
  certificateThumbprint?: string;
}

/** RFC 8628 §3.4: `device_code`, polled by the client the code was issued to. */
export async function validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<ValidatedDeviceCode> {
  const redeemed = await redeemDeviceCode(deps, client, form.get("device_code"));
  return { ...redeemed, dpopJkt: context.dpopJkt, certificateThumbprint: context.certificateThumbprint };
}

/** Issues the tokens as the code flow does: ID token with openid, refresh token with offline_access, DPoP-bound with a proof. */
export async function issue(validated: ValidatedDeviceCode, deps: ProviderDeps): Promise<TokenResponse> {
  const { client, scopes, user } = validated;
  // Public clients' refresh tokens are bound to the DPoP key (RFC 9449 §5) and the client certificate (RFC 8705 §4).
  const bindTo = client.tokenEndpointAuthMethod === "none" ? { dpopJkt: validated.dpopJkt, certificateThumbprint: validated.certificateThumbprint } : undefined;
  const refreshToken = wantsRefreshToken(client, scopes) ? () => createRefreshToken(deps, client, user, scopes, undefined, bindTo) : undefined;
  return issueTokens(deps, { client, scopes, user, refreshToken, dpopJkt: validated.dpopJkt, certificateThumbprint: validated.certificateThumbprint });
}
