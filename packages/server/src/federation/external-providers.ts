import * as oauth from "oauth4webapi";
import { ProtocolError, sha256Base64url } from "@tessera/protocol";
import type { DataProtector } from "../keys/data-protection.ts";
import type { GrantStore } from "../stores/interfaces.ts";
import { isStorableText } from "../stores/values.ts";

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
   * sign-in also links to the existing account with exactly the email the upstream reports as verified
   * (`email_verified: true`), when that account's email was verified locally or by a `trustEmail` provider;
   * it is refused when that account is disabled, its email differs beyond the domain's case or is not
   * verified, or a config user has the address.
   * Only for providers that own the email addresses they vouch for: otherwise it hands over accounts.
   */
  linking?: LinkingPolicy;
  /**
   * The provider's `email_verified: true` makes the email of accounts it creates verified here (Keycloak's
   * "Trust Email"; default false: stored unverified, and clients get `email_verified: false`).
   */
  trustEmail?: boolean;
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
  trustEmail: boolean;
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
  if (!options || typeof options !== "object") throw new TypeError("externalProviders: an entry must be an object");
  for (const key of ["displayName", "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "client_id", "client_secret", "scope", "id_token_signed_response_alg"] as const) {
    if (options[key] !== undefined && (typeof options[key] !== "string" || options[key].length > 2048 || !isStorableText(options[key]))) throw new TypeError(`externalProviders: ${key} must be a string of at most 2048 characters, without NUL or lone surrogates`);
  }
  if (options.token_endpoint_auth_method !== undefined && !["client_secret_basic", "client_secret_post", "none"].includes(options.token_endpoint_auth_method)) throw new TypeError("externalProviders: unknown token_endpoint_auth_method");
  if (options.response_mode !== undefined && !["query", "form_post"].includes(options.response_mode)) throw new TypeError("externalProviders: response_mode must be query or form_post");
  if (options.linking !== undefined && !["subject", "verified-email"].includes(options.linking)) throw new TypeError("externalProviders: linking must be subject or verified-email");
  if (options.syncMode !== undefined && !["import", "force"].includes(options.syncMode)) throw new TypeError("externalProviders: syncMode must be import or force");
  for (const key of ["federatedSignOut", "trustAmr", "trustEmail"] as const) if (options[key] !== undefined && typeof options[key] !== "boolean") throw new TypeError(`externalProviders: ${key} must be a boolean`);
  if (options.claims !== undefined && (!options.claims || typeof options.claims !== "object" || Array.isArray(options.claims) || Object.entries(options.claims).some(([k, v]) => typeof v !== "string" || v.length > 255 || k.length > 255 || !isStorableText(k) || !isStorableText(v)))) throw new TypeError("externalProviders: claims must map claim names to claim names");
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
    trustEmail: options.trustEmail ?? false,
  };
}

/** Seconds discovered metadata is kept before it is read again. */
const METADATA_TTL = 3600;

/** Most providers kept in the store. */
const MAX_STORED = 500;
/** Stored providers never expire (the cleanup job deletes by expiry). */
const NEVER = Number.MAX_SAFE_INTEGER;

/** Why a change to the stored providers was refused: an entry of the config (read-only), or an invalid entry. */
export class ExternalProviderError extends Error {
  constructor(
    readonly code: "config_provider" | "invalid_provider" | "too_many",
    message: string,
  ) {
    super(message);
    this.name = "ExternalProviderError";
  }
}

/**
 * Providers added at run time (admin API): one grant of kind `external_provider` each, the whole entry (its
 * client secret too) encrypted with the data key (purpose "external-provider"). Nothing is cached, so every
 * process sees a change at its next request.
 */
export class StoredExternalProviders {
  constructor(
    private readonly grants: GrantStore,
    private readonly protector: DataProtector,
    private readonly nowSeconds: () => number,
  ) {}

  private static key(id: string): string {
    return sha256Base64url(`external_provider:${id}`);
  }

  async get(id: string): Promise<ExternalProvider | undefined> {
    if (!ID.test(id)) return undefined;
    const grant = await this.grants.get(StoredExternalProviders.key(id));
    if (!grant || grant.kind !== "external_provider") return undefined;
    return this.open(grant.data);
  }

