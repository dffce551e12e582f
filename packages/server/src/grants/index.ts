import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import type { TokenResponse } from "../tokens/token-service.ts";
import * as authorizationCode from "./authorization-code.ts";
import * as clientCredentials from "./client-credentials.ts";
import * as refreshToken from "./refresh-token.ts";
import { adaptExtensionGrant, BUILT_IN_GRANT_TYPES, checkExtensionGrants, type ExtensionGrant } from "./extension.ts";

/** What the token endpoint established before the grant runs. */
export interface GrantContext {
  /** Thumbprint of the request's valid DPoP proof key (RFC 9449), if it had one. */
  dpopJkt?: string;
  /** Thumbprint of the client certificate to bind tokens to (RFC 8705 §3), for clients that asked for it. */
  certificateThumbprint?: string;
}

/** A token-endpoint grant: validate every rule, then issue. */
export interface Grant<V> {
  /** Parameters the grant accepts more than once, besides `resource`. */
  repeatableParameters?: readonly string[];
  validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<V>;
  issue(validated: V, deps: ProviderDeps): Promise<TokenResponse>;
}

/** The grants by `grant_type`: built-ins first, then extension grants, in order. */
export type GrantRegistry = ReadonlyMap<string, Grant<unknown>>;

const builtInGrants: Record<string, Grant<unknown>> = {
  authorization_code: authorizationCode as Grant<authorizationCode.ValidatedCodeGrant> as Grant<unknown>,
  refresh_token: refreshToken as Grant<refreshToken.ValidatedRefresh> as Grant<unknown>,
  client_credentials: clientCredentials as Grant<clientCredentials.ValidatedClientCredentials> as Grant<unknown>,
};

/**
 * The grant registry: the built-ins, the provider's own grants made on the public API (token exchange),
 * then the embedder's. Throws when an embedder's grant would replace one of the first two kinds.
 */
export function createGrantRegistry(provided: Readonly<Record<string, ExtensionGrant>>, embedded: Readonly<Record<string, ExtensionGrant>> = {}): GrantRegistry {
  checkExtensionGrants(provided, [...BUILT_IN_GRANT_TYPES, ...Object.keys(embedded)]);
  const registry = new Map<string, Grant<unknown>>(Object.entries(builtInGrants));
  for (const [grantType, grant] of [...Object.entries(embedded), ...Object.entries(provided)]) {
    registry.set(grantType, adaptExtensionGrant(grantType, grant) as Grant<unknown>);
  }
  return registry;
}
