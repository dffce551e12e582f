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
 * Runs a client authentication under the failure throttle; each `invalid_client` failure is counted per
 * client id from this address and per address. A client id over its limit from this address is refused
 * with 429 before its credentials are checked. An address over its limit (an attacker behind a NAT egress
 * many clients share) only stops the client ids that failed from it: a client whose credentials verify
 * still passes, every failure from there is answered 429, and a client id that already failed from there
 * is refused outright.
 */
export async function throttledAuthentication<T>(request: Request, clientId: string, deps: ProviderDeps, authenticate: () => Promise<T>): Promise<T> {
  const policy = deps.options.clientAuthThrottling;
  if (!policy) return authenticate();
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
  if (await deps.throttle.blocked(perClient.subject, perClient.limit)) throw throttled("throttled");
  const addressLocked = perAddress ? await deps.throttle.blocked(perAddress.subject, perAddress.limit) : false;
  if (addressLocked && (await deps.throttle.failures(perClient.subject)) > 0) throw throttled("throttled");
  try {
    return await authenticate();
  } catch (error) {
    if (error instanceof ProtocolError && error.code === "invalid_client") {
      for (const { subject, limit } of perAddress ? [perClient, perAddress] : [perClient]) await deps.throttle.record(subject, limit);
      if (addressLocked) throw throttled("credentials");
      deps.emit({ type: "client.authentication_failed", clientId, reason: "credentials" });
    }
    throw error;
  }
}

/**
 * Authenticates the client by the method it registered, and only that one (token, introspection and
 * revocation endpoints), under the failure throttle.
 */
export async function authenticateClient(request: Request, form: Params, deps: ProviderDeps): Promise<Client> {
  const presented = presentedCredentials(request, form);
  return throttledAuthentication(request, presented.clientId, deps, () => checkCredentials(request, presented, deps));
}

async function checkCredentials(request: Request, presented: PresentedCredentials, deps: ProviderDeps): Promise<Client> {
  const basic = presented.method === "client_secret_basic";
  const client = await deps.clients.findClientById(presented.clientId);
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
