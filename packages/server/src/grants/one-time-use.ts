import { ProtocolError } from "@tessera/protocol";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import type { PersistedGrant } from "../stores/interfaces.ts";

/**
 * A code or refresh token came back after its one use: it leaked, so every token of its family goes
 * (RFC 6749 §4.1.2, OAuth 2.1 §4.3.1), and the request fails.
 */
export async function revokeReplayedFamily(deps: ProviderDeps, grant: Pick<PersistedGrant, "clientId" | "grantId" | "kind">): Promise<never> {
  const revoked = await deps.store.grants.removeAll({ grantId: grant.grantId! });
  deps.emit({ type: "token.replay_detected", clientId: grant.clientId, kind: grant.kind === "refresh_token" ? "refresh_token" : "authorization_code" });
  deps.logger.warn({ clientId: grant.clientId, grantId: grant.grantId, kind: grant.kind, revoked }, "one-time grant used again; its token family was revoked");
  throw new ProtocolError("invalid_grant", `the ${grant.kind === "refresh_token" ? "refresh token" : "code"} was already used`);
}

/**
 * Issues first, then takes the one-time use in one atomic step: if the store fails in between, the grant
 * is still usable (nothing half-written is ever handed out); of racing requests exactly one wins, and the
 * others revoke the family as a replay.
 */
export async function useOnce<T>(deps: ProviderDeps, key: string, grant: Pick<PersistedGrant, "clientId" | "grantId" | "kind">, issue: () => Promise<T>, graceSeconds = 0): Promise<T> {
  const result = await issue();
  const now = nowSeconds(deps);
  const consumed = await deps.store.grants.consume(key, now);
  if (consumed?.firstUse) return result;
  // A racing request used it a moment ago, within the client's reuse grace period: same successor, no harm.
  if (consumed && withinGrace(consumed.grant.consumedAt, now, graceSeconds)) return result;
  return revokeReplayedFamily(deps, grant);
}

/** True when a grant used at `consumedAt` may still be used again at `now`. */
export function withinGrace(consumedAt: number | undefined, now: number, graceSeconds: number): boolean {
  return graceSeconds > 0 && consumedAt !== undefined && now - consumedAt <= graceSeconds;
}
