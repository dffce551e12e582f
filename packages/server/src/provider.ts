import { ProtocolError, type ProviderMetadata } from "@tessera/protocol";
import { resolveAccessToken } from "./tokens/access-token-resolver.ts";
import type { AccessTokenClaims } from "./tokens/token-service.ts";
import { Hono } from "hono";
import type { TesseraEvent } from "./events.ts";
import { startPeriodicJob } from "./jobs.ts";
import { createOutboundFetch } from "./http/outbound.ts";
import { cachedReadiness, requestTelemetry } from "./observability/requests.ts";
import { clientTaggingStore, tracedStore } from "./observability/tracing.ts";
import { attachRequestContext, clientAddressOf, type RequestContext } from "./http/request-context.ts";
import { FailureThrottle } from "./security/failure-throttle.ts";
import { isStoreUnavailable } from "./stores/sql/errors.ts";
import { StoreValueError } from "./stores/values.ts";
import { createStaticClientStore, type Client, type ClientMetadata, type ClientStore } from "./clients.ts";
import { requiredAcrFor, type AcrValue } from "./session/authentication-context.ts";
import { CachedClientStore, layeredClientStore } from "./registry/client-cache.ts";
import { ClientRegistry } from "./registry/client-registry.ts";
import { registrationEndpoint, registrationManagementEndpoint } from "./endpoints/registration.ts";
import type { ClientRecordStore } from "./stores/interfaces.ts";
import type { ResolvedOptions } from "./options.ts";
import { clientIdMetadataDocumentStore } from "./clients/metadata-document.ts";
import { ConsentService, type UserGrant } from "./consent/consents.ts";
import { PATHS, type ProviderDeps } from "./deps.ts";
import { authorizeCallbackEndpoint, authorizeEndpoint } from "./endpoints/authorize.ts";
import { discoveryEndpoint, jwksEndpoint, providerMetadata } from "./endpoints/discovery.ts";
import { tokenEndpoint } from "./endpoints/token.ts";
import { createGrantRegistry } from "./grants/index.ts";
import { deviceGrants } from "./grants/device-code.ts";
import { parEndpoint, parMethodNotAllowed } from "./endpoints/par.ts";
import { deviceAuthorizationEndpoint } from "./endpoints/device-authorization.ts";
import { decideDeviceAuthorization, lookUpUserCode } from "./device/device-flow.ts";
import { createTokenExchangeGrant, TOKEN_EXCHANGE_GRANT_TYPE } from "./grants/token-exchange.ts";
import { userinfoEndpoint } from "./endpoints/userinfo.ts";
import { validateBearerToken } from "./validation/bearer-token.ts";
import { introspectionEndpoint } from "./endpoints/introspection.ts";
import { checkSessionEndpoint } from "./endpoints/check-session.ts";
import { endSessionEndpoint, logoutPageUrl } from "./endpoints/end-session.ts";
import { BackChannelLogoutService } from "./logout/back-channel.ts";
import { LogoutService, type SignedOutDetails } from "./logout/logout-service.ts";
import { revocationEndpoint } from "./endpoints/revocation.ts";
import { CorsPolicy } from "./http/cors.ts";
import { Params } from "./http/params.ts";
import { errorJson, noStoreJson, seeOtherAfterPost } from "./http/responses.ts";
import { DataProtector } from "./keys/data-protection.ts";
import { KeyManager } from "./keys/key-manager.ts";
import { resolveOptions, silentLogger, type ProviderOptions } from "./options.ts";
import { InteractionService } from "./session/interactions.ts";
import { PendingRequestCap } from "./security/pending-requests.ts";
import { EndedSessions } from "./session/ended-sessions.ts";
import { SessionService, type AuthenticationSession, type SignInUser } from "./session/session.ts";
import { SessionManagementService, type RemoveSessionsRequest, type SessionInfo } from "./session/session-management.ts";
import type { SessionQuery } from "./stores/interfaces.ts";
import { defaultProfileService, type UserStore } from "./tokens/claims.ts";
import { ExternalProviderRegistry, StoredExternalProviders, type ExternalProviderOptions } from "./federation/external-providers.ts";
import { FederationService, RECENT_AUTHENTICATION } from "./federation/federation-service.ts";
import { federationBackchannelEndpoint, federationCallbackEndpoint, federationSignedOutEndpoint } from "./endpoints/federation.ts";
import { UserDirectory } from "./accounts/user-directory.ts";

/** The host (or, for a private-use scheme, the scheme) a redirect URI sends the user to, for the pages. */
function redirectHostOf(uri: string | undefined): string | undefined {
  if (!uri) return undefined;
  try {
    const url = new URL(uri);
    return url.host || url.protocol.slice(0, -1);
  } catch {
    return undefined;
  }
}

