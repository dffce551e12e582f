import * as oauth from "oauth4webapi";
import { ProtocolError } from "@tessera/protocol";

/** How a first sign-in through a provider finds its local account (contract §15). */
export type LinkingPolicy = "subject" | "verified-email";

/**
 * An external identity provider (IdentityServer's external providers, Keycloak's identity brokering). With
 * `issuer` it is an OpenID Connect provider found by discovery; without, a plain OAuth 2.0 provider given by
 * its endpoints and a userinfo URL (GitHub style), whose user id is the `claims.sub` member of userinfo.
 */
export interface ExternalProviderOptions {
  /** Letters, digits, `_` and `-` (1 to 64): the path segment of `{issuer}/federation/{id}/callback` and the session's `idp`. */
  id: string;
  /** Shown on the login button and the pages (default: the id). */
  displayName?: string;
  /** OpenID Connect: the upstream issuer, found at `{issuer}/.well-known/openid-configuration`. */
  issuer?: string;
  /** Plain OAuth 2.0 (no `issuer`): the endpoints. */
  authorization_endpoint?: string;
  token_endpoint?: string;
  userinfo_endpoint?: string;
  client_id: string;
  client_secret?: string;
  /** The algorithm the upstream signs ID tokens with for Tessera (OIDC Registration; default RS256). */
  id_token_signed_response_alg?: string;
  /** How Tessera authenticates at the upstream's token endpoint (default `client_secret_basic`). */
  token_endpoint_auth_method?: "client_secret_basic" | "client_secret_post" | "none";
  /** Default "openid profile email" (OpenID Connect) or none (OAuth 2.0). */
  scope?: string;
  /** `form_post` asks the upstream to POST the response (no cookie is needed on the way back). Default `query`. */
  response_mode?: "query" | "form_post";
  /** Local claim name -> upstream claim name (default `{ name: "name", email: "email" }`); `sub` names the user id of an OAuth 2.0 provider's userinfo (default "sub"). */
  claims?: Record<string, string>;
  /** `import`: mapped claims are copied at the first sign-in only; `force`: updated at every sign-in (Keycloak's sync modes). Default `import`. */
  syncMode?: "import" | "force";
  /**
   * `subject` (default): accounts are found by (upstream `iss`, upstream `sub`) only. `verified-email`: a first
   * sign-in also links to the one existing account with the email the upstream reports as verified
   * (`email_verified: true`); it is refused when that account is disabled or several accounts match.
   * Only for providers that own the email addresses they vouch for: otherwise it hands over accounts.
   */
  linking?: LinkingPolicy;
  /** RP-initiated logout at Tessera also signs out at the provider when it has an `end_session_endpoint` (default false). */
  federatedSignOut?: boolean;
  /** Take `amr` from the upstream ID token (default false: the session's `amr` is `["external"]`, as IdentityServer's). */
  trustAmr?: boolean;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A provider with its defaults applied. */
export interface ExternalProvider {
  id: string;
  displayName: string;
  kind: "oidc" | "oauth2";
  /** The issuer accounts are linked under: the upstream `iss`, or `urn:tessera:oauth2:{id}` for OAuth 2.0. */
  linkIssuer: string;
  options: ExternalProviderOptions;
  scope: string;
  claims: Record<string, string>;
  syncMode: "import" | "force";
  linking: LinkingPolicy;
  federatedSignOut: boolean;
  trustAmr: boolean;
}

function checkUrl(value: string | undefined, what: string): void {
  if (value === undefined) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${what} is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError(`${what} must be http(s)`);
}

/** Checks an entry and applies its defaults; throws a TypeError naming the problem. */
export function resolveExternalProvider(options: ExternalProviderOptions): ExternalProvider {
  const where = `externalProviders ${options.id}`;
  if (typeof options.id !== "string" || !ID.test(options.id)) throw new TypeError(`externalProviders: id must be 1 to 64 letters, digits, _ or -`);
  if (!options.client_id) throw new TypeError(`${where}: client_id is required`);
  checkUrl(options.issuer, `${where}: issuer`);
  checkUrl(options.authorization_endpoint, `${where}: authorization_endpoint`);
  checkUrl(options.token_endpoint, `${where}: token_endpoint`);
  checkUrl(options.userinfo_endpoint, `${where}: userinfo_endpoint`);
  const oidc = options.issuer !== undefined;
  if (!oidc && (!options.authorization_endpoint || !options.token_endpoint || !options.userinfo_endpoint)) {
    throw new TypeError(`${where}: give issuer (OpenID Connect) or authorization_endpoint, token_endpoint and userinfo_endpoint (OAuth 2.0)`);
  }
  const method = options.token_endpoint_auth_method ?? "client_secret_basic";
  if (method !== "none" && !options.client_secret) throw new TypeError(`${where}: client_secret is required for ${method}`);
  if (!oidc && options.linking === "verified-email") throw new TypeError(`${where}: verified-email linking needs an OpenID Connect provider (email_verified)`);
  return {
    id: options.id,
    displayName: options.displayName ?? options.id,
    kind: oidc ? "oidc" : "oauth2",
    linkIssuer: oidc ? options.issuer! : `urn:tessera:oauth2:${options.id}`,
    options,
    scope: options.scope ?? (oidc ? "openid profile email" : ""),
    claims: options.claims ?? { name: "name", email: "email" },
    syncMode: options.syncMode ?? "import",
    linking: options.linking ?? "subject",
    federatedSignOut: options.federatedSignOut ?? false,
    trustAmr: options.trustAmr ?? false,
  };
}

/** Seconds discovered metadata is kept before it is read again. */
const METADATA_TTL = 3600;

/** The configured providers, their discovered metadata (cached), and the oauth4webapi client of each. */
export class ExternalProviderRegistry {
  private readonly byId = new Map<string, ExternalProvider>();
  private readonly metadata = new Map<string, { as: oauth.AuthorizationServer; until: number }>();

