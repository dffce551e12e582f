import { DPOP_CLOCK_TOLERANCE, STANDARD_SCOPE_CLAIMS } from "@tessera/protocol";
import { parseCertificates } from "./client-auth/certificates.ts";
import type { Store } from "./stores/interfaces.ts";
import { DEFAULT_MAX_PENDING_PER_CLIENT } from "./security/pending-requests.ts";
import type { EventSink } from "./events.ts";
import type { ProviderObserver } from "./observability/requests.ts";
import type { OutboundPolicy } from "./http/outbound.ts";
import { CIMD_DEFAULTS, reservedScope, type ClientIdMetadataDocumentOptions } from "./clients/metadata-document.ts";
import type { ClientMetadata } from "./clients.ts";
import type { ProfileService, UserStore } from "./tokens/claims.ts";
import { ACR_VALUES, type AcrValue } from "./session/authentication-context.ts";
import type { ExtensionGrant } from "./grants/extension.ts";
import type { TokenExchangePolicy } from "./grants/token-exchange.ts";
import type { ExternalProviderOptions } from "./federation/external-providers.ts";

/** Signing algorithms keys can be kept for. */
export type SigningAlgorithm = "RS256" | "PS256" | "ES256" | "EdDSA";
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ["RS256", "PS256", "ES256", "EdDSA"];

/** An API scope (a permission a client may ask for). */
export interface ApiScope {
  name: string;
  displayName?: string;
  description?: string;
  /** User claims put into access tokens that carry this scope. */
  userClaims?: string[];
}

/** An API (resource server): its name becomes the `aud` of tokens carrying its scopes. */
export interface ApiResource {
  name: string;
  scopes: string[];
  /** Secret the API uses at the introspection endpoint. */
  secret?: string;
  /** User claims put into access tokens for this API. */
  userClaims?: string[];
}

/** A custom identity scope and the user claims it releases (standard scopes are given by name). */
export interface IdentityResource {
  name: string;
  userClaims: string[];
  displayName?: string;
}

