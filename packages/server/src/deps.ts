import type { ClientStore } from "./clients.ts";
import type { ClientRegistry } from "./registry/client-registry.ts";
import type { ConsentService } from "./consent/consents.ts";
import type { KeyManager } from "./keys/key-manager.ts";
import type { LogoutService } from "./logout/logout-service.ts";
import type { BackChannelLogoutService } from "./logout/back-channel.ts";
import type { DataProtector } from "./keys/data-protection.ts";
import type { Logger, ResolvedOptions } from "./options.ts";
import type { TesseraEvent } from "./events.ts";
import type { InteractionService } from "./session/interactions.ts";
import type { SessionService } from "./session/session.ts";
import type { SessionManagementService } from "./session/session-management.ts";
import type { Client } from "./clients.ts";
import type { Store } from "./stores/interfaces.ts";
import type { GrantRegistry } from "./grants/index.ts";
import type { ProfileService } from "./tokens/claims.ts";
import type { FailureThrottle } from "./security/failure-throttle.ts";
import type { PendingRequestCap } from "./security/pending-requests.ts";
import type { FederationService } from "./federation/federation-service.ts";
import { arrivedOnMtlsListener } from "./http/request-context.ts";

/** Everything an endpoint may use; built once in provider.ts, no module-level state anywhere. */
export interface ProviderDeps {
  options: ResolvedOptions;
  store: Store;
  clients: ClientStore;
  /** Clients at run time: the admin operations and dynamic registration. */
  clientRegistry: ClientRegistry;
  keys: KeyManager;
  protector: DataProtector;
  sessions: SessionService;
  sessionManagement: SessionManagementService;
  interactions: InteractionService;
  consents: ConsentService;
  logout: LogoutService;
  backChannel: BackChannelLogoutService;
  profile: ProfileService;
  /** Token-endpoint grants by `grant_type` (built-ins and extension grants). */
  grants: GrantRegistry;
  /** Caps on requests stored before anyone signs in (pending authorize, logout and pushed requests). */
  pendingRequests: PendingRequestCap;
  /** Store-backed failure counters (client authentication). */
  throttle: FailureThrottle;
  logger: Logger;
  /** Fetch for URLs clients register (SSRF-guarded, no redirects, size-capped). */
  outboundFetch: (url: string, init?: RequestInit) => Promise<Response>;
  /** Emits an audit event to the configured sink. */
  emit: (event: TesseraEvent) => void;
  /** Sign-in through external identity providers (none configured: an empty registry). */
  federation: FederationService;
  /** Milliseconds. */
  clock: () => number;
}

/** Current time in Unix seconds. */
export function nowSeconds(deps: Pick<ProviderDeps, "clock">): number {
  return Math.floor(deps.clock() / 1000);
}

/** Endpoint URLs, relative to the issuer. */
export const PATHS = {
  discovery: "/.well-known/openid-configuration",
  oauthMetadata: "/.well-known/oauth-authorization-server",
  jwks: "/.well-known/openid-configuration/jwks",
  authorize: "/connect/authorize",
  authorizeCallback: "/connect/authorize/callback",
  token: "/connect/token",
  /** RFC 9126 pushed authorization requests. */
  par: "/connect/par",
  /** RFC 7591 dynamic client registration; RFC 7592 management at `/connect/register/{client_id}`. */
  registration: "/connect/register",
  /** RFC 8628 device authorization (IdentityServer's path). */
  deviceAuthorization: "/connect/deviceauthorization",
  userinfo: "/connect/userinfo",
  introspection: "/connect/introspect",
  revocation: "/connect/revocation",
  endSession: "/connect/endsession",
  checkSession: "/connect/checksession",
  /** Liveness probe (not advertised in discovery). */
  health: "/healthz",
  /** Readiness probe: the store answers (not advertised in discovery). */
  ready: "/readyz",
} as const;

/** Absolute URL of an endpoint. */
export function endpointUrl(deps: Pick<ProviderDeps, "options">, path: string): string {
  return deps.options.issuer + path;
}

/**
 * The URL of an endpoint as this request reached it (DPoP `htu`, RFC 9449 §4.3): its mTLS alias when the
 * host says the request came on the mTLS listener, else the issuer-based URL. Both come from configuration,
 * never from the request's Host or URL, so a proof made for another server is never accepted.
 */
export function endpointUrlFor(deps: Pick<ProviderDeps, "options">, request: Request, path: string): string {
  const mtlsBase = deps.options.mtls.endpointBaseUrl;
  return mtlsBase && arrivedOnMtlsListener(request) ? mtlsBase + path : endpointUrl(deps, path);
}

/**
 * For clients that coordinate their lifetime with the user session (server-side sessions on): is the
 * session still alive? Always true for other clients.
 */
export async function sessionAllows(deps: ProviderDeps, client: Client | undefined, sessionId: string | undefined): Promise<boolean> {
  if (!deps.options.serverSideSessions.enabled || !client?.coordinateLifetimeWithUserSession || !sessionId) return true;
  return deps.sessions.isAlive(sessionId);
}
