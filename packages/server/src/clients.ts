import { createHash } from "node:crypto";
import type { JWK } from "jose";
import type { StoredClientSecret } from "./stores/interfaces.ts";
import { isLoopbackIpRedirect, redirectUriProblem } from "./validation/redirect-uri.ts";

/** Client authentication methods at the token endpoint implemented so far. */
export type TokenEndpointAuthMethod = "client_secret_basic" | "client_secret_post" | "client_secret_jwt" | "private_key_jwt" | "tls_client_auth" | "self_signed_tls_client_auth" | "none";
export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth", "none"];

/** The RFC 8705 §2 methods, which need the host's mutual TLS. */
export const TLS_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ["tls_client_auth", "self_signed_tls_client_auth"];

/** Algorithms accepted for client assertions: asymmetric for private_key_jwt, HMAC for client_secret_jwt. */
export const ASSERTION_ALGORITHMS = {
  private_key_jwt: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"],
  client_secret_jwt: ["HS256", "HS384", "HS512"],
} as const;

/** RFC 9101: request objects are signed with the client's asymmetric key only (no `none`, no HMAC). */
export const REQUEST_OBJECT_ALGORITHMS: readonly string[] = ASSERTION_ALGORITHMS.private_key_jwt;

/** Security profiles a client can be registered under (client extension `security_profile`). */
export type SecurityProfile = "fapi2";
export const SECURITY_PROFILES: readonly SecurityProfile[] = ["fapi2"];

/** FAPI 2.0 Security Profile §5.4.1: the only JWS algorithms for assertions and signed tokens. */
export const FAPI2_SIGNING_ALGORITHMS: readonly string[] = ["PS256", "ES256", "EdDSA"];

/** FAPI 2.0 SP §5.3.2.1-6: client authentication by private_key_jwt or mutual TLS (RFC 8705 §2) only. */
const FAPI2_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"];

/**
 * The grants a FAPI 2.0 client may list: the profile analyses the authorization code flow (§5.3.2.2) with
 * its refresh tokens, and client_credentials is common in FAPI ecosystems (no user, same client
 * authentication and sender-constraining). Others (password, implicit, device code, extension grants) are
 * outside what the profile's attacker model covers.
 */
export const FAPI2_GRANT_TYPES: readonly string[] = ["authorization_code", "refresh_token", "client_credentials"];

/** FAPI 2.0 SP §5.3.2.2: a pushed request's request_uri lives less than 600 seconds. */
export const FAPI2_REQUEST_URI_LIFETIME = 599;

/** FAPI 2.0 SP §5.3.2.1-11 (as the conformance suite cites it): authorization codes live at most 60 seconds. */
export const FAPI2_CODE_LIFETIME = 60;

/**
 * A client as registered: RFC 7591 / OIDC Registration names plus Tessera's extensions
 * (`require_pkce`, `require_consent`, `coordinate_lifetime_with_user_session`, `access_token_format`, lifetimes).
 */