/** What a login or consent page needs to know about the request it serves. */
export interface InteractionDetails {
  /** Where to send the browser when the page is done. */
  returnUrl: string;
  /**
   * `metadataDocumentHost`: the host and path of a metadata-document client's URL, to show beside its name.
   * `unverified`: a dynamically registered client nobody vetted; `redirectHost` is then the host of the
   * request's redirect URI, to show beside its self-chosen name.
   */
  client: { clientId: string; clientName: string; redirectUris: string[]; metadataDocumentHost?: string; unverified?: true; redirectHost?: string };
  scopes: string[];
  loginHint?: string;
  prompt: string[];
  uiLocales?: string;
  /**
   * The authentication context the request needs (`acr_values`, the client's `default_acr_values`, the
   * second-factor policy): a signed-in user whose session has less must step up (a second factor for
   * `mfa`, a passkey for `phr`) rather than sign in again.
   */
  acr?: AcrValue;
  /**
   * True when the client's or the provider's second-factor policy (not the request's `acr_values`) asks
   * for a second factor: only then may a user without one enrol at sign-in.
   */
  secondFactorRequired?: boolean;
  /** OIDC Core `max_age`, when the request has one. */
  maxAge?: number;
}

/** A pending device authorization (RFC 8628), as the verification and confirmation pages show it. */
export interface DeviceRequestDetails {
  /** The user code as shown to people (XXXX-XXXX), to compare with the device's screen. */
  userCode: string;
  client: { clientId: string; clientName: string };
  scopes: string[];
  /** Unix seconds. */
  expiresAt: number;
  /** The authentication context an approval needs (the client's `default_acr_values`, the second-factor policy). */
  acr?: AcrValue;
  /** True when the second-factor policy asks for it (a user without a second factor enrols at sign-in). */
  secondFactorRequired?: boolean;
}

/** The outcome of {@link Provider.getDeviceRequest}: unknown (or over) and throttled codes look alike to the caller's user. */
export type DeviceRequestLookup = { status: "found"; request: DeviceRequestDetails } | { status: "invalid" } | { status: "throttled" };

/** The outcome of {@link Provider.completeDeviceAuthorization}; send `cookies` with the response. */
export type DeviceDecisionResult = { ok: true; decision: "approved" | "denied"; cookies: string[] } | { ok: false; reason: "invalid" | "throttled" | "signed_out" | "step_up"; acr?: AcrValue };

/** The result of signing a user in: the session and the Set-Cookie values to send. */
export interface SignInResult {
  session: AuthenticationSession;
  cookies: string[];
}

/** The outcome of {@link Provider.authenticateRequest}: the token's claims, or the error to answer with (its status and `WWW-Authenticate`). */
export type RequestAuthentication =
  | { ok: true; claims: AccessTokenClaims; tokenType: "Bearer" | "DPoP" }
  | { ok: false; error: ProtocolError };

