import { ProtocolError } from "@tessera/protocol";
import type { Client, TokenEndpointAuthMethod } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import { secretMatches } from "./client-secret.ts";
import { JWT_BEARER, verifyClientAssertion } from "./jwt-assertion.ts";
import { certificateAuthenticates } from "./tls.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { addressBucket } from "../security/pending-requests.ts";

/** The credentials a request presented, before they are checked. */
export interface PresentedCredentials {
  method: TokenEndpointAuthMethod | "jwt_assertion";
  clientId: string;
  secret?: string;
  assertion?: string;
}

export function invalidClient(description: string, basic: boolean): ProtocolError {
  return new ProtocolError("invalid_client", description, {
    status: 401,
    headers: basic ? { "www-authenticate": 'Basic realm="tessera", charset="UTF-8"' } : {},
  });
}

/** RFC 6749 §2.3.1: the Basic credentials are form-urlencoded before base64. */
function decodeBasicPart(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, "%20"));
}

/** Which method the request used; more than one is an error (RFC 6749 §2.3). */
export function presentedCredentials(request: Request, form: Params): PresentedCredentials {
  const authorization = request.headers.get("authorization");
  const basic = authorization && /^basic /i.test(authorization) ? authorization.slice(6).trim() : undefined;
  const bodyId = form.get("client_id");
  const bodySecret = form.get("client_secret");
  const assertion = form.get("client_assertion");
  const assertionType = form.get("client_assertion_type");
  if (assertion !== undefined || assertionType !== undefined) {
    if (basic !== undefined || bodySecret !== undefined) throw new ProtocolError("invalid_request", "use one client authentication method only");
    if (assertionType !== JWT_BEARER || !assertion) throw invalidClient(`client_assertion_type must be ${JWT_BEARER} with a client_assertion`, false);
    let issuer: unknown;
    try {
      issuer = JSON.parse(Buffer.from(assertion.split(".")[1] ?? "", "base64url").toString("utf8")).iss;
    } catch {
      throw invalidClient("the client assertion is malformed", false);
    }
    if (typeof issuer !== "string" || !issuer) throw invalidClient("the client assertion has no iss", false);
    if (bodyId !== undefined && bodyId !== issuer) throw new ProtocolError("invalid_request", "client_id does not match the client assertion");
    return { method: "jwt_assertion", clientId: issuer, assertion };
  }
  if (basic !== undefined) {
    if (bodySecret !== undefined) throw new ProtocolError("invalid_request", "use one client authentication method only");
    let clientId: string;
    let secret: string;
    try {
      const decoded = Buffer.from(basic, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw new Error("no colon");
      clientId = decodeBasicPart(decoded.slice(0, colon));
      secret = decodeBasicPart(decoded.slice(colon + 1));
    } catch {
      throw invalidClient("malformed Basic credentials", true);
    }
    if (!clientId) throw invalidClient("malformed Basic credentials", true);
    if (bodyId !== undefined && bodyId !== clientId) throw new ProtocolError("invalid_request", "client_id does not match the credentials");
    return { method: "client_secret_basic", clientId, secret };
  }
  if (!bodyId) throw invalidClient("client authentication is required", false);
  if (bodySecret !== undefined) return { method: "client_secret_post", clientId: bodyId, secret: bodySecret };
  return { method: "none", clientId: bodyId };
}

/**
 * What a failing client authentication may have been guessing, which decides how it is throttled:
 * `guessable` a shared secret (client secrets, `client_secret_jwt`, API resource secrets), `unguessable`
 * a private key or certificate (`private_key_jwt`, `tls_client_auth`, `self_signed_tls_client_auth`) or
 * nothing at all (a public client), `unknown` a client id that is not registered.
 */
export type CredentialKind = "guessable" | "unguessable" | "unknown";

/** The registered methods whose credentials cannot be guessed (checked before the throttle is consulted). */
const UNGUESSABLE: readonly TokenEndpointAuthMethod[] = ["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth", "none"];

/** How the client's credentials are throttled ({@link CredentialKind}). */
export function credentialKind(client: Client | undefined): CredentialKind {
  if (!client) return "unknown";
  return UNGUESSABLE.includes(client.tokenEndpointAuthMethod) ? "unguessable" : "guessable";
}

/**
 * Runs a client authentication under the failure throttle; each `invalid_client` failure is counted per
 * client id from this address and per address (IPv6 by /64, so rotating addresses within one allocation
 * buys nothing), and answered 429 (with `Retry-After`) once a limit is used up. Only failures are
 * counted, never requests in flight, so a busy client's parallel requests are never refused, and the
 * store is read only for subjects this process saw failing (healthy clients cost no store access). By
 * {@link CredentialKind}:
 * - `guessable`: a client id over its limit from this address is refused before its credentials are
 *   checked. An address over its limit (an attacker behind a NAT egress many clients share) only stops
 *   the client ids that failed from it: a client whose credentials verify still passes, every failure
 *   from there is answered 429, and a client id that already failed from there is refused outright.
 * - `unguessable`: the credentials are checked first and a client whose credentials verify passes even
 *   when its id is locked (someone else's failures cannot lock it out); failures are counted as above.
 * - `unknown`: counted on the address only (no rows per unregistered id).
 * Failures past a used-up limit record nothing, so a locked address costs the store no rows.
 */
export async function throttledAuthentication<T>(request: Request, clientId: string, deps: ProviderDeps, kind: CredentialKind, authenticate: () => Promise<T>): Promise<T> {
  const policy = deps.options.clientAuthThrottling;
  if (!policy) return authenticate();
  const throttle = deps.throttle;
  const address = clientAddressOf(request);
  const bucket = address === undefined ? undefined : addressBucket(address);
  const perClient = { subject: `client:${clientId}\n${bucket ?? ""}`, limit: { window: policy.window, max: policy.maxPerClient } };
  const perAddress = bucket === undefined ? undefined : { subject: `client-address:${bucket}`, limit: { window: policy.window, max: policy.maxPerAddress } };
  const throttled = (reason: "throttled" | "credentials") => {
    deps.emit({ type: "client.authentication_failed", clientId, reason });
    return new ProtocolError("invalid_client", "too many failed client authentications; try again later", {
      status: 429,
      headers: { "retry-after": String(policy.window) },
    });
  };
  type Counter = { subject: string; limit: { window: number; max: number } };
  // Failures within the window, read from the store only for a subject this process saw failing.
  const failuresOf = async (counter: Counter) => (throttle.suspect(counter.subject) ? throttle.failedAttempts(counter.subject, counter.limit.max) : 0);
  const usedUp = async (counter: Counter | undefined) => counter !== undefined && (await failuresOf(counter)) >= counter.limit.max;
  /** Counts one failure; false when the counter had used up its limit already (nothing recorded). */
  const count = async (counter: Counter) => {
    const slot = await throttle.reserve(counter.subject, counter.limit);
    if (slot) await throttle.fail(slot);
    return slot !== undefined;
  };

  // A secret client id this process saw failing is checked at most (failures left) at a time, the rest
  // queued: a parallel burst of guesses cannot outrun the count, and a busy client that failed once is
  // slowed a little, never refused.
  let leave: (() => void) | undefined;
  if (kind === "guessable" && throttle.suspect(perClient.subject)) {
    const left = perClient.limit.max - (await failuresOf(perClient));
    if (left <= 0) throw throttled("throttled");
    leave = await throttle.gate(perClient.subject, left);
    if (!leave) throw throttled("throttled");
  }
  try {
    const clientLocked = kind !== "unknown" && (await usedUp(perClient));
    if (kind === "guessable" && clientLocked) throw throttled("throttled");
    const addressLocked = await usedUp(perAddress);
    // From a locked address: an unknown client id cannot pass, and a secret client that failed there is refused outright.
    if (addressLocked && (kind === "unknown" || (kind === "guessable" && (await failuresOf(perClient)) > 0))) throw throttled("throttled");
    try {
      return await authenticate();
    } catch (error) {
      if (!(error instanceof ProtocolError && error.code === "invalid_client")) throw error;
      const clientCounted = kind === "unknown" ? true : await count(perClient);
      // A locked address records nothing more (and is answered 429 below).
      const addressCounted = perAddress === undefined || addressLocked || (await count(perAddress));
      if (clientLocked || addressLocked || !clientCounted || !addressCounted) throw throttled("credentials");
      deps.emit({ type: "client.authentication_failed", clientId, reason: "credentials" });
      throw error;
    }
  } finally {
    leave?.();
  }
}

/**
 * Authenticates the client by the method it registered, and only that one (token, introspection and
 * revocation endpoints), under the failure throttle.
 */
export async function authenticateClient(request: Request, form: Params, deps: ProviderDeps): Promise<Client> {
  const presented = presentedCredentials(request, form);
  const client = await deps.clients.findClientById(presented.clientId, { clientAddress: clientAddressOf(request) });
  return throttledAuthentication(request, presented.clientId, deps, credentialKind(client), () => checkCredentials(request, presented, client, deps));
}

async function checkCredentials(request: Request, presented: PresentedCredentials, client: Client | undefined, deps: ProviderDeps): Promise<Client> {
  const basic = presented.method === "client_secret_basic";
  if (!client) throw invalidClient("client authentication failed", basic);
  if (presented.method === "jwt_assertion") {
    if (client.tokenEndpointAuthMethod !== "private_key_jwt" && client.tokenEndpointAuthMethod !== "client_secret_jwt") {
      throw invalidClient("client authentication failed", false);
    }
    await verifyClientAssertion(presented.assertion!, client, deps);
    return client;
  }
  if (presented.method === "none" && (client.tokenEndpointAuthMethod === "tls_client_auth" || client.tokenEndpointAuthMethod === "self_signed_tls_client_auth")) {
    if (!(await certificateAuthenticates(request, client, deps))) throw invalidClient("client certificate authentication failed", false);
    return client;
  }
  if (client.tokenEndpointAuthMethod !== presented.method) throw invalidClient("client authentication failed", basic);
  if (presented.method !== "none" && !secretMatches(client, presented.secret ?? "", Math.floor(deps.clock() / 1000))) {
    throw invalidClient("client authentication failed", basic);
  }
  return client;
}