export interface ClientMetadata {
  client_id: string;
  client_secret?: string;
  client_name?: string;
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  scope?: string;
  token_endpoint_auth_method?: string;
  token_endpoint_auth_signing_alg?: string;
  /** Public keys for private_key_jwt (RFC 7591 `jwks`). */
  jwks?: { keys: JWK[] };
  /** Where the public keys for private_key_jwt are published. */
  jwks_uri?: string;
  id_token_signed_response_alg?: string;
  require_pkce?: boolean;
  require_consent?: boolean;
  access_token_format?: "jwt" | "reference";
  access_token_lifetime?: number;
  frontchannel_logout_uri?: string;
  frontchannel_logout_session_required?: boolean;
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
  /** OIDC Registration §2: acr values asked for when a request has no `acr_values`. */
  default_acr_values?: string[];
  /** Tessera extension: every authorization of this client needs a second factor (acr `mfa` or stronger). */
  require_second_factor?: boolean;
  coordinate_lifetime_with_user_session?: boolean;
  dpop_bound_access_tokens?: boolean;
  /** RFC 9126 §6: authorization requests only through the PAR endpoint. */
  require_pushed_authorization_requests?: boolean;
  /** RFC 9101 §10.5 / OIDC Registration: the one algorithm its request objects must use. */
  request_object_signing_alg?: string;
  /** RFC 9101 §10.5: every authorization request must come in a signed request object. */
  require_signed_request_object?: boolean;
  tls_client_auth_subject_dn?: string;
  tls_client_auth_san_dns?: string;
  tls_client_auth_san_uri?: string;
  tls_client_auth_san_ip?: string;
  tls_client_auth_san_email?: string;
  tls_client_certificate_bound_access_tokens?: boolean;
  refresh_token_absolute_lifetime?: number;
  refresh_token_sliding_lifetime?: number;
  /**
   * Seconds after a rotation in which the old refresh token may be used again and yields the same new
   * refresh token (concurrent refreshes from several tabs or pods); 0, the default, means strict one-time use.
   */
  refresh_token_reuse_grace_period?: number;
  /** `fapi2`: the FAPI 2.0 Security Profile applies to this client (contract §10); see {@link normalizeClient}. */
  security_profile?: SecurityProfile;
  /** RFC 8693: the client may exchange a token without an actor_token (impersonation); default false. */
  token_exchange_allow_impersonation?: boolean;
  [extension: string]: unknown;
}

