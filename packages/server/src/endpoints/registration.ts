import { timingSafeEqual } from "node:crypto";
import { ProtocolError, quotedString, sha256 } from "@tessera/protocol";
import { createLocalJWKSet, jwtVerify } from "jose";
import { ASSERTION_ALGORITHMS } from "../clients.ts";
import { endpointUrl, PATHS, type ProviderDeps } from "../deps.ts";
import { readLimitedText } from "../http/params.ts";
import { errorJson, noStoreJson } from "../http/responses.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { addressBucket } from "../security/pending-requests.ts";
import type { ClientInfo, CreatedClient } from "../registry/client-registry.ts";

/** RFC 6750 §3 challenge for the registration endpoints. */
function invalidToken(description: string): ProtocolError {
  return new ProtocolError("invalid_token", description, {
    status: 401,
    headers: { "www-authenticate": `Bearer error="invalid_token", error_description=${quotedString(description)}` },
  });
}

function bearerToken(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const match = header ? /^Bearer +([\x21-\x7e]+) *$/i.exec(header) : null;
  return match?.[1];
}

/** The JSON object of an RFC 7591 request body (size-capped). */
async function readMetadata(request: Request, deps: ProviderDeps): Promise<Record<string, unknown>> {
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") throw new ProtocolError("invalid_request", "the body must be application/json");
  const text = await readLimitedText(request, deps.options.maxFormBytes);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProtocolError("invalid_client_metadata", "the body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ProtocolError("invalid_client_metadata", "the body must be a JSON object");
  return body as Record<string, unknown>;
}

/**
 * The registration policy (`registration` options), beyond the rules every client follows: scopes and
 * grant types within the allowed lists, and no client may turn PKCE off for itself.
 */
function checkPolicy(body: Record<string, unknown>, deps: ProviderDeps): void {
  const policy = deps.options.registration;
  const scope = body.scope ?? "openid";
  if (typeof scope === "string") {
    const refused = scope.split(" ").filter((s) => s && !policy.allowedScopes.includes(s));
    if (refused.length) throw new ProtocolError("invalid_client_metadata", `scope ${refused.join(" ")} may not be registered`);
  }
  if (Array.isArray(body.grant_types)) {
    const refused = body.grant_types.filter((g) => typeof g !== "string" || !policy.allowedGrantTypes.includes(g));
    if (refused.length) throw new ProtocolError("invalid_client_metadata", `grant type ${refused.map(String).join(" ")} may not be registered`);
  } else if (body.grant_types === undefined && !policy.allowedGrantTypes.includes("authorization_code")) {
    throw new ProtocolError("invalid_client_metadata", "grant_types is required");
  }
  if (body.require_pkce === false) throw new ProtocolError("invalid_client_metadata", "require_pkce may not be turned off by registration");
}

/** Claims of a software statement that are about the statement itself, not client metadata. */
const STATEMENT_CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "software_statement"];

/**
 * RFC 7591 §2.3 / §3.1.1: a software statement is accepted only when configured, signed by a trusted key
 * (and issuer); its claims then take precedence over the request's own metadata. Returns the metadata to register.
 */
async function applySoftwareStatement(body: Record<string, unknown>, deps: ProviderDeps): Promise<Record<string, unknown>> {
  const trusted = deps.options.registration.softwareStatement;
  const statement = body.software_statement;
  if (statement === undefined) {
    if (trusted?.required) throw new ProtocolError("invalid_software_statement", "a software statement is required");
    return body;
  }
  if (!trusted) throw new ProtocolError("invalid_software_statement", "software statements are not accepted by this server");
  if (typeof statement !== "string") throw new ProtocolError("invalid_software_statement", "software_statement must be a signed JWT");
  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(statement, createLocalJWKSet(trusted.jwks), { algorithms: [...ASSERTION_ALGORITHMS.private_key_jwt], currentDate: new Date(deps.clock()) }));
  } catch {
    throw new ProtocolError("invalid_software_statement", "the software statement is not signed by a trusted key, or has expired");
  }
  if (trusted.issuer !== undefined && claims.iss !== trusted.issuer) throw new ProtocolError("unapproved_software_statement", "the software statement's issuer is not approved");
  // A statement that never expires, or says it was made in the future, could be replayed forever.
  const now = Math.floor(deps.clock() / 1000);
  if (typeof claims.exp !== "number") throw new ProtocolError("invalid_software_statement", "the software statement needs an exp claim");
  if (claims.iat !== undefined && (typeof claims.iat !== "number" || claims.iat > now + 60)) throw new ProtocolError("invalid_software_statement", "the software statement's iat is in the future");
  // RFC 7591 §2.3 does not require aud; when present it must name this server.
  if (claims.aud !== undefined) {
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(deps.options.issuer)) throw new ProtocolError("invalid_software_statement", "the software statement's aud does not name this server");
  }
  const { software_statement: _statement, ...rest } = body;
  const metadata: Record<string, unknown> = { ...rest };
  for (const [name, value] of Object.entries(claims)) if (!STATEMENT_CLAIMS.includes(name)) metadata[name] = value;
  return metadata;
}