  async list(): Promise<ExternalProvider[]> {
    const grants = await this.grants.findAll({ kind: "external_provider" }, MAX_STORED);
    const out: ExternalProvider[] = [];
    for (const grant of grants) {
      const provider = await this.open(grant.data);
      if (provider) out.push(provider);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async put(options: ExternalProviderOptions): Promise<ExternalProvider> {
    const provider = resolveExternalProvider(options);
    if (!(await this.get(provider.id)) && (await this.grants.count({ kind: "external_provider" }, Number.MIN_SAFE_INTEGER, MAX_STORED)) >= MAX_STORED) {
      throw new ExternalProviderError("too_many", `at most ${MAX_STORED} providers can be stored`);
    }
    const now = this.nowSeconds();
    await this.grants.put({ key: StoredExternalProviders.key(provider.id), kind: "external_provider", clientId: provider.id, data: await this.protector.protect("external-provider", JSON.stringify(options)), createdAt: now, expiresAt: NEVER });
    return provider;
  }

  async remove(id: string): Promise<boolean> {
    if (!(await this.get(id))) return false;
    await this.grants.remove(StoredExternalProviders.key(id));
    return true;
  }

  private async open(data: string): Promise<ExternalProvider | undefined> {
    const json = await this.protector.unprotect("external-provider", data);
    if (!json) return undefined;
    try {
      return resolveExternalProvider(JSON.parse(json) as ExternalProviderOptions);
    } catch {
      return undefined;
    }
  }
}

/** The providers (config entries, then stored ones), their discovered metadata (cached), and the oauth4webapi client of each. */
export class ExternalProviderRegistry {
  private readonly byId = new Map<string, ExternalProvider>();
  private readonly metadata = new Map<string, { as: oauth.AuthorizationServer; until: number }>();

  constructor(
    providers: readonly ExternalProviderOptions[],
    private readonly fetch: (url: string, init?: RequestInit) => Promise<Response>,
    private readonly nowSeconds: () => number,
    /** Providers added at run time (admin API); config ids cannot be taken there. */
    readonly stored?: StoredExternalProviders,
  ) {
    for (const entry of providers) {
      const provider = resolveExternalProvider(entry);
      if (this.byId.has(provider.id)) throw new TypeError(`externalProviders: id ${provider.id} is used twice`);
      this.byId.set(provider.id, provider);
    }
  }

  /** A provider of the config, else a stored one. */
  async get(id: string): Promise<ExternalProvider | undefined> {
    return this.byId.get(id) ?? (await this.stored?.get(id));
  }

  /** Config providers first, then stored ones. */
  async list(): Promise<(ExternalProvider & { fixed: boolean })[]> {
    const stored = (await this.stored?.list()) ?? [];
    return [...[...this.byId.values()].map((p) => ({ ...p, fixed: true })), ...stored.filter((p) => !this.byId.has(p.id)).map((p) => ({ ...p, fixed: false }))];
  }

  /** Adds or replaces a stored provider; an id of the config is refused. */
  async put(options: ExternalProviderOptions): Promise<ExternalProvider> {
    if (!this.stored) throw new ExternalProviderError("invalid_provider", "this server keeps no providers in its store");
    if (typeof options?.id === "string" && this.byId.has(options.id)) throw new ExternalProviderError("config_provider", "this provider is defined in the config file and cannot be changed here");
    try {
      const provider = await this.stored.put(options);
      this.forget(provider.id);
      return provider;
    } catch (error) {
      if (error instanceof TypeError) throw new ExternalProviderError("invalid_provider", error.message);
      throw error;
    }
  }

  async remove(id: string): Promise<boolean> {
    if (this.byId.has(id)) throw new ExternalProviderError("config_provider", "this provider is defined in the config file and cannot be changed here");
    this.forget(id);
    return (await this.stored?.remove(id)) ?? false;
  }

  /** Drops the cached metadata of a provider (its entry changed). */
  private forget(id: string): void {
    for (const key of this.metadata.keys()) if (key.startsWith(`${id} `)) this.metadata.delete(key);
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
    // By id and issuer: a stored provider changed to another issuer is discovered afresh.
    const cacheKey = `${provider.id} ${provider.options.issuer}`;
    const cached = this.metadata.get(cacheKey);
    if (cached && cached.until > this.nowSeconds()) return cached.as;
    try {
      const issuer = new URL(provider.options.issuer!);
      const response = await oauth.discoveryRequest(issuer, { ...this.requestOptions(provider), algorithm: "oidc" });
      const as = await oauth.processDiscoveryResponse(issuer, response);
      if (!as.authorization_endpoint || !as.token_endpoint || !as.jwks_uri) throw new Error("the upstream metadata lacks authorization_endpoint, token_endpoint or jwks_uri");
      if (this.metadata.size >= MAX_STORED * 2) this.metadata.clear();
      this.metadata.set(cacheKey, { as, until: this.nowSeconds() + METADATA_TTL });
      return as;
    } catch (cause) {
      throw new ProtocolError("temporarily_unavailable", `the identity provider ${provider.displayName} cannot be reached`, { status: 503, cause });
    }
  }
}