/** A client ready for the protocol code: defaults applied, secret hashed. */
export interface Client {
  clientId: string;
  clientName: string;
  /** For a client known by its Client ID Metadata Document: the host and path of its URL, shown to the user. */
  metadataDocumentHost?: string;
  /** SHA-256 of the secret, base64url; the secret itself is not kept. */
  secretHash?: string;
  /** A stored client's secrets (hashes, with optional expiry): any unexpired one authenticates. */
  secrets: readonly StoredClientSecret[];
  /** Where the client comes from: the config (read-only) or the store (admin API, dynamic registration). */
  source: "config" | "store";
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  responseTypes: string[];
  scopes: string[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** The plain secret, kept only for client_secret_jwt, where it is the HMAC key. */
  sharedSecret?: string;
  /** Algorithms this client may sign assertions with. */
  assertionAlgorithms: string[];
  jwks?: { keys: JWK[] };
  jwksUri?: string;
  idTokenSignedResponseAlg?: string;
  requirePkce: boolean;
  requireConsent: boolean;
  /**
   * Policy for a client nobody vetted (a dynamically registered one): consent is always required, the
   * pages mark it unverified and show its redirect host, and `offline_access` is honoured only when the
   * user saw a consent screen for the request (OIDC Core §11). False for configured and admin-made clients.
   */
  untrusted: boolean;
  /**
   * True when a remembered consent never counts: an untrusted public client, or one with a loopback or
   * private-use redirect URI, whose redirect does not prove who runs it (RFC 8252 §8.6).
   */
  consentEveryTime: boolean;
  accessTokenFormat: "jwt" | "reference";
  accessTokenLifetime?: number;
  frontchannelLogoutUri?: string;
  frontchannelLogoutSessionRequired: boolean;
  backchannelLogoutUri?: string;
  backchannelLogoutSessionRequired: boolean;
  defaultAcrValues?: string[];
  requireSecondFactor: boolean;
  /** RFC 8705 §2.1.2: what a tls_client_auth certificate must name (exactly one kind). */
  tlsClientAuth?: { subjectDn?: string; sanDns?: string; sanUri?: string; sanIp?: string; sanEmail?: string };
  /** RFC 8705 §3: access tokens bound to the client certificate (`cnf["x5t#S256"]`). */
  tlsClientCertificateBoundAccessTokens: boolean;
  /** RFC 9449 §5.2: every token request must carry a DPoP proof. */
  dpopBoundAccessTokens: boolean;
  /** RFC 9126 §6: authorization requests must be pushed first. */
  requirePushedAuthorizationRequests: boolean;
  /** RFC 9101: the algorithm its request objects must use, when it pinned one. */
  requestObjectSigningAlg?: string;
  /** The algorithms its request objects may use: the pinned one, else all asymmetric ones (FAPI 2.0 §5.4.1: PS256, ES256, EdDSA). */
  requestObjectAlgorithms: string[];
  /** RFC 9101 §10.5: authorization requests must come in a signed request object. */
  requireSignedRequestObject: boolean;
  /** Using or refreshing this client's tokens extends the user's server-side session, and they die with it. */
  coordinateLifetimeWithUserSession: boolean;
  /** Seconds a refresh-token family lives at most (default 30 days). */
  refreshTokenAbsoluteLifetime: number;
  /** Seconds a refresh token lives unused; each rotation slides it, up to the absolute lifetime. */
  refreshTokenSlidingLifetime?: number;
  /** Seconds a rotated refresh token may still be used, returning the same successor (0: never). */
  refreshTokenReuseGracePeriod: number;
  /**
   * Each refresh returns a new refresh token and retires the used one (the default); off, the refresh token
   * stays the same until it expires (a sliding lifetime then counts from its issue), as FAPI 2.0 SP
   * §5.3.2.1-9 asks (no rotation).
   */
  rotateRefreshTokens: boolean;
  /** Every token request must be sender-constrained, by a DPoP proof or a client certificate (FAPI 2.0 SP §5.3.2.1-4). */
  requireSenderConstrainedTokens: boolean;
  /**
   * Refresh tokens are bound to the DPoP key or client certificate they were issued with: public clients
   * only (RFC 9449 §5, RFC 8705 §4). Confidential clients (every FAPI 2.0 client) prove themselves at each
   * refresh, and unbound refresh tokens let them rotate DPoP keys (FAPI 2.0 SP §7).
   */
  bindRefreshTokens: boolean;
  /** Seconds an authorization code lives at most for this client, below the server's option. */
  authorizationCodeLifetime?: number;
  /** Seconds this client's pushed request_uri lives at most, below `par.requestUriLifetime`. */
  requestUriLifetime?: number;
  /**
   * Which `aud` a client assertion may carry: `server` the issuer or this server's token or PAR endpoint URL
   * (one value), `issuer` the issuer identifier alone, as a string (FAPI 2.0 SP §5.3.2.1-8).
   */
  assertionAudience: "server" | "issuer";
  /** The DPoP proof algorithms accepted from this client at the token endpoint; default all of RFC 9449's. */
  dpopAlgorithms?: readonly string[];
  /** The algorithm this client's JWT access tokens are signed with; default the server's first. */
  accessTokenSigningAlg?: string;
  /**
   * The error for an authorization request its profile refuses where OAuth names a more specific code
   * (a response_type other than `code`): `invalid_request` under FAPI 2.0 (contract §10).
   */
  profileErrorCode?: "invalid_request";
  metadata: ClientMetadata;
}

/** Looks up clients by id. */
/** What the caller knows about a lookup made for a request. */
export interface ClientLookup {
  /** The requesting client's network address (bounds the metadata-document fetches one address causes). */
  clientAddress?: string;
}

export interface ClientStore {
  /** The client, or undefined; `lookup` tells about the request that names it, when there is one. */
  findClientById(clientId: string, lookup?: ClientLookup): Promise<Client | undefined>;
}

/** One reason registration metadata does not suit the client's security profile, by metadata field. */
export interface SecurityProfileProblem {
  field: keyof ClientMetadata & string;
  /** The entry of an array field (`redirect_uris`) at fault. */
  index?: number;
  message: string;
}

/**
 * The metadata that FAPI 2.0 Security Profile (final) §5.3.2 and §5.4 forbid for an authorization
 * server's client (empty when it has no profile). The host's `tessera check` reports each with its path.
 */
export function securityProfileProblems(metadata: ClientMetadata): SecurityProfileProblem[] {
  if (metadata.security_profile === undefined) return [];
  if (!SECURITY_PROFILES.includes(metadata.security_profile)) return [{ field: "security_profile", message: `unknown security profile ${String(metadata.security_profile)}` }];
  const problems: SecurityProfileProblem[] = [];
  const add = (field: SecurityProfileProblem["field"], message: string, index?: number) => problems.push({ field, ...(index === undefined ? {} : { index }), message: `FAPI 2.0 ${message}` });
  const method = metadata.token_endpoint_auth_method ?? (metadata.client_secret ? "client_secret_basic" : "none");
  // §5.3.2.1: confidential clients only, authenticated by private_key_jwt or mutual TLS (-6).
  if (!FAPI2_AUTH_METHODS.includes(method as TokenEndpointAuthMethod)) add("token_endpoint_auth_method", `(§5.3.2.1) needs private_key_jwt, tls_client_auth or self_signed_tls_client_auth, not ${method}`);
  // §5.3.2.2-1: the authorization code flow only.
  if (metadata.response_types && metadata.response_types.some((t) => t !== "code")) add("response_types", "(§5.3.2.2) allows only response_type code");
  (metadata.grant_types ?? []).forEach((grant, i) => {
    if (!FAPI2_GRANT_TYPES.includes(grant)) add("grant_types", `(§5.3.2) allows only the ${FAPI2_GRANT_TYPES.join(", ")} grants, not ${grant}`, i);
  });
  // §5.3.2.2: PAR and PKCE (-5) required; a profile client cannot opt out.
  if (metadata.require_pkce === false) add("require_pkce", "(§5.3.2.2) requires PKCE");
  if (metadata.require_pushed_authorization_requests === false) add("require_pushed_authorization_requests", "(§5.3.2.2) requires pushed authorization requests");
  // §5.3.2.2: no authorization responses over unencrypted connections, except loopback redirects of native apps.
  (metadata.redirect_uris ?? []).forEach((uri, i) => {
    if (!uri.startsWith("https://") && !isLoopbackIpRedirect(uri)) add("redirect_uris", `(§5.3.2.2) needs https redirect URIs (or http://127.0.0.1 / http://[::1] for native apps), not ${uri}`, i);
  });
  // §5.4.1: PS256, ES256 or EdDSA.
  for (const field of ["token_endpoint_auth_signing_alg", "id_token_signed_response_alg", "request_object_signing_alg"] as const) {
    const alg = metadata[field];
    if (alg !== undefined && !FAPI2_SIGNING_ALGORITHMS.includes(alg)) add(field, `(§5.4.1) allows only ${FAPI2_SIGNING_ALGORITHMS.join(", ")}, not ${alg}`);
  }
  return problems;
}

/**
/**
 * Normalizes registration metadata; throws on combinations that can never work. A stored client passes
 * its hashed secrets (its metadata carries none). A `security_profile` is read here only: it resolves to
 * the policy fields each validator enforces (FAPI 2.0: PAR, PKCE S256, code only, its client
 * authentication and algorithms, sender-constrained access tokens, 60 s codes, issuer-only assertion
 * audience). `signingAlgorithms` (the server's, first signs by default) picks a fapi2 client's token algorithm.
 */
export function normalizeClient(metadata: ClientMetadata, stored?: { secrets: readonly StoredClientSecret[]; registered?: boolean }, signingAlgorithms?: readonly string[]): Client {
  const hasSecret = Boolean(metadata.client_secret) || (stored?.secrets.length ?? 0) > 0;
  const method = (metadata.token_endpoint_auth_method ?? (hasSecret ? "client_secret_basic" : "none")) as TokenEndpointAuthMethod;
  const profileProblem = securityProfileProblems({ ...metadata, token_endpoint_auth_method: method })[0];
  if (profileProblem) throw new TypeError(`client ${metadata.client_id}: ${profileProblem.field}: ${profileProblem.message}`);
  const fapi2 = metadata.security_profile === "fapi2";
  const tokenSigningAlg = metadata.id_token_signed_response_alg ?? (fapi2 && signingAlgorithms ? fapi2SigningAlgorithm(metadata.client_id, signingAlgorithms) : undefined);
  if (!TOKEN_ENDPOINT_AUTH_METHODS.includes(method)) {
    throw new TypeError(`client ${metadata.client_id}: unsupported token_endpoint_auth_method ${method}`);
  }
  const needsSecret = method === "client_secret_basic" || method === "client_secret_post" || method === "client_secret_jwt";
  if (needsSecret && !hasSecret) throw new TypeError(`client ${metadata.client_id}: ${method} needs a client_secret`);
  const tlsNames = {
    subjectDn: metadata.tls_client_auth_subject_dn,
    sanDns: metadata.tls_client_auth_san_dns,
    sanUri: metadata.tls_client_auth_san_uri,
    sanIp: metadata.tls_client_auth_san_ip,
    sanEmail: metadata.tls_client_auth_san_email,
  };
  if (method === "tls_client_auth" && Object.values(tlsNames).filter((v) => v !== undefined).length !== 1) {
    throw new TypeError(`client ${metadata.client_id}: tls_client_auth needs exactly one tls_client_auth_* name`);
  }
  if (method === "self_signed_tls_client_auth" && !metadata.jwks) throw new TypeError(`client ${metadata.client_id}: self_signed_tls_client_auth needs jwks`);
  if (method === "private_key_jwt" && !metadata.jwks === !metadata.jwks_uri) {
    throw new TypeError(`client ${metadata.client_id}: private_key_jwt needs exactly one of jwks and jwks_uri`);
  }
  for (const key of ["redirect_uris", "post_logout_redirect_uris"] as const) {
    for (const uri of metadata[key] ?? []) {
      const problem = redirectUriProblem(uri, { publicClient: method === "none" });
      if (problem) throw new TypeError(`client ${metadata.client_id}: ${key} ${JSON.stringify(uri)} ${problem}`);
    }
  }
  const methodFamily: readonly string[] = method === "private_key_jwt" ? ASSERTION_ALGORITHMS.private_key_jwt : method === "client_secret_jwt" ? ASSERTION_ALGORITHMS.client_secret_jwt : [];
  const family = fapi2 ? methodFamily.filter((alg) => FAPI2_SIGNING_ALGORITHMS.includes(alg)) : methodFamily;
  const signingAlg = metadata.token_endpoint_auth_signing_alg;
  if (signingAlg !== undefined && !family.includes(signingAlg)) {
    throw new TypeError(`client ${metadata.client_id}: token_endpoint_auth_signing_alg ${signingAlg} does not suit ${method}`);
  }
  const requestObjectAlg = metadata.request_object_signing_alg;
  if (requestObjectAlg !== undefined && !REQUEST_OBJECT_ALGORITHMS.includes(requestObjectAlg)) {
    throw new TypeError(`client ${metadata.client_id}: request_object_signing_alg ${requestObjectAlg} is not an asymmetric JWS algorithm`);
  }
  if ((requestObjectAlg !== undefined || metadata.require_signed_request_object) && !metadata.jwks && !metadata.jwks_uri) {
    throw new TypeError(`client ${metadata.client_id}: signed request objects need jwks or jwks_uri`);
  }
  const untrusted = stored?.registered === true;
  const provenRedirects = (metadata.redirect_uris ?? []).every((uri) => uri.startsWith("https://"));
  return {
    clientId: metadata.client_id,
    clientName: metadata.client_name ?? metadata.client_id,
    secretHash: metadata.client_secret ? createHash("sha256").update(metadata.client_secret, "utf8").digest("base64url") : undefined,
    secrets: stored?.secrets ?? [],
    source: stored ? "store" : "config",
    redirectUris: metadata.redirect_uris ?? [],
    postLogoutRedirectUris: metadata.post_logout_redirect_uris ?? [],
    grantTypes: metadata.grant_types ?? ["authorization_code"],
    responseTypes: fapi2 ? ["code"] : (metadata.response_types ?? ["code"]),
    scopes: (metadata.scope ?? "openid").split(" ").filter(Boolean),
    tokenEndpointAuthMethod: method,
    sharedSecret: method === "client_secret_jwt" ? metadata.client_secret : undefined,
    assertionAlgorithms: signingAlg ? [signingAlg] : [...family],
    jwks: metadata.jwks,
    jwksUri: metadata.jwks_uri,
    idTokenSignedResponseAlg: tokenSigningAlg,
    requirePkce: fapi2 || (metadata.require_pkce ?? true),
    requireConsent: untrusted || (metadata.require_consent ?? false),
    untrusted,
    consentEveryTime: untrusted && (method === "none" || !provenRedirects),
    accessTokenFormat: metadata.access_token_format ?? "jwt",
    accessTokenLifetime: metadata.access_token_lifetime,
    frontchannelLogoutUri: metadata.frontchannel_logout_uri,
    frontchannelLogoutSessionRequired: metadata.frontchannel_logout_session_required ?? false,
    backchannelLogoutUri: metadata.backchannel_logout_uri,
    backchannelLogoutSessionRequired: metadata.backchannel_logout_session_required ?? false,
    defaultAcrValues: metadata.default_acr_values,
    requireSecondFactor: metadata.require_second_factor ?? false,
    coordinateLifetimeWithUserSession: metadata.coordinate_lifetime_with_user_session ?? false,
    dpopBoundAccessTokens: metadata.dpop_bound_access_tokens ?? false,
    requirePushedAuthorizationRequests: fapi2 || (metadata.require_pushed_authorization_requests ?? false),
    requestObjectSigningAlg: requestObjectAlg,
    requestObjectAlgorithms: requestObjectAlg ? [requestObjectAlg] : fapi2 ? [...FAPI2_SIGNING_ALGORITHMS] : [...REQUEST_OBJECT_ALGORITHMS],
    requireSignedRequestObject: metadata.require_signed_request_object ?? false,
    tlsClientAuth: method === "tls_client_auth" ? tlsNames : undefined,
    tlsClientCertificateBoundAccessTokens: metadata.tls_client_certificate_bound_access_tokens ?? false,
    refreshTokenAbsoluteLifetime: metadata.refresh_token_absolute_lifetime ?? 2_592_000,
    refreshTokenSlidingLifetime: metadata.refresh_token_sliding_lifetime || undefined,
    refreshTokenReuseGracePeriod: metadata.refresh_token_reuse_grace_period ?? 0,
    rotateRefreshTokens: !fapi2,
    requireSenderConstrainedTokens: fapi2,
    bindRefreshTokens: method === "none",
    authorizationCodeLifetime: fapi2 ? FAPI2_CODE_LIFETIME : undefined,
    requestUriLifetime: fapi2 ? FAPI2_REQUEST_URI_LIFETIME : undefined,
    assertionAudience: fapi2 ? "issuer" : "server",
    dpopAlgorithms: fapi2 ? FAPI2_SIGNING_ALGORITHMS : undefined,
    accessTokenSigningAlg: fapi2 ? tokenSigningAlg : undefined,
    profileErrorCode: fapi2 ? "invalid_request" : undefined,
    metadata,
  };
}

/**
 * FAPI 2.0 SP §5.4.1 for a client that names no `id_token_signed_response_alg`: the first of the server's
 * signing algorithms that the profile allows; none configured is a configuration error.
 */
function fapi2SigningAlgorithm(clientId: string, signingAlgorithms: readonly string[]): string {
  const alg = signingAlgorithms.find((a) => FAPI2_SIGNING_ALGORITHMS.includes(a));
  if (alg === undefined) throw new TypeError(`client ${clientId}: FAPI 2.0 (§5.4.1) signs tokens with ${FAPI2_SIGNING_ALGORITHMS.join(", ")}: add one to keys.algorithms (or set id_token_signed_response_alg)`);
  return alg;
}

/**
 * A client store over a fixed list. With the server's `signingAlgorithms`, a FAPI 2.0 client without
 * `id_token_signed_response_alg` gets the first of them that §5.4.1 allows.
 */
export function createStaticClientStore(clients: ClientMetadata[], signingAlgorithms?: readonly string[]): ClientStore {
  const byId = new Map<string, Client>();
  for (const metadata of clients) {
    if (byId.has(metadata.client_id)) throw new TypeError(`duplicate client_id ${metadata.client_id}`);
    byId.set(metadata.client_id, normalizeClient(metadata, undefined, signingAlgorithms));
  }
  return { findClientById: async (id) => byId.get(id) };
}
