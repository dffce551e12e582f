import { STANDARD_SCOPE_CLAIMS } from "@tessera/protocol";

/** A user as the provider sees it: a subject and its claims. */
export interface UserRecord {
  sub: string;
  claims: Record<string, unknown>;
}

/** Finds users by subject (the host's user list, a database, a directory). */
export interface UserStore {
  findBySubject(sub: string): Promise<UserRecord | undefined>;
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
}

/**
 * Decides the user claims to issue. Returning undefined means the user is no longer active: tokens are
 * refused.
 */
export type ProfileService = (request: ProfileRequest) => Promise<Record<string, unknown> | undefined>;

/** Claims a set of scopes asks for under the OIDC Core §5.4 mapping. */
export function claimsForScopes(scopes: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const scope of scopes) for (const claim of STANDARD_SCOPE_CLAIMS[scope] ?? []) names.add(claim);
  return names;
}

const PROTOCOL_CLAIMS = new Set(["sub", "iss", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr", "azp", "sid", "idp", "at_hash", "c_hash", "client_id", "scope", "cnf"]);

/**
 * The default profile service: the user's claims (from `users` when given, else those given at sign-in)
 * filtered by the OIDC scope-to-claim mapping, at userinfo. Protocol claims are never taken from user data.
 */
export function defaultProfileService(users: UserStore | undefined): ProfileService {
  return async (request) => {
    let claims: Readonly<Record<string, unknown>> = request.sessionClaims;
    if (users) {
      const user = await users.findBySubject(request.subject);
      if (!user) return undefined;
      claims = user.claims;
    }
    // Like IdentityServer and oidc-provider: when an access token is issued, user claims come from
    // userinfo, not the ID token or the access token (OIDC Core §5.4).
    if (request.caller !== "userinfo") return {};
    const wanted = claimsForScopes(request.scopes);
    const issued: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(claims)) {
      if (wanted.has(name) && !PROTOCOL_CLAIMS.has(name)) issued[name] = value;
    }
    return issued;
  };
}
