import { STANDARD_SCOPE_CLAIMS } from "@tessera/protocol";

/** A user as the provider sees it: a subject and its claims. */
export interface UserRecord {
  sub: string;
  claims: Record<string, unknown>;
}

/** Finds users by subject (the host's user list, a database, a directory). */
export interface UserStore {
  findBySubject(sub: string): Promise<UserRecord | undefined>;
  /**
   * Whether a session of `sub` last signed in at `signedInAt` (Unix milliseconds) may go on; checked each
   * time a session is read, so false ends it at once (a disabled or deleted account, a changed password).
   * Absent: sessions are kept.
   */
  isSessionValid?(sub: string, signedInAt: number): Promise<boolean>;
  /** A user whose `email` claim is this address (case-insensitive), if the store can tell: external providers' email linking refuses it. */
  findByEmail?(email: string): Promise<UserRecord | undefined>;
}

/** What a claim request is for. */
export type ClaimsCaller = "id_token" | "access_token" | "userinfo";

/** Input of a {@link ProfileService}. */
export interface ProfileRequest {
  subject: string;
  clientId: string;
  scopes: readonly string[];
  caller: ClaimsCaller;
  /** Claims the sign-in API was given for this session (name and extras). */
  sessionClaims: Readonly<Record<string, unknown>>;
  /**
   * Claim types the granted scopes ask for in this kind of token: identity-scope claims for userinfo
   * (and the ID token), API scope and resource `userClaims` for access tokens.
   */
  requestedClaims: readonly string[];
}

/**
 * Decides the user claims to issue. Returning undefined means the user is no longer active: tokens are
 * refused.
 */
export type ProfileService = (request: ProfileRequest) => Promise<Record<string, unknown> | undefined>;

/** Claim types the scopes ask for, from a scope-to-claims map. */
export function claimsForScopes(scopes: readonly string[], map: ReadonlyMap<string, readonly string[]> = new Map(Object.entries(STANDARD_SCOPE_CLAIMS))): string[] {
  const names = new Set<string>();
  for (const scope of scopes) for (const claim of map.get(scope) ?? []) names.add(claim);
  return [...names];
}

/**
 * Claims only the protocol sets: never taken from user data, an extension grant's `claims` or a
 * token-exchange policy. `act` and `may_act` (RFC 8693 §4.1, §4.4) belong to the delegation chain: the
 * built-in token exchange sets them, and `may_act` is set only through its own explicit field.
 */
export const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set(["sub", "iss", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr", "azp", "sid", "idp", "at_hash", "c_hash", "client_id", "scope", "cnf", "act", "may_act"]);

/**
 * The default profile service: the user's claims (from `users` when given, else those given at sign-in),
 * filtered to the requested claim types, at userinfo and in access tokens. Like IdentityServer and
 * oidc-provider, the ID token carries no user claims when an access token is issued (OIDC Core §5.4).
 * Protocol claims are never taken from user data.
 */
export function defaultProfileService(users: UserStore | undefined): ProfileService {
  return async (request) => {
    let claims: Readonly<Record<string, unknown>> = request.sessionClaims;
    if (users) {
      const user = await users.findBySubject(request.subject);
      if (!user) return undefined;
      claims = user.claims;
    }
    if (request.caller === "id_token") return {};
    const wanted = new Set(request.requestedClaims);
    const issued: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(claims)) {
      if (wanted.has(name) && !PROTOCOL_CLAIMS.has(name)) issued[name] = value;
    }
    return issued;
  };
}
