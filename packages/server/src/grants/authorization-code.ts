import { ProtocolError, sha256Base64url, verifyCodeVerifier } from "@tessera/protocol";
import type { Client } from "../clients.ts";
import { nowSeconds, sessionAllows, type ProviderDeps } from "../deps.ts";
import type { AuthorizationCodeData } from "../endpoints/authorize.ts";
import type { Params } from "../http/params.ts";
import type { GrantContext } from "./index.ts";
import { createRefreshToken, wantsRefreshToken } from "../tokens/refresh-tokens.ts";
import { revokeReplayedFamily, useOnce } from "./one-time-use.ts";
import { issueTokens, type TokenResponse, type UserTokenContext } from "../tokens/token-service.ts";
import { grantTarget } from "../validation/resource-indicators.ts";

/** A code redemption that passed RFC 6749 §4.1.3 and RFC 7636 §4.6. */
export interface ValidatedCodeGrant {
  client: Client;
  /** Store key of the code. */
  key: string;
  dpopJkt?: string;
  certificateThumbprint?: string;
  subject: string;
  grantId: string;
  data: AuthorizationCodeData;
  /** The access token's scopes and audience (RFC 8707: the requested or authorized resources). */
  scopes: string[];
  audience?: string[];
}

/** RFC 6749 §4.1.3: one-time code, same client, same redirect_uri, PKCE verifier; RFC 8707 §2.2 `resource`. */
export async function validate(form: Params, client: Client, deps: ProviderDeps, context: GrantContext): Promise<ValidatedCodeGrant> {
  const code = form.get("code");
  if (!code) throw new ProtocolError("invalid_request", "code is missing");
  const now = nowSeconds(deps);
  const key = sha256Base64url(code);
  const grant = await deps.store.grants.get(key);
  if (!grant || grant.kind !== "authorization_code") throw new ProtocolError("invalid_grant", "the code is invalid");
  // Another client's code is simply invalid: only its own client, proving PKCE, can trigger replay revocation.
  if (grant.clientId !== client.clientId) throw new ProtocolError("invalid_grant", "the code is invalid");
  const data = JSON.parse(grant.data) as AuthorizationCodeData;
  if (form.get("redirect_uri") !== data.redirectUri) throw new ProtocolError("invalid_grant", "redirect_uri does not match the authorization request");
  const verifier = form.get("code_verifier");
  if (data.codeChallenge) {
    if (!verifier) throw new ProtocolError("invalid_grant", "code_verifier is missing");
    if (!verifyCodeVerifier(verifier, data.codeChallenge, data.codeChallengeMethod ?? "S256")) {
      throw new ProtocolError("invalid_grant", "code_verifier does not match the code_challenge");
    }
  } else if (verifier !== undefined) {
    // A verifier without a challenge means the challenge was stripped on the way: refuse (PKCE downgrade).
    throw new ProtocolError("invalid_grant", "code_verifier given but the request had no code_challenge");
  }
  // RFC 6749 §4.1.2: a used code presented again by its own, verified client leaked; its tokens go.
  if (grant.consumedAt !== undefined) await revokeReplayedFamily(deps, grant);
  if (grant.expiresAt < now) throw new ProtocolError("invalid_grant", "the code has expired");
  if (!(await sessionAllows(deps, client, data.sid))) throw new ProtocolError("invalid_grant", "the user session has ended");
  // RFC 9449 §10: a code bound with dpop_jkt is redeemed only with a proof by that key.
  if (data.dpopJkt !== undefined && context.dpopJkt !== data.dpopJkt) throw new ProtocolError("invalid_grant", "the DPoP key does not match the dpop_jkt of the authorization request");
  // Checked before the code is used, so a client that asked for the wrong resource may try again.
  const { scopes, audience } = grantTarget(form.getAll("resource"), data, data.scopes, deps.options, false);
  return { client, key, subject: grant.subject!, grantId: grant.grantId!, data, scopes, audience, dpopJkt: context.dpopJkt, certificateThumbprint: context.certificateThumbprint };
}

/** Issues the tokens for a validated code. */
export async function issue(validated: ValidatedCodeGrant, deps: ProviderDeps): Promise<TokenResponse> {
  const { client, subject, data } = validated;
  const user: UserTokenContext = {
    sub: subject,
    sid: data.sid,
    authTime: data.authTime,
    amr: data.amr,
    idp: data.idp,
    nonce: data.nonce,
    sessionClaims: data.sessionClaims,
    grantId: validated.grantId,
  };
  // Public clients' refresh tokens are bound to the DPoP key (RFC 9449 §5) and the client certificate
  // (RFC 8705 §4); so are a sender-constrained profile's (FAPI 2.0: the refresh request carries the same key).
  const bindTo = client.bindRefreshTokens ? { dpopJkt: validated.dpopJkt, certificateThumbprint: validated.certificateThumbprint } : undefined;
  const refreshToken = wantsRefreshToken(client, data.scopes) ? () => createRefreshToken(deps, client, user, data.scopes, undefined, bindTo, undefined, data.resources) : undefined;
  return useOnce(deps, validated.key, { clientId: client.clientId, grantId: validated.grantId, kind: "authorization_code" }, () =>
    issueTokens(deps, { client, scopes: validated.scopes, audience: validated.audience, user, refreshToken, dpopJkt: validated.dpopJkt, certificateThumbprint: validated.certificateThumbprint }),
  );
}
