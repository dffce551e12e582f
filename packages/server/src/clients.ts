import { createHash } from "node:crypto";
import type { JWK } from "jose";
import type { StoredClientSecret } from "./stores/interfaces.ts";

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
  coordinate_lifetime_with_user_session?: boolean;
  dpop_bound_access_tokens?: boolean;
  /** RFC 9126 §6: authorization requests only through the PAR endpoint. */
  require_pushed_authorization_requests?: boolean;
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
  [extension: string]: unknown;
}

/** A client ready for the protocol code: defaults applied, secret hashed. */
export interface Client {
  clientId: string;
  clientName: string;
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
  accessTokenFormat: "jwt" | "reference";
  accessTokenLifetime?: number;
  frontchannelLogoutUri?: string;
  frontchannelLogoutSessionRequired: boolean;
  backchannelLogoutUri?: string;
  backchannelLogoutSessionRequired: boolean;
  /** RFC 8705 §2.1.2: what a tls_client_auth certificate must name (exactly one kind). */
  tlsClientAuth?: { subjectDn?: string; sanDns?: string; sanUri?: string; sanIp?: string; sanEmail?: string };
  /** RFC 8705 §3: access tokens bound to the client certificate (`cnf["x5t#S256"]`). */
  tlsClientCertificateBoundAccessTokens: boolean;
  /** RFC 9449 §5.2: every token request must carry a DPoP proof. */
  dpopBoundAccessTokens: boolean;
  /** RFC 9126 §6: authorization requests must be pushed first. */
  requirePushedAuthorizationRequests: boolean;
  /** Using or refreshing this client's tokens extends the user's server-side session, and they die with it. */
  coordinateLifetimeWithUserSession: boolean;
  /** Seconds a refresh-token family lives at most (default 30 days). */
  refreshTokenAbsoluteLifetime: number;
  /** Seconds a refresh token lives unused; each rotation slides it, up to the absolute lifetime. */
  refreshTokenSlidingLifetime?: number;
  /** Seconds a rotated refresh token may still be used, returning the same successor (0: never). */
  refreshTokenReuseGracePeriod: number;
  metadata: ClientMetadata;
}

/** Looks up clients by id. */
export interface ClientStore {
  findClientById(clientId: string): Promise<Client | undefined>;
}

/**
 * Normalizes registration metadata; throws on combinations that can never work. A stored client passes
 * its hashed secrets (its metadata carries none).
 */
export function normalizeClient(metadata: ClientMetadata, stored?: { secrets: readonly StoredClientSecret[] }): Client {
  const hasSecret = Boolean(metadata.client_secret) || (stored?.secrets.length ?? 0) > 0;
  const method = (metadata.token_endpoint_auth_method ?? (hasSecret ? "client_secret_basic" : "none")) as TokenEndpointAuthMethod;
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
  const family: readonly string[] = method === "private_key_jwt" ? ASSERTION_ALGORITHMS.private_key_jwt : method === "client_secret_jwt" ? ASSERTION_ALGORITHMS.client_secret_jwt : [];
  const signingAlg = metadata.token_endpoint_auth_signing_alg;
  if (signingAlg !== undefined && !family.includes(signingAlg)) {
    throw new TypeError(`client ${metadata.client_id}: token_endpoint_auth_signing_alg ${signingAlg} does not suit ${method}`);
  }
  return {
    clientId: metadata.client_id,
    clientName: metadata.client_name ?? metadata.client_id,
    secretHash: metadata.client_secret ? createHash("sha256").update(metadata.client_secret, "utf8").digest("base64url") : undefined,
    secrets: stored?.secrets ?? [],
    source: stored ? "store" : "config",
    redirectUris: metadata.redirect_uris ?? [],
    postLogoutRedirectUris: metadata.post_logout_redirect_uris ?? [],
    grantTypes: metadata.grant_types ?? ["authorization_code"],
    responseTypes: metadata.response_types ?? ["code"],
    scopes: (metadata.scope ?? "openid").split(" ").filter(Boolean),
    tokenEndpointAuthMethod: method,
    sharedSecret: method === "client_secret_jwt" ? metadata.client_secret : undefined,
    assertionAlgorithms: signingAlg ? [signingAlg] : [...family],
    jwks: metadata.jwks,
    jwksUri: metadata.jwks_uri,
    idTokenSignedResponseAlg: metadata.id_token_signed_response_alg,
    requirePkce: metadata.require_pkce ?? true,
    requireConsent: metadata.require_consent ?? false,
    accessTokenFormat: metadata.access_token_format ?? "jwt",
    accessTokenLifetime: metadata.access_token_lifetime,
    frontchannelLogoutUri: metadata.frontchannel_logout_uri,
    frontchannelLogoutSessionRequired: metadata.frontchannel_logout_session_required ?? false,
    backchannelLogoutUri: metadata.backchannel_logout_uri,
    backchannelLogoutSessionRequired: metadata.backchannel_logout_session_required ?? false,
    coordinateLifetimeWithUserSession: metadata.coordinate_lifetime_with_user_session ?? false,
    dpopBoundAccessTokens: metadata.dpop_bound_access_tokens ?? false,
    requirePushedAuthorizationRequests: metadata.require_pushed_authorization_requests ?? false,
    tlsClientAuth: method === "tls_client_auth" ? tlsNames : undefined,
    tlsClientCertificateBoundAccessTokens: metadata.tls_client_certificate_bound_access_tokens ?? false,
    refreshTokenAbsoluteLifetime: metadata.refresh_token_absolute_lifetime ?? 2_592_000,
    refreshTokenSlidingLifetime: metadata.refresh_token_sliding_lifetime || undefined,
    refreshTokenReuseGracePeriod: metadata.refresh_token_reuse_grace_period ?? 0,
    metadata,
  };
}

/** A client store over a fixed list. */
export function createStaticClientStore(clients: ClientMetadata[]): ClientStore {
  const byId = new Map<string, Client>();
  for (const metadata of clients) {
    if (byId.has(metadata.client_id)) throw new TypeError(`duplicate client_id ${metadata.client_id}`);
    byId.set(metadata.client_id, normalizeClient(metadata));
  }
  return { findClientById: async (id) => byId.get(id) };
}