  constructor(
    providers: readonly ExternalProviderOptions[],
    private readonly fetch: (url: string, init?: RequestInit) => Promise<Response>,
    private readonly nowSeconds: () => number,
  ) {
    for (const entry of providers) {
      const provider = resolveExternalProvider(entry);
      if (this.byId.has(provider.id)) throw new TypeError(`externalProviders: id ${provider.id} is used twice`);
      this.byId.set(provider.id, provider);
    }
  }

  get(id: string): ExternalProvider | undefined {
    return this.byId.get(id);
  }

  list(): ExternalProvider[] {
    return [...this.byId.values()];
  }

  /** Options for every oauth4webapi call: the outbound rules' fetch, http allowed only where configured so. */
  requestOptions(provider: ExternalProvider): { [oauth.customFetch]: typeof fetch; [oauth.allowInsecureRequests]: boolean } {
    const insecure = [provider.options.issuer, provider.options.authorization_endpoint, provider.options.token_endpoint].some((u) => u?.startsWith("http:"));
    return { [oauth.customFetch]: ((url: string, init: RequestInit) => this.fetch(url, init)) as typeof fetch, [oauth.allowInsecureRequests]: insecure };
  }

  client(provider: ExternalProvider): oauth.Client {
    return { client_id: provider.options.client_id, ...(provider.options.id_token_signed_response_alg ? { id_token_signed_response_alg: provider.options.id_token_signed_response_alg } : {}) };
  }

  clientAuth(provider: ExternalProvider): oauth.ClientAuth {
    const method = provider.options.token_endpoint_auth_method ?? "client_secret_basic";
    if (method === "none") return oauth.None();
    return method === "client_secret_post" ? oauth.ClientSecretPost(provider.options.client_secret!) : oauth.ClientSecretBasic(provider.options.client_secret!);
  }

  /**
   * The provider's authorization server metadata: discovered (and cached for an hour) for OpenID Connect,
   * built from the entry for OAuth 2.0. An unreachable or invalid upstream is `temporarily_unavailable`.
   */
  async serverMetadata(provider: ExternalProvider): Promise<oauth.AuthorizationServer> {
    if (provider.kind === "oauth2") {
      const o = provider.options;
      return { issuer: provider.linkIssuer, authorization_endpoint: o.authorization_endpoint, token_endpoint: o.token_endpoint, userinfo_endpoint: o.userinfo_endpoint };
    }
    const cached = this.metadata.get(provider.id);
    if (cached && cached.until > this.nowSeconds()) return cached.as;
    try {
      const issuer = new URL(provider.options.issuer!);
      const response = await oauth.discoveryRequest(issuer, { ...this.requestOptions(provider), algorithm: "oidc" });
      const as = await oauth.processDiscoveryResponse(issuer, response);
      if (!as.authorization_endpoint || !as.token_endpoint || !as.jwks_uri) throw new Error("the upstream metadata lacks authorization_endpoint, token_endpoint or jwks_uri");
      this.metadata.set(provider.id, { as, until: this.nowSeconds() + METADATA_TTL });
      return as;
    } catch (cause) {
      throw new ProtocolError("temporarily_unavailable", `the identity provider ${provider.displayName} cannot be reached`, { status: 503, cause });
    }
  }
}
