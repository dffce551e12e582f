import { sha256Base64url } from "@tessera/protocol";
import { jwtVerify } from "jose";
import { nowSeconds, sessionAllows, type ProviderDeps } from "../deps.ts";
import type { PersistedGrant } from "../stores/interfaces.ts";
import type { AccessTokenClaims, AccessTokenRecord } from "./token-service.ts";

/** An access token issued here that is valid now and not revoked. */
export interface ResolvedAccessToken {
  claims: AccessTokenClaims;
  format: "jwt" | "reference";
  /** The stored record (reference tokens, user JWTs); absent for self-contained client JWTs. */
  record?: AccessTokenRecord;
  /** Store key of the record, for revocation. */
  recordKey?: string;
  /** The token's revocation family (user tokens). */
  grantId?: string;
}

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function liveRecord(grant: PersistedGrant | undefined, now: number): AccessTokenRecord | undefined {
  if (!grant || grant.kind !== "access_token" || grant.expiresAt <= now) return undefined;
  return JSON.parse(grant.data) as AccessTokenRecord;
}

function familyOf(grant: PersistedGrant | undefined): { grantId?: string } {
  return grant?.grantId ? { grantId: grant.grantId } : {};
}

/**
 * Resolves a JWT (signature, `typ` at+jwt, issuer, expiry, and for user tokens the revocation record) or a
 * reference token (its record). Undefined for anything else.
 */
export async function resolveAccessToken(token: string, deps: ProviderDeps): Promise<ResolvedAccessToken | undefined> {
  const now = nowSeconds(deps);
  if (!JWS_COMPACT.test(token)) {
    if (token.length > 512) return undefined;
    const recordKey = sha256Base64url(token);
    const stored = await deps.store.grants.get(recordKey);
    const record = liveRecord(stored, now);
    if (!record || record.format !== "reference") return undefined;
    if (!(await sessionAllows(deps, await deps.clients.findClientById(record.claims.client_id), record.claims.sid))) return undefined;
    return { claims: record.claims, format: "reference", record, recordKey, ...familyOf(stored) };
  }
  let claims: AccessTokenClaims;
  try {
    ({ payload: claims } = (await jwtVerify(token, await deps.keys.verificationKeys(), {
      issuer: deps.options.issuer,
      typ: "at+jwt",
      algorithms: deps.options.algorithms,
      currentDate: new Date(deps.clock()),
      requiredClaims: ["exp", "iat", "sub", "client_id", "jti"],
    })) as unknown as { payload: AccessTokenClaims });
  } catch {
    return undefined;
  }
  // Only a client's own tokens (sub = client_id, no session, no delegation) are self-contained; they end
  // with their client. A token carrying `act` always has a record (token-service.ts) and needs it.
  if (claims.sid === undefined && claims.sub === claims.client_id && claims.act === undefined) {
    return (await deps.clients.findClientById(claims.client_id)) ? { claims, format: "jwt" } : undefined;
  }
  // User tokens have a record; without it the grant was revoked.
  const recordKey = sha256Base64url(claims.jti);
  const stored = await deps.store.grants.get(recordKey);
  const record = liveRecord(stored, now);
  if (!record) return undefined;
  if (!(await sessionAllows(deps, await deps.clients.findClientById(claims.client_id), claims.sid))) return undefined;
  return { claims, format: "jwt", record, recordKey, ...familyOf(stored) };
}