/** RFC 7591 §3.2.1 / RFC 7592 §3 response body. */
function registrationResponse(deps: ProviderDeps, info: ClientInfo, created: Pick<CreatedClient, "clientSecret" | "registrationAccessToken">): Record<string, unknown> {
  const { source: _source, secrets, ...metadata } = info;
  const hasSecret = created.clientSecret !== undefined || (secrets?.length ?? 0) > 0;
  return {
    ...metadata,
    ...(created.clientSecret ? { client_secret: created.clientSecret } : {}),
    ...(hasSecret ? { client_secret_expires_at: 0 } : {}),
    ...(created.registrationAccessToken ? { registration_access_token: created.registrationAccessToken } : {}),
    registration_client_uri: `${endpointUrl(deps, PATHS.registration)}/${encodeURIComponent(info.client_id)}`,
  };
}

type Slot = NonNullable<Awaited<ReturnType<ProviderDeps["throttle"]["reserve"]>>>;

/**
 * Takes a registration slot of the address bucket (IPv4 address, IPv6 /64), of its IPv6 /48 and of the
 * server as a whole (counted in the store, so the limits hold across processes); undefined, holding
 * none, when any is used up. Keep them ({@link FailureThrottle.fail}) for a registration, a wrong initial
 * access token or an unexpected failure, give them back for refused metadata (which creates nothing).
 */
async function registrationSlots(request: Request, deps: ProviderDeps): Promise<Slot[] | undefined> {
  const { window, max, networkMax, totalMax } = deps.options.registration.rateLimit;
  const address = clientAddressOf(request);
  const bucket = address === undefined ? "unknown" : addressBucket(address);
  const network = address === undefined ? bucket : addressBucket(address, true);
  const limits: [string, number][] = [[`registration:${bucket}`, max], ...(network !== bucket ? [[`registration-network:${network}`, networkMax] as [string, number]] : []), ["registration-total", totalMax]];
  const slots: Slot[] = [];
  for (const [subject, limit] of limits) {
    const slot = await deps.throttle.reserve(subject, { window, max: limit });
    if (!slot) {
      for (const taken of slots) await deps.throttle.release(taken);
      return undefined;
    }
    slots.push(slot);
  }
  return slots;
}

function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

/** POST {issuer}/connect/register (RFC 7591 §3). */
export function registrationEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    try {
      const slots = await registrationSlots(request, deps);
      if (!slots) {
        const window = deps.options.registration.rateLimit.window;
        throw new ProtocolError("temporarily_unavailable", "too many registrations; try again later", { status: 429, headers: { "retry-after": String(window) } });
      }
      const keep = async () => {
        for (const slot of slots) await deps.throttle.fail(slot);
      };
      let created: CreatedClient;
      try {
        const initial = deps.options.registration.initialAccessToken;
        if (initial !== undefined) {
          const token = bearerToken(request);
          if (!token || !tokenMatches(token, initial)) throw invalidToken("a valid initial access token is required");
        }
        const body = await applySoftwareStatement(await readMetadata(request, deps), deps);
        checkPolicy(body, deps);
        created = await deps.clientRegistry.create(body, "registration");
      } catch (error) {
        // Refused metadata gives the slot back; a wrong token or an unexpected failure keeps it.
        if (error instanceof ProtocolError && error.code !== "invalid_token") for (const slot of slots) await deps.throttle.release(slot);
        else await keep();
        throw error;
      }
      await keep();
      return noStoreJson(registrationResponse(deps, created.client, created), 201);
    } catch (error) {
      if (error instanceof ProtocolError) return errorJson(error);
      throw error;
    }
  };
}

/** GET, PUT and DELETE {issuer}/connect/register/{client_id} (RFC 7592 §2) with the registration access token. */
export function registrationManagementEndpoint(deps: ProviderDeps) {
  return async (request: Request, clientId: string): Promise<Response> => {
    try {
      const token = bearerToken(request);
      const info = token ? await deps.clientRegistry.authenticateRegistration(clientId, token) : undefined;
      if (!info) throw invalidToken("the registration access token is not valid for this client");
      if (request.method === "GET") return noStoreJson(registrationResponse(deps, info, {}));
      if (request.method === "DELETE") {
        await deps.clientRegistry.delete(clientId, "registration");
        return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
      }
      const body = await applySoftwareStatement(await readMetadata(request, deps), deps);
      checkPolicy(body, deps);
      const updated = await deps.clientRegistry.update(clientId, body, "registration");
      if (!updated) throw invalidToken("the registration access token is not valid for this client");
      return noStoreJson(registrationResponse(deps, updated.client, updated));
    } catch (error) {
      if (error instanceof ProtocolError) return errorJson(error);
      throw error;
    }
  };
}
