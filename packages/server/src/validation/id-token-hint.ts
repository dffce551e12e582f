import { jwtVerify } from "jose";
import type { ProviderDeps } from "../deps.ts";

/** What a valid `id_token_hint` tells: whose session it came from, and for which client. */
export interface IdTokenHint {
  sub: string;
  sid?: string;
  /** The audience: the client the ID token was issued to. */
  clientId: string;
}

/**
 * OIDC Core §3.1.2.1 / RP-Initiated Logout §2: an ID token this provider issued. Expired ones are accepted
 * (the hint is evidence of a past session); the signature, issuer and a single audience are not negotiable.
 * Other JWTs this provider signs do not count: access tokens (`typ` at+jwt, RFC 9068, with `scope` and
 * `client_id`) and logout tokens (`typ` logout+jwt, with `events`); ID tokens carry `typ` exactly JWT and neither claim.
 */
export async function verifyIdTokenHint(token: string, deps: ProviderDeps): Promise<IdTokenHint | undefined> {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, await deps.keys.verificationKeys(), {
      issuer: deps.options.issuer,
      algorithms: deps.options.algorithms,
      currentDate: new Date(0),
      clockTolerance: Number.MAX_SAFE_INTEGER,
    });
    // Exactly what this provider puts on ID tokens (tokens/token-service.ts): no other spelling, no absent typ.
    if (protectedHeader.typ !== "JWT") return undefined;
    if ("events" in payload || "scope" in payload || "client_id" in payload || "token_use" in payload) return undefined;
    const aud = Array.isArray(payload.aud) ? (payload.aud.length === 1 ? payload.aud[0] : undefined) : payload.aud;
    if (typeof payload.sub !== "string" || typeof aud !== "string") return undefined;
    return { sub: payload.sub, sid: typeof payload.sid === "string" ? payload.sid : undefined, clientId: aud };
  } catch {
    return undefined;
  }
}