/** An OpenID Provider as a Web-standard request handler. */
export interface Provider {
  readonly issuer: string;
  /**
   * Handles a request to any provider endpoint; 404 for other paths. A host terminating mutual TLS passes
   * the connection's client certificate (never one taken from a request header it did not configure).
   */
  fetch(request: Request, context?: RequestContext): Promise<Response>;
  /** The discovery document. */
  metadata(): ProviderMetadata;
  /** Signs a user in (the sign-in API for login pages); send the returned cookies with the response. */
  signIn(request: Request, user: SignInUser, options?: { persistent?: boolean }): Promise<SignInResult>;
  /**
   * Ends the request's authentication session here (its server-side record too) without notifying its
   * clients, and returns the Set-Cookie values that clear it; `endSession` is the single sign-out.
   */
  signOut(request: Request): Promise<string[]>;
  /** The current authentication session, if the request carries a valid one. */
  getSession(request: Request): Promise<AuthenticationSession | undefined>;
  /** Details of a pending authorization request from a login/consent page's `returnUrl`. */
  getInteraction(returnUrl: string): Promise<InteractionDetails | undefined>;
  /**
   * Records the signed-in user's consent decision for a pending request; returns the URL to continue
   * to, or undefined when the request is unknown or no user is signed in.
   */
  completeConsent(request: Request, returnUrl: string, allow: boolean, options?: { remember?: boolean }): Promise<string | undefined>;
  /**
   * A pending device authorization by the user code a person typed (any case; dashes and spaces ignored).
   * Codes that find nothing count against `clientAddress` (the person's address): too many and every
   * lookup from there is `throttled` for a while (RFC 8628 §5.1).
   */
  getDeviceRequest(userCode: string, options?: { clientAddress?: string }): Promise<DeviceRequestLookup>;
  /**
   * Records the signed-in user's decision on a device authorization (approval counts as consent); the
   * device's next poll gets tokens or `access_denied`. Looks the code up as {@link getDeviceRequest} does.
   */
  completeDeviceAuthorization(request: Request, userCode: string, allow: boolean, options?: { clientAddress?: string }): Promise<DeviceDecisionResult>;
  /** The clients a user has consented to or that hold the user's refresh tokens. */
  listGrants(subject: string): Promise<UserGrant[]>;
  /** Revokes a user's consent and every token and code of one client (or of all clients). */
  revokeGrants(subject: string, clientId?: string): Promise<void>;
  /**
   * Ends the request's authentication session (single sign-out): back-channel notifications start, and the
   * returned URL is the signed-out page, which loads the front-channel URLs. Send the cookies with the response.
   */
  endSession(request: Request, logoutId?: string): Promise<{ cookies: string[]; signedOutUrl: string }>;
  /** The client and state of a pending logout (for the logout prompt), if `logoutId` is known. */
  getLogoutRequest(logoutId: string): Promise<{ clientName?: string; ended: boolean } | undefined>;
  /**
   * What the signed-out page shows: front-channel iframes and where to continue, once per logout. A
   * replayed (or unknown) id never ends a session: when `request` carries one, `logoutPromptUrl` is where
   * to send the user to confirm (the logout prompt); otherwise undefined, for a plain signed-out page.
   */
  getSignedOut(logoutId: string, request?: Request): Promise<SignedOutDetails | { logoutPromptUrl: string } | undefined>;
  /** Server-side sessions, filtered and paged (empty when server-side sessions are off). */
  querySessions(query: SessionQuery): Promise<{ sessions: SessionInfo[]; next: string | null }>;
  /** Ends server-side sessions: their tokens, optionally consents, and back-channel logout to their clients. */
  removeSessions(request: RemoveSessionsRequest): Promise<number>;
  /** The external identity providers (config, then stored), for the login page's buttons (`button[name=provider][value={id}]`). */
  externalProviders(): Promise<{ id: string; displayName: string }[]>;
  /**
   * Every provider as the admin API shows it (never the client secret); `fixed`: an entry of the config,
   * which only the config changes.
   */
  listExternalProviders(): Promise<(Omit<ExternalProviderOptions, "client_secret"> & { fixed: boolean })[]>;
  /** Adds or replaces a stored provider (secret encrypted at rest); throws {@link ExternalProviderError}. */
  putExternalProvider(entry: ExternalProviderOptions): Promise<void>;
  /** Removes a stored provider; false when there is none; throws {@link ExternalProviderError} for a config one. */
  removeExternalProvider(id: string): Promise<boolean>;
  /**
   * Where to send the browser to sign in through an external provider for a pending authorization request
   * (`returnUrl` from {@link getInteraction}); undefined for an unknown provider or request.
   */
  startExternalSignIn(request: Request, providerId: string, returnUrl: string): Promise<{ url: string; cookies: string[] } | undefined>;
  /** The signed-in user's links to external providers (the account page), or undefined when nobody is signed in. */
  listExternalLinks(request: Request): Promise<{ providerId?: string; displayName: string; issuer: string; externalSubject: string; createdAt: number }[] | undefined>;
  /**
   * The account page's trip to a provider: `link` adds that provider's identity to the signed-in account
   * (only within 5 minutes of an authentication: otherwise `reauthenticate`), `reauth` signs in again through
   * a provider already linked. `returnTo` is a path of this server. `invalid` for an unknown provider, path
   * or a request without a session.
   */
  startExternalLink(request: Request, providerId: string, purpose: "link" | "reauth", returnTo: string): Promise<{ url: string; cookies: string[] } | "reauthenticate" | "invalid">;
  /** Removes a link of the signed-in user (within 5 minutes of an authentication); never the account's last way to sign in. */
  removeExternalLink(request: Request, issuer: string, externalSubject: string): Promise<"removed" | "not_found" | "last_method" | "reauthenticate">;
  /**
   * Validates an access token issued here (JWT or reference; signature, expiry, revocation, session).
   * Sender-constrained tokens (`cnf`) are refused, since the token alone proves no possession: an API
   * hosted next to the provider authenticates its requests with {@link Provider.authenticateRequest}.
   */
  validateAccessToken(token: string): Promise<AccessTokenClaims | undefined>;
  /**
   * Authenticates a request to an API hosted beside the provider (the admin API) by the access token it
   * carries, with the rules of the provider's own endpoints: a DPoP-bound token only with the DPoP scheme
   * and a proof for this request (RFC 9449 §7), a certificate-bound token only over a connection with that
   * certificate (RFC 8705 §3), which the host passes in `context` as for {@link Provider.fetch}.
   */
  authenticateRequest(request: Request, context?: RequestContext): Promise<RequestAuthentication>;
  /** Clients at run time (admin operations over the client store, beside the read-only configured clients). */
  readonly clients: ClientRegistry;
  /** True when the store answers within a second (the readiness probe, `GET {issuer}/readyz`). */
  ready(): Promise<boolean>;
  /** Stops background jobs, waits for back-channel deliveries in flight, and closes the store. */
  close(): Promise<void>;
}

/**
 * The provider's client lookup, composed in this one place: the configured clients (read-only, winning on
 * an id clash), then the stored ones through the per-process cache, then `further` (Client ID Metadata
 * Documents: asked only for ids neither knows), then span tagging.
 */
