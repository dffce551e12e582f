import type { ProviderDeps } from "../deps.ts";
import { claimsForScopes, type ClaimsCaller } from "./claims.ts";

/** Asks the profile service for a user's claims, with the claim types the scopes request for `caller`. */
export function userClaims(
  deps: ProviderDeps,
  caller: ClaimsCaller,
  request: { subject: string; clientId: string; scopes: string[]; sessionClaims: Record<string, unknown> },
): Promise<Record<string, unknown> | undefined> {
  const map = caller === "access_token" ? deps.options.apiClaims : deps.options.identityClaims;
  return deps.profile({ ...request, caller, requestedClaims: claimsForScopes(request.scopes, map).filter((c) => c !== "sub") });
}