/** Something that records what happened; the host passes pino. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of {@link createProvider}. Every group has documented defaults. */
export interface ProviderOptions {
  /** The issuer identifier: https URL (http only for localhost/tests), no query or fragment. */
  issuer: string;
  /** Where codes, tokens, interactions and keys live. */
  store: Store;
  /** 32 bytes (or their base64url) protecting cookies and keys at rest. Keep it stable across restarts. */
  dataKey: Uint8Array | string;
  /** Registered clients, in OAuth dynamic-registration metadata names. */
  clients: ClientMetadata[];
  /** Identity scopes offered: standard ones by name, custom ones with their claims (default openid, profile, email, offline_access). */
  identityResources?: (string | IdentityResource)[];
  apiScopes?: ApiScope[];
  apiResources?: ApiResource[];
  /** Looks users up by subject for claims; when absent, claims given at sign-in are used. */
  users?: UserStore;
  /** Decides which claims are issued; defaults to the OIDC scope-to-claim mapping over the user's claims. */
  profile?: ProfileService;
  /**
   * Extension grants by `grant_type` (RFC 6749 §4.5), e.g. `{ "urn:example:grant": grant }`; clients use one
   * by listing it in `grant_types`, and discovery lists it. Built-in grant types cannot be replaced.
   */
  grants?: Readonly<Record<string, ExtensionGrant>>;
  /** Token exchange (RFC 8693, `urn:ietf:params:oauth:grant-type:token-exchange`) for clients that list it. */
  tokenExchange?: {
    /** Offer the grant (default true); clients still need it in `grant_types`. */
    enabled?: boolean;
    /** Decides per exchange: refuse it, pick the audience, add claims. Default: allow as requested. */
    policy?: TokenExchangePolicy;
  };
  authentication?: {
    /** Seconds an authentication session lasts (default 36000, 10 h). */
    cookieLifetime?: number;
    /** Renew the session when more than half its lifetime has passed (default true). */
    cookieSlidingExpiration?: boolean;
    /**
     * Every authorization needs a second factor (acr `mfa` or stronger): a session with less is sent to the
     * login page for step-up (default false). Per client: metadata `require_second_factor`.
     */
    requireSecondFactor?: boolean;
    /**
     * The `acr` values the login pages can step a session up to (`mfa`, `phr`): advertised as
     * `acr_values_supported`, and the only `acr_values` that trigger step-up (others are voluntary and ignored).
     * Default `[]` (a login page of an embedder has no second factors unless it says so), `["mfa"]` with
     * `requireSecondFactor`; set it to what your login pages offer (the host does, from `accounts.mfa`).
     */
    acrValues?: AcrValue[];
  };
  /** Server-side sessions: the cookie carries only a key, the session lives in the store. */
  serverSideSessions?: {
    /** Default false. Turning it on migrates cookie-only sessions on their next request; off again converts them back. */
    enabled?: boolean;
    /** Claim shown as the session's display name (default "name"). */
    userDisplayNameClaimType?: string;
    /** Run the job that deletes expired sessions (default true). */
    removeExpiredSessions?: boolean;
    /** Seconds between runs of that job (default 600). */
    removeExpiredSessionsFrequency?: number;
    /** Send back-channel logout for sessions that expire (default false). */
    expiredSessionsTriggerBackchannelLogout?: boolean;
  };
  /**
   * Mutual TLS (RFC 8705); the host terminates TLS and attaches client certificates to requests. Given
   * (even empty), discovery advertises the certificate methods and certificate-bound tokens; absent, neither.
   */
  mtls?: {
    /** PEM of the CA(s) that issue client certificates for tls_client_auth. */
    clientCa?: string;
    /** Base URL of the mTLS listener, for `mtls_endpoint_aliases` (e.g. https://id.example.com:5443). */
    endpointBaseUrl?: string;
  };
  /** Pushed authorization requests (RFC 9126). */
  par?: {
    /** Seconds a pushed request's request_uri is usable (default 60). */
    requestUriLifetime?: number;
    /** Refuse authorization requests that were not pushed, for every client (default false). */
    required?: boolean;
    /**
     * Most unused pushes kept per authenticated confidential client (default 10000), that client's oldest
     * dropped first. Its pushes count only here, never in the per-address and total caps that bound
     * anonymous (public-client) pushes (`interaction.maxPending`, `interaction.maxPendingPerAddress`).
     * The same cap bounds the client's pending device authorizations (counted apart from its pushes).
     */
    maxPendingPerClient?: number;
  };
  /**
   * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): an https `client_id` URL
   * names a document fetched through the outbound rules. Off unless `enabled`.
   */
  clientIdMetadataDocuments?: Partial<ClientIdMetadataDocumentOptions>;
  /** Device authorization grant (RFC 8628). */
  deviceFlow?: {
    /** Seconds a device code and its user code live (default 600; 10 to 3600). */
    lifetime?: number;
    /** Seconds a device waits between polls (default 5, at least 1); each `slow_down` adds 5. */
    interval?: number;
    /** Letters in a user code (default 8; 8 to 20), shown as groups of four (XXXX-XXXX). */
    userCodeLength?: number;
    /** The verification page, relative to the issuer or absolute (default "/device"). Receives `user_code`. */
    verificationUri?: string;
  };
  /** DPoP (RFC 9449). */
  dpop?: {
    /** Require server-issued nonces in proofs (default false). */
    requireNonce?: boolean;
    /** Seconds a proof is accepted after its iat (default 60). */
    proofLifetime?: number;
    /** Seconds of clock skew accepted for a proof's iat in the future, nbf and exp (default 15; FAPI 2.0 SP §5.3.2.1-14 needs at least 10). */
    clockTolerance?: number;
  };
  keys?: {
    /** Algorithms to keep keys for; the first signs unless a client asks otherwise (default ["RS256"]). */
    algorithms?: SigningAlgorithm[];
    /** Seconds a key signs before it is replaced (default 7776000, 90 days). */
    rotationInterval?: number;
    /** Seconds a new key is published, by every process, before it signs (default 1209600, 14 days); keys are re-read every min(60, propagationTime / 2) s. */
    propagationTime?: number;
    /** Seconds a replaced key stays published (default 1209600, 14 days). */
    retentionTime?: number;
  };
  tokens?: {
    /** Seconds (default 300). */
    authorizationCodeLifetime?: number;
    /** Seconds (default 300). */
    idTokenLifetime?: number;
    /** Seconds, unless a client sets `access_token_lifetime` (default 3600). */
    accessTokenLifetime?: number;
  };
  interaction?: {
    /** Login page, relative to the issuer or absolute (default "/login"). Receives `returnUrl`. */
    loginUrl?: string;
    /** Consent page, relative to the issuer or absolute (default "/consent"). Receives `returnUrl`. */
    consentUrl?: string;
    /**
     * Registration page (OIDC Prompt Create 1.0), relative to the issuer or absolute. When set, `prompt=create`
     * sends the user there (with `returnUrl`) and discovery lists `create`; when unset, `prompt=create` is
     * refused with invalid_request. Default: unset.
     */
    registrationUrl?: string;
    /** Logout prompt, relative to the issuer or absolute (default "/logout"). Receives `logoutId`. */
    logoutUrl?: string;
    /** Signed-out page, relative to the issuer or absolute (default "/signedout"). Receives `logoutId`. */
    signedOutUrl?: string;
    /** Seconds a pending authorization request waits for login and consent (default 3600). */
    lifetime?: number;
    /**
     * Most pending authorization and logout requests kept (each kind counted apart); past it new ones are
     * refused (temporarily_unavailable, 429) and none is dropped, so unauthenticated requests cannot grow
     * the store without bound, except that a request whose address bucket (IPv4 address, IPv6 /48) holds
     * fewer than 3 pending entries is still admitted, up to twice this number. Logouts are never refused:
     * over the cap they travel sealed instead of stored. Each stored request is at most 8 KiB, so the
     * default (20000) holds at most about 320 MB per kind at the ceiling.
     */
    maxPending?: number;
    /**
     * Most pending requests of each kind per client address bucket (IPv4 address, IPv6 /64), that bucket's
     * oldest dropped first (default 100).
     */
    maxPendingPerAddress?: number;
    /** Seconds a remembered consent lasts (default 31536000, a year). */
    consentLifetime?: number;
  };
  logout?: {
    /** Seconds to wait for one back-channel logout POST (default 5). */
    backChannelTimeout?: number;
    /** Further back-channel attempts after a failure (default 2). */
    backChannelRetries?: number;
  };
  /** Seconds between runs of the job that deletes expired codes, tokens, consents and interactions (default 600). */
  grantCleanupInterval?: number;
  /**
   * The per-process cache of clients stored at run time: a change made by another process is seen within
   * `ttl` seconds (default 5), an id looked up before it was created within `negativeTtl` (default 1);
   * at most `maxEntries` (default 1000) are kept. Changes made through this process are seen at once.
   */
  clientCache?: { ttl?: number; negativeTtl?: number; maxEntries?: number };
  /** Dynamic client registration (RFC 7591) and management (RFC 7592) at {issuer}/connect/register. */
  registration?: {
    /** Default false: no registration endpoint. */
    enabled?: boolean;
    /** When set, registration needs `Authorization: Bearer <this>`; null or absent: open registration. */
    initialAccessToken?: string | null;
    /** Scopes a registered client may have (default: the identity scopes). */
    allowedScopes?: string[];
    /** Grant types a registered client may have (default authorization_code, refresh_token). */
    allowedGrantTypes?: string[];
    /**
     * Accept RFC 7591 §2.3 software statements signed by one of these keys (and, when given, issued by
     * `issuer`); their claims take precedence over the request's metadata. `required`: refuse registrations
     * without one. Absent: every software statement is refused (`invalid_software_statement`).
     */
    softwareStatement?: { jwks: { keys: import("jose").JWK[] }; issuer?: string; required?: boolean };
    /**
     * Registrations (and wrong initial access tokens) within `window` seconds, counted in the store:
     * `max` per client address bucket (IPv4 address, IPv6 /64; default 50 per 600 s), `networkMax` per
     * IPv6 /48 (default 200) and `totalMax` from everyone together (default 1000).
     */
    rateLimit?: { window?: number; max?: number; networkMax?: number; totalMax?: number };
  };
  limits?: {
    /** Largest form body accepted, in bytes (default 65536). */
    maxFormBytes?: number;
    /** Longest single parameter value accepted, in characters (default 4096). */
    maxParameterLength?: number;
    /**
     * Longest `request` parameter (a request object, RFC 9101) at the authorization and PAR endpoints, in
     * characters (default 16384, never less than `maxParameterLength`): an object with an id_token_hint
     * and an RSA-4096 signature outgrows `maxParameterLength`. What is stored of it stays bounded at 8 KiB.
     */
    maxRequestObjectLength?: number;
    /** Most parameters one query or form may carry (default 64). */
    maxParameters?: number;
  };
  /**
   * Failed client authentications (token, introspection, revocation) counted in the store per client and
   * client address; past `maxPerClient` (default 10) or `maxPerAddress` (default 50) failures within
   * `window` seconds (default 900) the endpoint answers 429 until the window passes. `false` turns it off.
   */
  clientAuthThrottling?: false | { window?: number; maxPerClient?: number; maxPerAddress?: number };
  /** Requests the provider makes to URLs clients register (jwks_uri, back-channel logout) and to external providers. */
  outbound?: Partial<OutboundPolicy>;
  /**
   * External identity providers (contract §15): OpenID Connect by discovery, or plain OAuth 2.0 with a
   * userinfo URL. Their users get local accounts in `store.accounts`, linked by (upstream iss, upstream sub).
   */
  externalProviders?: ExternalProviderOptions[];
  /** Receives audit events (default: the logger, at info level). */
  events?: EventSink;
  /** Metrics hooks: each answered request and each failed store call (audit events go to `events`). */
  observer?: ProviderObserver;
  /** Current time in milliseconds; injected for tests. */
  clock?: () => number;
  logger?: Logger;
}

