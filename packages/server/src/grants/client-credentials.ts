import { ProtocolError, parseScope } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import type { GrantContext } from "./index.ts";
import { issueTokens, type TokenResponse } from "../tokens/token-service.ts";
import { parseResourceIndicators, targetResources } from "../validation/resource-indicators.ts";

/** A client-credentials request that passed RFC 6749 §4.4 and RFC 8707. */
export interface ValidatedClientCredentials {
  client: Client;
  dpopJkt?: string;
  certificateThumbprint?: string;
  scopes: string[];
  audience?: string[];
}

/**
 * RFC 6749 §4.4.2: only API scopes the client may use (all of them when none are asked for); with
 * `resource` (RFC 8707), only scopes of those resources, which become the audience.
 */
export async function validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<ValidatedClientCredentials> {
  if (client.tokenEndpointAuthMethod === "none") throw new ProtocolError("unauthorized_client", "public clients cannot use client_credentials");
  const apiScopes = new Set(deps.options.apiScopes.map((s) => s.name));
  const allowed = client.scopes.filter((s) => apiScopes.has(s));
  let scopes: string[];
  const requested = form.get("scope");
  if (requested !== undefined) {
    const parsed = parseScope(requested);
    if (!parsed || parsed.length === 0) throw new ProtocolError("invalid_scope", "scope is malformed");
    for (const scope of parsed) {
      if (!apiScopes.has(scope)) throw new ProtocolError("invalid_scope", `scope ${scope} is not an API scope`);
      if (!allowed.includes(scope)) throw new ProtocolError("invalid_scope", `scope ${scope} is not allowed for this client`);
    }
    scopes = parsed;
  } else {
    scopes = allowed;
  }

  const resources = parseResourceIndicators(form.getAll("resource"), deps.options);
  let audience: string[] | undefined;
  if (resources.length > 0) ({ audience, scopes } = targetResources(resources, scopes, deps.options, requested !== undefined));
  if (scopes.length === 0) throw new ProtocolError("invalid_scope", "no API scope is allowed for this client");
  return { client, scopes, audience, dpopJkt: context.dpopJkt, certificateThumbprint: context.certificateThumbprint };
}

/** RFC 6749 §4.4.3: an access token, no refresh token. */
export async function issue(validated: ValidatedClientCredentials, deps: ProviderDeps): Promise<TokenResponse> {
  return issueTokens(deps, { client: validated.client, scopes: validated.scopes, audience: validated.audience, dpopJkt: validated.dpopJkt, certificateThumbprint: validated.certificateThumbprint });
}