function composeClientStore(
  configured: ClientMetadata[],
  records: ClientRecordStore,
  options: ResolvedOptions,
  further: (known: ClientStore) => ClientStore,
): { configStore: ClientStore; cache: CachedClientStore; lookup: ClientStore } {
  const configStore = createStaticClientStore(configured, options.algorithms);
  const cache = new CachedClientStore(async (clientId) => {
    const record = await records.get(clientId);
    return record ? ClientRegistry.toClient(record, options.algorithms) : undefined;
  }, options.clientCache);
  return { configStore, cache, lookup: clientTaggingStore(further(layeredClientStore(configStore, cache))) };
}

/** Most expired grants deleted per statement, so one run never holds a long lock. */
const CLEANUP_BATCH = 1000;

/** Creates an OpenID Provider. Keys are created in the store on first use. */
export function createProvider(providerOptions: ProviderOptions): Provider {
  const options = resolveOptions(providerOptions);
  const clock = providerOptions.clock ?? Date.now;
  const logger = providerOptions.logger ?? silentLogger;
  const protector = new DataProtector(providerOptions.dataKey);
  const sink = providerOptions.events ?? ((event) => logger.info({ event }, event.type));
  const emit = (event: TesseraEvent) => {
    try {
      sink({ ...event, at: new Date(clock()).toISOString() });
    } catch (err) {
      logger.warn({ err }, "event sink failed");
    }
  };
  const observer = providerOptions.observer;
  // Every store call goes through one wrapper: a span each, failures counted.
  const store = tracedStore(providerOptions.store, observer?.storeError?.bind(observer));
  const cimd = options.clientIdMetadataDocuments;
  const documents = (inner: ClientStore) =>
    clientIdMetadataDocumentStore(inner, { options: cimd, fetch: createOutboundFetch({ ...options.outbound, timeout: Math.min(options.outbound.timeout, cimd.timeout), maxResponseBytes: Math.min(options.outbound.maxResponseBytes, cimd.maxResponseBytes) }), clock, logger, algorithms: options.algorithms });
  const { configStore, cache: clientCache, lookup: clients } = composeClientStore(providerOptions.clients, store.clients, options, documents);
  for (const client of providerOptions.clients) {
    const alg = client.id_token_signed_response_alg;
    if (alg !== undefined && !options.algorithms.includes(alg as never)) {
      throw new TypeError(`client ${client.client_id}: id_token_signed_response_alg ${alg} is not in keys.algorithms`);
    }
  }
  const exchange = providerOptions.tokenExchange;
  const keys = new KeyManager(store.keys, protector, options.algorithms, clock, options.keyRotation, (change) => emit(change));
  if (providerOptions.externalProviders?.length && !store.accounts) throw new TypeError("externalProviders need a store with accounts (store.accounts)");
  // Accounts created by external sign-ins live in the store. A UserDirectory over that store (the host's) finds
  // them already; other user stores are followed by one, so the store's accounts go through the directory's
  // rules (claims, disabled accounts, sessionsValidAfter) and never a second path.
  const users: UserStore | undefined =
    providerOptions.externalProviders?.length && providerOptions.users && !(providerOptions.users instanceof UserDirectory && providerOptions.users.store === store.accounts)
      ? withStoredAccounts(providerOptions.users, new UserDirectory({ store: store.accounts, clock }))
      : providerOptions.users;
  const displayNameLookup = users
    ? async (sub: string, claimType: string) => {
        const value = (await users.findBySubject(sub))?.claims[claimType];
        return typeof value === "string" ? value : undefined;
      }
    : undefined;
  const nowSeconds = () => Math.floor(clock() / 1000);
  const endedSessions = new EndedSessions(store.grants, options.cookieLifetime, nowSeconds);
  const sessionValid = users?.isSessionValid ? (sub: string, signedInAt: number) => users.isSessionValid!(sub, signedInAt) : undefined;
  const sessions = new SessionService(options, protector, store.sessions, clock, endedSessions, displayNameLookup, sessionValid);
  // The provider's own extension grants (device code, token exchange) are built on the same public API as an embedder's.
  const grants = createGrantRegistry(providerOptions.grants ?? {}, {
    ...deviceGrants({ store, sessions, options, clock }),
    ...(exchange?.enabled === false ? {} : { [TOKEN_EXCHANGE_GRANT_TYPE]: createTokenExchangeGrant({ policy: exchange?.policy }) }),
  });
  const outboundFetch = createOutboundFetch({ ...options.outbound, timeout: Math.min(options.outbound.timeout, options.backChannelTimeout) });
  const backChannel = new BackChannelLogoutService(options.issuer, keys, logger, clock, { timeout: options.backChannelTimeout, retries: options.backChannelRetries }, emit, outboundFetch);
  const pendingCap = new PendingRequestCap(store.grants, options.maxPending, options.maxPendingPerAddress, () => Math.floor(clock() / 1000), options.par.maxPendingPerClient);
  const clientRegistry = new ClientRegistry({
    records: store.clients,
    grants: store.grants,
    configured: configStore,
    configuredMetadata: providerOptions.clients,
    cache: clientCache,
    rules: {
      scopes: new Set([...options.identityResources, ...options.apiScopes.map((s) => s.name)]),
      signingAlgorithms: options.algorithms,
      mtls: { enabled: options.mtls.enabled, clientCa: options.mtls.clientCas.length > 0 },
    },
    emit,
    clock,
    originsTtl: options.clientCache.ttl,
    metadataDocumentIds: cimd.enabled,
  });
  const sessionManagement = new SessionManagementService(store.sessions, store.grants, clients, backChannel, endedSessions, emit);
  // Discovery, token, userinfo and JWKS requests to external providers follow the outbound rules.
  const federationFetch = createOutboundFetch(options.outbound);
  const federation = new FederationService(new ExternalProviderRegistry(providerOptions.externalProviders ?? [], federationFetch, nowSeconds, new StoredExternalProviders(store.grants, protector, nowSeconds)), {
    options,
    grants: store.grants,
    accounts: store.accounts,
    users: providerOptions.users,
    sessions,
    sessionManagement,
    protector,
    cap: pendingCap,
    fetch: federationFetch,
    emit,
    clock,
  });
  const deps: ProviderDeps = {
    options,
    store,
    clients,
    clientRegistry,
    keys,
    protector,
    sessions,
    sessionManagement,
    backChannel,
    logout: new LogoutService(options.issuer, store.grants, clients, sessions, backChannel, options.interactionLifetime, nowSeconds, pendingCap, protector, emit),
    interactions: new InteractionService(store.grants, options.interactionLifetime, clock, pendingCap),
    pendingRequests: pendingCap,
    consents: new ConsentService(store.grants, clients, options.consentLifetime, nowSeconds),
    profile: providerOptions.profile ?? defaultProfileService(users),
    grants,
    throttle: new FailureThrottle(store.grants, () => Math.floor(clock() / 1000)),
    logger,
    emit,
    outboundFetch,
    federation,
    clock,
  };

  const cors = new CorsPolicy(providerOptions.clients.flatMap((c) => c.redirect_uris ?? []), () => clientRegistry.redirectOrigins());
  const app = new Hono().basePath(options.basePath || "/");
  app.use(requestTelemetry({ observer }));
  for (const path of [PATHS.token, PATHS.par, PATHS.revocation, PATHS.userinfo]) app.options(path, (c) => cors.preflight(c.req.raw));
  const route = (handler: (request: Request) => Promise<Response>) => (c: { req: { raw: Request } }) => handler(c.req.raw);
  // CORS headers are added by wrapping the handler: a middleware assigning c.res would make Hono copy
  // every response into a new streamed one.
  const errorResponse = (error: unknown): Response => {
    if (error instanceof ProtocolError) return errorJson(error);
    if (error instanceof StoreValueError) {
      // A value that slipped past the edge checks: the request's fault, unless the server produced it.
      if (error.origin === "server") logger.error({ err: error }, "server value refused by the store");
      else logger.warn({ err: error }, "value refused by the store");
      return errorJson(new ProtocolError("invalid_request", "a value is too long or contains characters that cannot be stored"));
    }
    if (isStoreUnavailable(error)) {
      logger.warn({ err: error }, "store unavailable");
      return errorJson(new ProtocolError("temporarily_unavailable", "the service is temporarily unavailable", { status: 503, headers: { "retry-after": "5" } }));
    }
    logger.error({ err: error }, "unhandled error");
    return errorJson(new ProtocolError("server_error", "an unexpected error occurred"));
  };
  const corsRoute = (handler: (request: Request) => Promise<Response>) =>
    route(async (request) => cors.apply(request, await handler(request).catch(errorResponse)));
  app.get(PATHS.discovery, route(discoveryEndpoint(deps)));
  app.get(PATHS.oauthMetadata, route(discoveryEndpoint(deps)));
  app.get(PATHS.jwks, route(jwksEndpoint(deps)));
  app.on(["GET", "POST"], PATHS.authorize, route(authorizeEndpoint(deps)));
  app.get(PATHS.authorizeCallback, route(authorizeCallbackEndpoint(deps)));
  app.post(PATHS.token, corsRoute(tokenEndpoint(deps)));
  // SPAs push too (oidc-provider allows CORS there), so PAR answers preflights and carries CORS headers.
  app.post(PATHS.par, corsRoute(parEndpoint(deps)));
  app.all(PATHS.par, corsRoute(parMethodNotAllowed));
  app.post(PATHS.deviceAuthorization, route(deviceAuthorizationEndpoint(deps)));
  if (options.registration.enabled) {
    app.post(PATHS.registration, route(registrationEndpoint(deps)));
    const manage = registrationManagementEndpoint(deps);
    app.on(["GET", "PUT", "DELETE"], `${PATHS.registration}/:clientId`, (c) => manage(c.req.raw, c.req.param("clientId")));
  }
  app.on(["GET", "POST"], PATHS.userinfo, corsRoute(userinfoEndpoint(deps)));
  app.post(PATHS.introspection, route(introspectionEndpoint(deps)));
  app.post(PATHS.revocation, corsRoute(revocationEndpoint(deps)));
  app.on(["GET", "POST"], PATHS.endSession, route(endSessionEndpoint(deps)));
  app.get(PATHS.checkSession, route(checkSessionEndpoint(deps, cors.configured, () => clientRegistry.redirectOrigins())));
  const federationRoute = (handler: (request: Request, id: string) => Promise<Response>) => (c: { req: { raw: Request; param(name: "id"): string } }) => handler(c.req.raw, c.req.param("id"));
  app.on(["GET", "POST"], "/federation/:id/callback", federationRoute(federationCallbackEndpoint(deps, federation)));
  app.get("/federation/:id/signed-out", federationRoute(federationSignedOutEndpoint(deps, federation)));
  app.post("/federation/:id/backchannel", federationRoute(federationBackchannelEndpoint(deps, federation)));
  // Probes (contract §9): no auth, never cached.
  app.get(PATHS.health, () => noStoreJson({ status: "ok" }));
  // Real time, not the injected clock: the cache bounds store round trips, not protocol lifetimes.
  const ready = cachedReadiness(store);
  app.get(PATHS.ready, async () => ((await ready()) ? noStoreJson({ status: "ok" }) : noStoreJson({ status: "unavailable" }, 503)));
  app.notFound(() => noStoreJson({ error: "not_found" }, 404));
  app.onError(errorResponse);

  const grantCleanup = startPeriodicJob(async () => {
    try {
      let removed = 0;
      for (let batch = CLEANUP_BATCH; batch === CLEANUP_BATCH; removed += batch) {
        batch = await store.grants.removeExpired(Math.floor(clock() / 1000), CLEANUP_BATCH);
      }
      for (let batch = CLEANUP_BATCH; batch === CLEANUP_BATCH; removed += batch) {
        batch = await store.deviceCodes.removeExpired(Math.floor(clock() / 1000), CLEANUP_BATCH);
      }
      if (removed > 0) logger.info({ removed }, "expired grants removed");
      // Expired one-time account tokens (verification and reset links) go with them.
      if (store.accounts) {
        let tokens = 0;
        for (let batch = CLEANUP_BATCH; batch === CLEANUP_BATCH; tokens += batch) {
          batch = await store.accounts.removeExpiredTokens(Math.floor(clock() / 1000), CLEANUP_BATCH);
        }
        if (tokens > 0) logger.info({ removed: tokens }, "expired account tokens removed");
      }
    } catch (err) {
      logger.warn({ err }, "grant cleanup failed");
    }
  }, options.grantCleanupInterval);

  // Expired server-side sessions: each process deletes with RETURNING, so each session is handled once.
  const ss = options.serverSideSessions;
  const removeExpiredSessions = async () => {
    try {
      for (;;) {
        const removed = await store.sessions.removeExpired(Math.floor(clock() / 1000), CLEANUP_BATCH);
        for (const session of removed) emit({ type: "session.revoked", sub: session.subject, sid: session.sessionId, reason: "expired" });
        await deps.sessionManagement.afterRemoval(removed, { revokeTokens: false, sendBackchannelLogout: ss.expiredSessionsTriggerBackchannelLogout });
        if (removed.length > 0) logger.info({ removed: removed.length }, "expired sessions removed");
        if (removed.length < CLEANUP_BATCH) break;
      }
    } catch (err) {
      logger.warn({ err }, "session cleanup failed");
    }
  };
  const sessionCleanup = ss.enabled && ss.removeExpiredSessions ? startPeriodicJob(removeExpiredSessions, ss.removeExpiredSessionsFrequency) : undefined;

  const interactionId = (returnUrl: string): string | undefined => {
    let url: URL;
    try {
      url = new URL(returnUrl, options.issuer);
    } catch {
      return undefined;
    }
    if (url.origin !== new URL(options.issuer).origin || url.pathname !== options.basePath + PATHS.authorizeCallback) return undefined;
    return url.searchParams.get("interaction") ?? undefined;
  };

  return {
    issuer: options.issuer,
    fetch: async (request, context) => {
      if (context) attachRequestContext(request, context);
      return seeOtherAfterPost(request, await app.fetch(request));
    },
    metadata: () => providerMetadata(deps),
    async signIn(request, user, signInOptions) {
      const result = await deps.sessions.signIn(request, user, signInOptions?.persistent ?? false);
      emit({ type: "session.started", sub: result.session.sub, sid: result.session.sid, idp: result.session.idp, amr: result.session.amr });
      return result;
    },
    async signOut(request) {
      const session = (await deps.sessions.read(request))?.session;
      if (session) await deps.sessions.end(session);
      return deps.sessions.signOutCookies();
    },
    getSession: async (request) => (await deps.sessions.read(request))?.session,
    async getInteraction(returnUrl) {
      const id = interactionId(returnUrl);
      const interaction = id ? await deps.interactions.get(id) : undefined;
      if (!interaction) return undefined;
      const client = await clients.findClientById(interaction.clientId);
      if (!client) return undefined;
      const params = Params.fromEntries(interaction.params);
      return {
        returnUrl: `${options.basePath}${PATHS.authorizeCallback}?interaction=${encodeURIComponent(interaction.id)}`,
        client: {
          clientId: client.clientId,
          clientName: client.clientName,
          redirectUris: client.redirectUris,
          ...(client.metadataDocumentHost ? { metadataDocumentHost: client.metadataDocumentHost } : {}),
          ...(client.untrusted ? { unverified: true as const, redirectHost: redirectHostOf(params.get("redirect_uri") ?? client.redirectUris[0]) } : {}),
        },
        scopes: (params.get("scope") ?? "").split(" ").filter(Boolean),
        loginHint: params.get("login_hint"),
        prompt: (params.get("prompt") ?? "").split(" ").filter(Boolean),
        uiLocales: params.get("ui_locales"),
        ...acrDetails(params, client, options),
      };
    },
    async completeConsent(request, returnUrl, allow, consentOptions) {
      const id = interactionId(returnUrl);
      const interaction = id ? await deps.interactions.get(id) : undefined;
      const session = await deps.sessions.read(request);
      if (!interaction || !session) return undefined;
      interaction.consent = { allow, remember: consentOptions?.remember ?? false, sid: session.session.sid };
      await deps.interactions.save(interaction);
      return `${options.basePath}${PATHS.authorizeCallback}?interaction=${encodeURIComponent(interaction.id)}`;
    },
    async getDeviceRequest(userCode, lookupOptions) {
      const found = await lookUpUserCode(deps, userCode, lookupOptions?.clientAddress);
      if (found.status !== "found") return found;
      const client = await clients.findClientById(found.record.clientId);
      if (!client) return { status: "invalid" };
      return {
        status: "found",
        request: { userCode: found.userCode, client: { clientId: client.clientId, clientName: client.clientName }, scopes: found.record.scope.split(" ").filter(Boolean), expiresAt: found.record.expiresAt, ...deviceAcr(client, options) },
      };
    },
    async completeDeviceAuthorization(request, userCode, allow, lookupOptions) {
      const read = await deps.sessions.read(request);
      if (!read) return { ok: false, reason: "signed_out" };
      const found = await lookUpUserCode(deps, userCode, lookupOptions?.clientAddress);
      if (found.status !== "found") return { ok: false, reason: found.status };
      const client = await clients.findClientById(found.record.clientId);
      if (!client) return { ok: false, reason: "invalid" };
      const decided = await decideDeviceAuthorization(deps, found.record, client, read.session, allow);
      if (decided === "step_up") return { ok: false, reason: "step_up", ...deviceAcr(client, options) };
      if (decided !== "decided") return { ok: false, reason: "invalid" };
      emit({ type: allow ? "device.approved" : "device.denied", clientId: found.record.clientId, sub: read.session.sub });
      // The device's tokens belong to this session: single sign-out reaches its client too.
      const cookies = allow ? await deps.sessions.addClient(read.session, found.record.clientId) : [];
      return { ok: true, decision: allow ? "approved" : "denied", cookies: [...read.cookies, ...cookies] };
    },
    listGrants: (subject) => deps.consents.list(subject),
    async revokeGrants(subject, clientId) {
      const removed = await deps.consents.revoke(subject, clientId);
      logger.info({ subject, clientId, removed }, "grants revoked");
    },
    async endSession(request, logoutId) {
      const ended = await deps.logout.endSession(request, logoutId);
      return { cookies: ended.cookies, signedOutUrl: await federation.signOutRedirect(ended.sid, logoutPageUrl(deps, options.signedOutUrl, ended.logoutId)) };
    },
    externalProviders: async () => (await federation.registry.list()).map((p) => ({ id: p.id, displayName: p.displayName })),
    listExternalProviders: async () =>
      (await federation.registry.list()).map((p) => {
        const { client_secret: _secret, ...shown } = p.options;
        return { ...shown, fixed: p.fixed };
      }),
    async putExternalProvider(entry) {
      await federation.registry.put(entry);
    },
    removeExternalProvider: (id) => federation.registry.remove(id),
    async listExternalLinks(request) {
      const session = (await deps.sessions.read(request))?.session;
      if (!session || !store.accounts) return undefined;
      return (await federation.links(session.sub)).map((l) => ({ providerId: l.provider?.id, displayName: l.provider?.displayName ?? l.issuer, issuer: l.issuer, externalSubject: l.externalSubject, createdAt: l.createdAt }));
    },
    async startExternalLink(request, providerId, purpose, returnTo) {
      const session = (await deps.sessions.read(request))?.session;
      const provider = await federation.registry.get(providerId);
      const local = returnTo.startsWith(`${options.basePath}/`) && !/[\\]|\/\/|^\/[^/]*:|[\u0000-\u001f]/.test(returnTo) && returnTo.length <= 200;
      if (!session || !provider || !local || !store.accounts) return "invalid";
      if (purpose === "link" && session.authTime < nowSeconds() - RECENT_AUTHENTICATION) return "reauthenticate";
      const started = await federation.start(provider, { sub: session.sub, sid: session.sid, purpose, returnTo }, request, clientAddressOf(request));
      return { url: started.url, cookies: [started.cookie] };
    },
    async removeExternalLink(request, issuer, externalSubject) {
      const session = (await deps.sessions.read(request))?.session;
      if (!session || !store.accounts) return "not_found";
      if (session.authTime < nowSeconds() - RECENT_AUTHENTICATION) return "reauthenticate";
      return federation.unlink(session.sub, issuer, externalSubject);
    },
    async startExternalSignIn(request, providerId, returnUrl) {
      const provider = await federation.registry.get(providerId);
      const id = interactionId(returnUrl);
      const interaction = provider && id ? await deps.interactions.get(id) : undefined;
      if (!provider || !interaction) return undefined;
      const started = await federation.start(provider, interaction.id, request, clientAddressOf(request));
      return { url: started.url, cookies: [started.cookie] };
    },
    async getLogoutRequest(logoutId) {
      const data = await deps.logout.get(logoutId);
      if (!data) return undefined;
      const client = data.clientId ? await clients.findClientById(data.clientId) : undefined;
      return { clientName: client?.clientName, ended: data.ended };
    },
    async getSignedOut(logoutId, request) {
      const shown = await deps.logout.signedOut(logoutId, request);
      if (shown !== "confirm") return shown;
      const prompt = /^https?:\/\//.test(options.logoutUrl) ? new URL(options.logoutUrl) : new URL(options.issuer + options.logoutUrl);
      return { logoutPromptUrl: prompt.toString() };
    },
    querySessions: (query) => deps.sessionManagement.query(query),
    removeSessions: (request) => deps.sessionManagement.remove(request),
    async validateAccessToken(token) {
      const claims = (await resolveAccessToken(token, deps))?.claims;
      return claims && claims.cnf === undefined ? claims : undefined;
    },
    async authenticateRequest(request, context) {
      // The API reads the body itself afterwards; the validator may read a form-encoded one.
      const presented = request.body ? request.clone() : request;
      if (context) attachRequestContext(presented, context);
      const pathname = new URL(request.url).pathname;
      const path = pathname.startsWith(options.basePath) ? pathname.slice(options.basePath.length) : pathname;
      try {
        const resolved = await validateBearerToken(presented, deps, path);
        return { ok: true, claims: resolved.claims, tokenType: resolved.claims.cnf?.jkt ? "DPoP" : "Bearer" };
      } catch (error) {
        if (error instanceof ProtocolError) return { ok: false, error };
        throw error;
      }
    },
    clients: clientRegistry,
    ready,
    async close() {
      await grantCleanup.stop();
      await sessionCleanup?.stop();
      await backChannel.drain();
      await store.close();
    },
  };
}

