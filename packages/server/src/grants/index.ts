import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import type { TokenResponse } from "../tokens/token-service.ts";
import * as authorizationCode from "./authorization-code.ts";
import * as clientCredentials from "./client-credentials.ts";
import * as refreshToken from "./refresh-token.ts";
import * as deviceCode from "./device-code.ts";

/** What the token endpoint established before the grant runs. */
export interface GrantContext {
  /** Thumbprint of the request's valid DPoP proof key (RFC 9449), if it had one. */
  dpopJkt?: string;
  /** Thumbprint of the client certificate to bind tokens to (RFC 8705 §3), for clients that asked for it. */
  certificateThumbprint?: string;
}

/** A token-endpoint grant: validate every rule, then issue. */
export interface Grant<V> {
  validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<V>;
  issue(validated: V, deps: ProviderDeps): Promise<TokenResponse>;
}

/** The grants by `grant_type`. */
export const grants: Record<string, Grant<unknown>> = {
  authorization_code: authorizationCode as Grant<authorizationCode.ValidatedCodeGrant> as Grant<unknown>,
  refresh_token: refreshToken as Grant<refreshToken.ValidatedRefresh> as Grant<unknown>,
  client_credentials: clientCredentials as Grant<clientCredentials.ValidatedClientCredentials> as Grant<unknown>,
  "urn:ietf:params:oauth:grant-type:device_code": deviceCode as Grant<deviceCode.ValidatedDeviceCode> as Grant<unknown>,
};
