import { ProtocolError } from "@tessera/protocol";
import type { Client, TokenEndpointAuthMethod } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import { secretMatches } from "./client-secret.ts";
import { JWT_BEARER, verifyClientAssertion } from "./jwt-assertion.ts";
import { certificateAuthenticates } from "./tls.ts";
import { clientAddressOf } from "../http/request-context.ts";

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

const isFailure = (error: unknown) => error instanceof ProtocolError && error.code === "invalid_client";

/**
 * Runs a client authentication under the failure throttle; each `invalid_client` failure is counted per
 * client id from this address and per address, and answered 429 (with `Retry-After`) once a limit is
 * used up. The attempt is recorded before its credentials are checked (and released when they verify),
 * so parallel attempts see each other. By {@link CredentialKind}:
 * - `guessable`: a client id over its limit from this address is refused before its credentials are
 *   checked. An address over its limit (an attacker behind a NAT egress many clients share) only stops
 *   the client ids that failed from it: a client whose credentials verify still passes, every failure
 *   from there is answered 429, and a client id that already failed from there is refused outright.
 * - `unguessable`: the credentials are checked first and a client whose credentials verify passes even
 *   when its id is locked (someone else's failures cannot lock it out); failures are counted as above.
 * - `unknown`: counted on the address only (no rows per unregistered id).
 * Attempts refused for a used-up limit record nothing, so a locked address costs the store no rows.
 */
export async function throttledAuthentication<T>(request: Request, clientId: string, deps: ProviderDeps, kind: CredentialKind, authenticate: () => Promise<T>): Promise<T> {
  const policy = deps.options.clientAuthThrottling;
  if (!policy) return authenticate();
  const throttle = deps.throttle;
  const address = clientAddressOf(request);
  const perClient = { subject: `client:${clientId}\n${address ?? ""}`, limit: { window: policy.window, max: policy.maxPerClient } };
  const perAddress = address ? { subject: `client-address:${address}`, limit: { window: policy.window, max: policy.maxPerAddress } } : undefined;
  const throttled = (reason: "throttled" | "credentials") => {
    deps.emit({ type: "client.authentication_failed", clientId, reason });
    return new ProtocolError("invalid_client", "too many failed client authentications; try again later", {
      status: 429,
      headers: { "retry-after": String(policy.window) },
    });
  };
  const failed = (error: unknown) => {
    deps.emit({ type: "client.authentication_failed", clientId, reason: "credentials" });
    return error;
  };

  if (kind === "unguessable") {
    try {
      return await authenticate();
    } catch (error) {
      if (!isFailure(error)) throw error;
      const client = await throttle.reserve(perClient.subject, perClient.limit);
      if (!client) throw throttled("credentials");
      await throttle.fail(client);
      const fromAddress = perAddress ? await throttle.reserve(perAddress.subject, perAddress.limit) : undefined;
      if (perAddress && !fromAddress) throw throttled("credentials");
      if (fromAddress) await throttle.fail(fromAddress);
      throw failed(error);
    }
  }

  // Subjects this process has not seen failing take the fast path: no store access before the check, no
  // cap on parallel requests of healthy clients. A shared-secret check is a constant-time comparison, so
  // parallel guesses from a first burst finish before they can pile up; the burst's failures are recorded
  // and from then on every attempt of those subjects takes a slot first.
  if (kind === "guessable" && !throttle.suspect(perClient.subject) && !(perAddress && throttle.suspect(perAddress.subject))) {
    try {
      return await authenticate();
    } catch (error) {
      if (!isFailure(error)) throw error;
      const client = await throttle.reserve(perClient.subject, perClient.limit);
      if (client) await throttle.fail(client);
      const fromAddress = perAddress ? await throttle.reserve(perAddress.subject, perAddress.limit) : undefined;
      if (fromAddress) await throttle.fail(fromAddress);
      if (!client) throw throttled("credentials");
      throw failed(error);
    }
  }

  const client = kind === "guessable" ? await throttle.reserve(perClient.subject, perClient.limit) : undefined;
  if (kind === "guessable" && !client) throw throttled("throttled");
  const fromAddress = perAddress ? await throttle.reserve(perAddress.subject, perAddress.limit) : undefined;
  const addressLocked = perAddress !== undefined && fromAddress === undefined;
  const release = async () => {
    if (client) await throttle.release(client);
    if (fromAddress) await throttle.release(fromAddress);
  };
  // From a locked address: an unknown client id cannot pass, and one that failed there is refused outright.
  if (addressLocked && (kind === "unknown" || (await throttle.failedAttempts(perClient.subject, 1)) > 0)) {
    await release();
    throw throttled("throttled");
  }
  let result: T;
  try {
    result = await authenticate();
  } catch (error) {
    if (!isFailure(error)) {
      await release();
      throw error;
    }
    // The reserved slots stay held: they are this failure.
    if (client) await throttle.fail(client);
    if (fromAddress) await throttle.fail(fromAddress);
    if (addressLocked) throw throttled("credentials");
    throw failed(error);
  }
  await release();
  return result;
}

/**
 * Authenticates the client by the method it registered, and only that one (token, introspection and
 * revocation endpoints), under the failure throttle.
 */
export async function authenticateClient(request: Request, form: Params, deps: ProviderDeps): Promise<Client> {
  const presented = presentedCredentials(request, form);
  const client = await deps.clients.findClientById(presented.clientId);
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
  if (presented.method !== "none" && !secretMatches(client, presented.secret ?? "")) {
    throw invalidClient("client authentication failed", basic);
  }
  return client;
}