/** The step-up part of {@link InteractionDetails}. */
function acrDetails(params: Params, client: Client, provider: { requireSecondFactor: boolean; acrValues: readonly AcrValue[] }): { acr?: AcrValue; maxAge?: number; secondFactorRequired?: boolean } {
  const acr = requiredAcrFor(params.get("acr_values"), client, provider);
  const maxAge = params.get("max_age");
  const policy = client.requireSecondFactor || provider.requireSecondFactor;
  return { ...(acr ? { acr } : {}), ...(policy ? { secondFactorRequired: true } : {}), ...(maxAge !== undefined && /^\d{1,10}$/.test(maxAge) ? { maxAge: Number(maxAge) } : {}) };
}

/** What approving a device authorization of `client` needs (there are no `acr_values` in RFC 8628). */
function deviceAcr(client: Client, provider: { requireSecondFactor: boolean; acrValues: readonly AcrValue[] }): { acr?: AcrValue; secondFactorRequired?: boolean } {
  const acr = requiredAcrFor(undefined, client, provider);
  return { ...(acr ? { acr } : {}), ...(client.requireSecondFactor || provider.requireSecondFactor ? { secondFactorRequired: true } : {}) };
}

/** The given users, then the store's accounts through `directory` (those external sign-ins created). */
function withStoredAccounts(users: UserStore, directory: UserDirectory): UserStore {
  return {
    async findBySubject(sub) {
      return (await users.findBySubject(sub)) ?? directory.findBySubject(sub);
    },
    async isSessionValid(sub, signedInAt) {
      if (await users.findBySubject(sub)) return users.isSessionValid ? users.isSessionValid(sub, signedInAt) : true;
      // Unknown to both: as without a directory, the session is kept (sign-in API subjects of the embedder).
      return (await directory.store?.findBySubject(sub)) ? directory.isSessionValid(sub, signedInAt) : true;
    },
  };
}