/** Options with every default applied. */
export interface ResolvedOptions {
  issuer: string;
  basePath: string;
  secureCookies: boolean;
  identityResources: string[];
  /** User claims each identity scope releases (OIDC Core §5.4 for the standard ones). */
  identityClaims: ReadonlyMap<string, readonly string[]>;
  /** User claims each API scope puts into access tokens (its own and its resources'). */
  apiClaims: ReadonlyMap<string, readonly string[]>;
  apiScopes: ApiScope[];
  apiResources: ApiResource[];
  cookieLifetime: number;
  cookieSlidingExpiration: boolean;
  requireSecondFactor: boolean;
  acrValues: AcrValue[];
  dpop: { requireNonce: boolean; proofLifetime: number; clockTolerance: number };
  par: { requestUriLifetime: number; required: boolean; maxPendingPerClient: number };
  clientIdMetadataDocuments: ClientIdMetadataDocumentOptions;
  deviceFlow: { lifetime: number; interval: number; userCodeLength: number; verificationUri: string };
  /** `enabled`: the host does mutual TLS (the `mtls` option was given). */
  mtls: { enabled: boolean; clientCas: import("node:crypto").X509Certificate[]; endpointBaseUrl?: string };
  serverSideSessions: {
    enabled: boolean;
    userDisplayNameClaimType: string;
    removeExpiredSessions: boolean;
    removeExpiredSessionsFrequency: number;
    expiredSessionsTriggerBackchannelLogout: boolean;
  };
  algorithms: SigningAlgorithm[];
  keyRotation: { rotationInterval: number; propagationTime: number; retentionTime: number };
  authorizationCodeLifetime: number;
  idTokenLifetime: number;
  accessTokenLifetime: number;
  loginUrl: string;
  consentUrl: string;
  registrationUrl: string | undefined;
  logoutUrl: string;
  signedOutUrl: string;
  backChannelTimeout: number;
  backChannelRetries: number;
  interactionLifetime: number;
  maxPending: number;
  maxPendingPerAddress: number;
  consentLifetime: number;
  maxFormBytes: number;
  maxParameterLength: number;
  maxRequestObjectLength: number;
  maxParameters: number;
  clientAuthThrottling: false | { window: number; maxPerClient: number; maxPerAddress: number };
  grantCleanupInterval: number;
  outbound: OutboundPolicy;
  clientCache: { ttl: number; negativeTtl: number; maxEntries: number };
  registration: {
    enabled: boolean;
    initialAccessToken?: string;
    allowedScopes: string[];
    allowedGrantTypes: string[];
    rateLimit: { window: number; max: number; networkMax: number; totalMax: number };
    softwareStatement?: { jwks: { keys: import("jose").JWK[] }; issuer?: string; required: boolean };
  };
}

