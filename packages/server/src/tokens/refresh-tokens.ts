import { createHmac } from "node:crypto";
import { randomHandle, sha256Base64url } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import type { UserTokenContext } from "./token-service.ts";

/** What a refresh token stands for; stored hashed under the token. */
export interface RefreshTokenData {
  /** Scopes of the original grant; a refresh may ask for fewer, never more. */
  scopes: string[];
  sid: string;
  authTime: number;
  amr: string[];
  idp: string;
  sessionClaims: Record<string, unknown>;
  /** Unix seconds: no token of this family lives past it. */
  absoluteExpiresAt: number;
  /** A public client's refresh token is bound to its DPoP key (RFC 9449 §5). */
  dpopJkt?: string;
  /** A public client's refresh token is bound to its TLS client certificate (RFC 8705 §4): `x5t#S256`. */
  certificateThumbprint?: string;
  /** RFC 8707: the resources of the original authorization; a refresh may ask for fewer, never others. */
  resources?: string[];
}

/** What a public client's refresh token is bound to; it is refreshed only with the same key or certificate. */
export interface RefreshTokenBinding {
  dpopJkt?: string;
  certificateThumbprint?: string;
}

/** RFC 6749 §1.5 / OIDC Core §11: a refresh token is issued for offline_access to clients allowed to refresh. */
export function wantsRefreshToken(client: Client, scopes: readonly string[]): boolean {
  return scopes.includes("offline_access") && client.grantTypes.includes("refresh_token");
}

/**
 * The successor of a refresh token under a reuse grace period: derived from the presented token with a
 * key only the server holds, so every request racing with the same token gets the same successor.
 */
function successorHandle(deps: ProviderDeps, predecessor: string): string {
  return createHmac("sha256", deps.protector.subkey("refresh-successor")).update(predecessor).digest("base64url");
}

/**
 * Stores a new refresh token of a family. The first one fixes the absolute expiry; with a sliding lifetime
 * each rotation extends the expiry by that much, never past the absolute one. With `predecessor` (a
 * rotation for a client with a reuse grace period) the successor is derived, and an existing one is kept
 * as it is (never revived once used). `resources`: the RFC 8707 resources of the original authorization.
 */
export async function createRefreshToken(deps: ProviderDeps, client: Client, user: UserTokenContext, scopes: string[], absoluteExpiresAt?: number, binding: RefreshTokenBinding = {}, predecessor?: string, resources?: string[]): Promise<string> {
  const now = nowSeconds(deps);
  const absolute = absoluteExpiresAt ?? now + client.refreshTokenAbsoluteLifetime;
  const expiresAt = client.refreshTokenSlidingLifetime ? Math.min(absolute, now + client.refreshTokenSlidingLifetime) : absolute;
  const derived = predecessor !== undefined && client.refreshTokenReuseGracePeriod > 0;
  const handle = derived ? successorHandle(deps, predecessor) : randomHandle(32);
  const data: RefreshTokenData = {
    scopes,
    sid: user.sid,
    authTime: user.authTime,
    amr: user.amr,
    idp: user.idp,
    sessionClaims: user.sessionClaims,
    absoluteExpiresAt: absolute,
    ...(binding.dpopJkt ? { dpopJkt: binding.dpopJkt } : {}),
    ...(binding.certificateThumbprint ? { certificateThumbprint: binding.certificateThumbprint } : {}),
    ...(resources ? { resources } : {}),
  };
  const grant = {
    key: sha256Base64url(handle),
    kind: "refresh_token",
    clientId: client.clientId,
    subject: user.sub,
    sessionId: user.sid,
    grantId: user.grantId,
    data: JSON.stringify(data),
    createdAt: now,
    expiresAt,
  } as const;
  if (derived) await deps.store.grants.putIfAbsent(grant);
  else await deps.store.grants.put(grant);
  return handle;
}