function scopeClaims(options: ProviderOptions): Pick<ResolvedOptions, "identityResources" | "identityClaims" | "apiClaims"> {
  const identityClaims = new Map<string, readonly string[]>();
  for (const resource of options.identityResources ?? ["openid", "profile", "email", "offline_access"]) {
    if (typeof resource === "string") {
      const standard = STANDARD_SCOPE_CLAIMS[resource];
      if (!standard) throw new TypeError(`identity resource ${resource} is not a standard scope; give its userClaims`);
      identityClaims.set(resource, standard);
    } else {
      identityClaims.set(resource.name, resource.userClaims);
    }
  }
  const apiClaims = new Map<string, readonly string[]>();
  for (const scope of options.apiScopes ?? []) {
    const fromResources = (options.apiResources ?? []).filter((r) => r.scopes.includes(scope.name)).flatMap((r) => r.userClaims ?? []);
    apiClaims.set(scope.name, [...new Set([...(scope.userClaims ?? []), ...fromResources])]);
  }
  return { identityResources: [...identityClaims.keys()], identityClaims, apiClaims };
}

const silentLogger: Logger = { info() {}, warn() {}, error() {} };
export { silentLogger };

/** Applies defaults and checks the options that would otherwise fail later and obscurely. */
export function resolveOptions(options: ProviderOptions): ResolvedOptions {
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(options.issuer);
  } catch {
    throw new TypeError(`issuer is not a URL: ${options.issuer}`);
  }
  if (issuerUrl.search || issuerUrl.hash) throw new TypeError("issuer must not have a query or fragment");
  if (issuerUrl.protocol !== "https:" && issuerUrl.protocol !== "http:") throw new TypeError("issuer must be http(s)");
  const issuer = options.issuer.replace(/\/+$/, "");
  const dpopTolerance = options.dpop?.clockTolerance;
  if (dpopTolerance !== undefined && !(Number.isInteger(dpopTolerance) && dpopTolerance >= 0 && dpopTolerance <= 60)) throw new TypeError("dpop.clockTolerance must be a whole number of seconds from 0 to 60");
  const algorithms = options.keys?.algorithms ?? ["RS256"];
  if (algorithms.length === 0) throw new TypeError("keys.algorithms must name at least one algorithm");
  const rotation = options.keys;
  if (rotation?.rotationInterval !== undefined && rotation.propagationTime !== undefined && rotation.propagationTime >= rotation.rotationInterval) {
    throw new TypeError("keys.propagationTime must be shorter than keys.rotationInterval");
  }
  for (const alg of algorithms) {
    if (!SIGNING_ALGORITHMS.includes(alg)) throw new TypeError(`unsupported signing algorithm ${alg}`);
  }
  const reserved = options.clientIdMetadataDocuments?.allowedScopes?.find(reservedScope);
  if (reserved) throw new TypeError(`clientIdMetadataDocuments.allowedScopes may not hold ${reserved}: Tessera's own scopes are never granted to metadata-document clients`);
  const claims = scopeClaims(options);
  return {
    issuer,
    basePath: new URL(issuer).pathname.replace(/\/+$/, ""),
    secureCookies: issuerUrl.protocol === "https:",
    ...claims,
    apiScopes: options.apiScopes ?? [],
    apiResources: options.apiResources ?? [],
    cookieLifetime: options.authentication?.cookieLifetime ?? 36000,
    cookieSlidingExpiration: options.authentication?.cookieSlidingExpiration ?? true,
    requireSecondFactor: options.authentication?.requireSecondFactor ?? false,
    // Only what the login pages can reach: without second factors an `acr_values=mfa` request would send the
    // user back to a login page that cannot satisfy it. Second factors on (the policy) reach `mfa`.
    acrValues: (options.authentication?.acrValues ?? (options.authentication?.requireSecondFactor ? ["mfa"] : [])).filter((v) => (ACR_VALUES as readonly string[]).includes(v)),
    dpop: { requireNonce: options.dpop?.requireNonce ?? false, proofLifetime: options.dpop?.proofLifetime ?? 60, clockTolerance: options.dpop?.clockTolerance ?? DPOP_CLOCK_TOLERANCE },
    clientIdMetadataDocuments: { ...CIMD_DEFAULTS, ...options.clientIdMetadataDocuments },
    // RFC 9126 §7: request_uris live briefly; 1 to 600 seconds.
    par: { requestUriLifetime: Math.min(600, Math.max(1, Math.floor(options.par?.requestUriLifetime ?? 60))), required: options.par?.required ?? false, maxPendingPerClient: Math.max(1, Math.floor(options.par?.maxPendingPerClient ?? DEFAULT_MAX_PENDING_PER_CLIENT)) },
    deviceFlow: {
      lifetime: Math.min(3600, Math.max(10, Math.floor(options.deviceFlow?.lifetime ?? 600))),
      interval: Math.max(1, Math.floor(options.deviceFlow?.interval ?? 5)),
      // RFC 8628 §6.1: 8 letters of 20 give 34.5 bits; fewer than 6 would be guessable despite the throttle.
      userCodeLength: Math.min(20, Math.max(8, Math.floor(options.deviceFlow?.userCodeLength ?? 8))),
      verificationUri: options.deviceFlow?.verificationUri ?? "/device",
    },
    mtls: { enabled: options.mtls !== undefined, clientCas: options.mtls?.clientCa ? parseCertificates(options.mtls.clientCa) : [], endpointBaseUrl: options.mtls?.endpointBaseUrl?.replace(/\/+$/, "") },
    serverSideSessions: {
      enabled: options.serverSideSessions?.enabled ?? false,
      userDisplayNameClaimType: options.serverSideSessions?.userDisplayNameClaimType ?? "name",
      removeExpiredSessions: options.serverSideSessions?.removeExpiredSessions ?? true,
      removeExpiredSessionsFrequency: options.serverSideSessions?.removeExpiredSessionsFrequency ?? 600,
      expiredSessionsTriggerBackchannelLogout: options.serverSideSessions?.expiredSessionsTriggerBackchannelLogout ?? false,
    },
    algorithms,
    keyRotation: {
      rotationInterval: options.keys?.rotationInterval ?? 7_776_000,
      propagationTime: options.keys?.propagationTime ?? 1_209_600,
      retentionTime: options.keys?.retentionTime ?? 1_209_600,
    },
    authorizationCodeLifetime: options.tokens?.authorizationCodeLifetime ?? 300,
    idTokenLifetime: options.tokens?.idTokenLifetime ?? 300,
    accessTokenLifetime: options.tokens?.accessTokenLifetime ?? 3600,
    loginUrl: options.interaction?.loginUrl ?? "/login",
    consentUrl: options.interaction?.consentUrl ?? "/consent",
    registrationUrl: options.interaction?.registrationUrl,
    logoutUrl: options.interaction?.logoutUrl ?? "/logout",
    signedOutUrl: options.interaction?.signedOutUrl ?? "/signedout",
    backChannelTimeout: options.logout?.backChannelTimeout ?? 5,
    backChannelRetries: options.logout?.backChannelRetries ?? 2,
    interactionLifetime: options.interaction?.lifetime ?? 3600,
    maxPending: options.interaction?.maxPending ?? 20_000,
    maxPendingPerAddress: options.interaction?.maxPendingPerAddress ?? 100,
    consentLifetime: options.interaction?.consentLifetime ?? 31_536_000,
    maxFormBytes: options.limits?.maxFormBytes ?? 65536,
    maxParameterLength: options.limits?.maxParameterLength ?? 4096,
    maxRequestObjectLength: options.limits?.maxRequestObjectLength ?? 16_384,
    maxParameters: options.limits?.maxParameters ?? 64,
    clientAuthThrottling: options.clientAuthThrottling === false ? false : { window: 900, maxPerClient: 10, maxPerAddress: 50, ...options.clientAuthThrottling },
    grantCleanupInterval: options.grantCleanupInterval ?? 600,
    outbound: { allowLoopback: false, allowPrivateNetworks: false, timeout: 5, maxResponseBytes: 65536, ...options.outbound },
    clientCache: { ttl: 5, negativeTtl: 1, maxEntries: 1000, ...options.clientCache },
    registration: {
      enabled: options.registration?.enabled ?? false,
      initialAccessToken: options.registration?.initialAccessToken ?? undefined,
      allowedScopes: options.registration?.allowedScopes ?? claims.identityResources,
      allowedGrantTypes: options.registration?.allowedGrantTypes ?? ["authorization_code", "refresh_token"],
      rateLimit: { window: 600, max: 50, networkMax: 200, totalMax: 1000, ...options.registration?.rateLimit },
      softwareStatement: options.registration?.softwareStatement && { ...options.registration.softwareStatement, required: options.registration.softwareStatement.required ?? false },
    },
  };
}
