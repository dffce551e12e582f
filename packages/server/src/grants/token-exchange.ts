// Token exchange (RFC 8693), built only on the public extension-grant API, as an embedder would build it.
import { ProtocolError, parseScope } from "@tessera/protocol";
import type { ExtensionGrant, GrantClient, GrantRequest, GrantSession, ValidatedAccessToken } from "../index.ts";
// The one internal piece: only this grant may set `act` (tokens/claims.ts reserves it everywhere else).
import { DELEGATION_CHAIN, type DelegatingIssueTokensRequest } from "./extension.ts";

/** RFC 8693 §2.1: the grant type. */
export const TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange";
/** RFC 8693 §3: an OAuth 2.0 access token issued by this authorization server. */
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
/** RFC 8693 §3: a JWT; accepted for subject and actor tokens only when it is one of this server's JWT access tokens. */
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";

/** RFC 8693 §4.1: the acting party, with the earlier actors nested (the least recent deepest). */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/** What the policy hook sees for one exchange, after the protocol rules passed. */
export interface TokenExchangeContext {
  /** The client asking for the exchange. */
  readonly client: GrantClient;
  /** The validated subject token. */
  readonly subject: ValidatedAccessToken;
  /** The validated actor token (delegation); absent for impersonation. */
  readonly actor?: ValidatedAccessToken;
  readonly kind: "delegation" | "impersonation";
  /**
   * Whether the subject token is meant for this client: issued to it (`client_id`), naming it in `aud`, or
   * with an `aud` naming an API resource whose scopes the client may ask for. When false the exchange is
   * refused unless the decision sets `acceptSubject`.
   */
  readonly subjectIntended: boolean;
  /** The API resource the request named (`resource` / `audience`), if any. */
  readonly audience?: string;
  /** The scopes the request named, if any. */
  readonly requestedScopes?: readonly string[];
}

/** The policy's decision; an empty decision (or undefined) lets the exchange proceed as requested. */
export interface TokenExchangeDecision {
  /** Refuse the exchange (`invalid_target`, RFC 8693 §2.2.2) with this description. */
  deny?: string;
  /** The API resource the new token is for, replacing the requested one (must be a configured API resource). */
  audience?: string;
  /** Accept a subject token not meant for this client (see {@link TokenExchangeContext.subjectIntended}). */
  acceptSubject?: boolean;
  /** Claims to add to the new token (claim mapping); protocol claims, `act` and `may_act` are never replaced. */
  claims?: Readonly<Record<string, unknown>>;
}

/** Decides per request; throw a `ProtocolError` for another error than `deny` gives. */
export type TokenExchangePolicy = (context: TokenExchangeContext) => TokenExchangeDecision | undefined | Promise<TokenExchangeDecision | undefined>;

/** Options of {@link createTokenExchangeGrant}. */
export interface TokenExchangeOptions {
  policy?: TokenExchangePolicy;
}

/** A token-exchange request that passed RFC 8693 §2.1 and the policy. */
export interface ValidatedTokenExchange {
  subject: ValidatedAccessToken;
  actor?: ValidatedAccessToken;
  act?: ActClaim;
  /** The subject token's `may_act`, carried into the new token (RFC 8693 §4.4), so a later exchange honours it too. */
  mayAct?: { sub: string; iss?: string };
  audience?: string;
  scopes: string[];
  claims: Record<string, unknown>;
  lifetime: number;
}

function isActClaim(value: unknown, depth = 0): value is ActClaim {
  if (depth > 16 || typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const { sub, act } = value as { sub?: unknown; act?: unknown };
  return typeof sub === "string" && sub !== "" && (act === undefined || isActClaim(act, depth + 1));
}

/** RFC 8707 §2 / RFC 8693 §2.1: `resource` is an absolute URI without a fragment. */
function isAbsoluteUri(value: string): boolean {
  try {
    return new URL(value).hash === "" && !value.includes("#");
  } catch {
    return false;
  }
}

/** A subject or actor token: its type must say access token (or JWT, for our JWT access tokens), and it must be ours and active. */
async function validateToken(request: GrantRequest, role: "subject" | "actor"): Promise<ValidatedAccessToken> {
  const token = request.params.get(`${role}_token`);
  const type = request.params.get(`${role}_token_type`);
  if (!token) throw new ProtocolError("invalid_request", `${role}_token is missing`);
  if (!type) throw new ProtocolError("invalid_request", `${role}_token_type is missing`);
  if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TOKEN_TYPE) throw new ProtocolError("invalid_request", `${role}_token_type ${type} is not supported`);
  // RFC 8693 §2.2.2: an invalid (expired, revoked, foreign) subject or actor token is invalid_request.
  const validated = await request.validateAccessToken(token);
  if (!validated) throw new ProtocolError("invalid_request", `the ${role}_token is not an active access token of this server`);
  if (type === JWT_TOKEN_TYPE && validated.format !== "jwt") throw new ProtocolError("invalid_request", `the ${role}_token is not a JWT`);
  return validated;
}

/** RFC 8693 §2.1: `resource` and `audience` name the target; here exactly one configured API resource, or none. */
function requestedTarget(request: GrantRequest): string | undefined {
  const resources = request.params.getAll("resource");
  for (const resource of resources) if (!isAbsoluteUri(resource)) throw new ProtocolError("invalid_target", `resource ${resource} is not an absolute URI`);
  const targets = [...new Set([...resources, ...request.params.getAll("audience")])];
  if (targets.length > 1) throw new ProtocolError("invalid_target", "a token exchange targets one API resource");
  const target = targets[0];
  if (target !== undefined && !request.apiResources.some((r) => r.name === target)) throw new ProtocolError("invalid_target", `${target} is not a known API resource`);
  return target;
}

/**
 * RFC 9449 §6 / RFC 8705 §3: a sender-constrained token is exchanged only by a request proving its key
 * (the same DPoP key, or the same client certificate); the new token is then bound to it too.
 */
function checkBinding(request: GrantRequest, token: ValidatedAccessToken, role: "subject" | "actor"): void {
  const cnf = token.claims.cnf;
  if (cnf?.jkt !== undefined && cnf.jkt !== request.dpopJkt) throw new ProtocolError("invalid_request", `the ${role}_token is DPoP-bound: the request needs a DPoP proof of its key`);
  if (cnf?.["x5t#S256"] !== undefined && cnf["x5t#S256"] !== request.certificateThumbprint) {
    throw new ProtocolError("invalid_request", `the ${role}_token is certificate-bound: the request needs the same client certificate`);
  }
}

/** Like Keycloak's rule: the subject token was issued to this client, names it, or names an API it may call. */
function intendedFor(request: GrantRequest, token: ValidatedAccessToken): boolean {
  const { client } = request;
  if (token.claims.client_id === client.clientId) return true;
  const audiences = typeof token.claims.aud === "string" ? [token.claims.aud] : [...token.claims.aud];
  if (audiences.includes(client.clientId)) return true;
  return audiences.some((aud) => request.apiResources.find((r) => r.name === aud)?.scopes.some((s) => client.scopes.includes(s)));
}

/** The subject token's `may_act` when well formed (RFC 8693 §4.4: an object with `sub`). */
function mayActOf(subject: ValidatedAccessToken): { sub: string; iss?: string } | undefined {
  const mayAct = (subject.claims as { may_act?: unknown }).may_act;
  if (typeof mayAct !== "object" || mayAct === null) return undefined;
  const { sub, iss } = mayAct as { sub?: unknown; iss?: unknown };
  return typeof sub === "string" && sub !== "" ? { sub, ...(typeof iss === "string" ? { iss } : {}) } : undefined;
}

/** RFC 8693 §4.4: a subject token's `may_act` names who may act for the subject. */
function checkMayAct(subject: ValidatedAccessToken, actingParty: string): void {
  const mayAct = (subject.claims as { may_act?: unknown }).may_act;
  if (mayAct === undefined) return;
  const allowed = typeof mayAct === "object" && mayAct !== null ? (mayAct as { sub?: unknown }).sub : undefined;
  if (typeof allowed !== "string" || allowed !== actingParty) throw new ProtocolError("invalid_request", "the subject token's may_act does not allow this actor");
}

/** The new token's scopes: requested ones within the subject token's, the client's and the target's; else all of those. */
function grantedScopes(request: GrantRequest, subject: ValidatedAccessToken, target: string | undefined, requested: string[] | undefined): string[] {
  const subjectScopes = subject.claims.scope.split(" ").filter(Boolean);
  const targetScopes = target === undefined ? undefined : request.apiResources.find((r) => r.name === target)!.scopes;
  if (requested) {
    for (const scope of requested) {
      if (!subjectScopes.includes(scope)) throw new ProtocolError("invalid_scope", `the subject token does not carry scope ${scope}`);
      if (!request.client.scopes.includes(scope)) throw new ProtocolError("invalid_scope", `scope ${scope} is not allowed for this client`);
      if (targetScopes && !targetScopes.includes(scope)) throw new ProtocolError("invalid_scope", `scope ${scope} does not belong to ${target}`);
    }
    return requested;
  }
  const scopes = subjectScopes.filter((s) => request.client.scopes.includes(s) && (!targetScopes || targetScopes.includes(s)));
  if (scopes.length === 0) {
    if (target !== undefined) throw new ProtocolError("invalid_target", `the subject token carries no scope of ${target} this client may use`);
    throw new ProtocolError("invalid_scope", "the subject token carries no scope this client may use");
  }
  return scopes;
}

/** Claims the policy may not set: the delegation chain is the grant's alone. */
const DELEGATION_CLAIMS = new Set(["act", "may_act"]);

/**
 * The token-exchange grant (RFC 8693): delegation with `actor_token` (`act`, nested), impersonation only
 * for clients registered with `token_exchange_allow_impersonation: true`, a new access token for one API
 * resource with scopes within the subject token's, never a refresh token, never outliving the subject
 * (or actor) token. The subject token must be meant for the client, the actor token must be the client's
 * own, sender-constrained tokens need the same key in the request (and the result stays bound), and the
 * subject's `may_act` is carried on.
 */
export function createTokenExchangeGrant(options: TokenExchangeOptions = {}): ExtensionGrant<ValidatedTokenExchange> {
  return {
    repeatableParameters: ["audience"],
    async validate(request) {
      const { client, params } = request;
      // Like Keycloak's standard token exchange: only clients that authenticate may exchange tokens.
      if (client.public) throw new ProtocolError("unauthorized_client", "public clients cannot exchange tokens");
      const requestedType = params.get("requested_token_type");
      // RFC 6749 §5.2: an unsupported parameter value is invalid_request; this server issues access tokens only.
      if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) throw new ProtocolError("invalid_request", `requested_token_type ${requestedType} is not supported`);
      // RFC 8693 §2.1: actor_token_type is required with actor_token and must not appear without it.
      if (!params.has("actor_token") && params.has("actor_token_type")) throw new ProtocolError("invalid_request", "actor_token_type without actor_token");
      const subject = await validateToken(request, "subject");
      checkBinding(request, subject, "subject");
      const actorToken = params.has("actor_token") ? await validateToken(request, "actor") : undefined;
      if (actorToken) {
        checkBinding(request, actorToken, "actor");
        // The actor is the requesting client: its own token (client credentials, or one issued to it).
        if (actorToken.claims.client_id !== client.clientId) throw new ProtocolError("invalid_request", "the actor_token was not issued to this client");
      }
      // An actor that is the subject itself (the same token, or the same user) is impersonation, not delegation.
      const selfActing =
        actorToken !== undefined && (actorToken.claims.jti === subject.claims.jti || (actorToken.claims.sub === subject.claims.sub && actorToken.claims.sub !== actorToken.claims.client_id));
      const actor = selfActing ? undefined : actorToken;
      const subjectAct = (subject.claims as { act?: unknown }).act;
      if (subjectAct !== undefined && !isActClaim(subjectAct)) throw new ProtocolError("invalid_request", "the subject token's act claim is malformed");
      let act: ActClaim | undefined;
      if (actor) {
        checkMayAct(subject, actor.claims.sub);
        act = { sub: actor.claims.sub, ...(subjectAct ? { act: subjectAct } : {}) };
      } else {
        if (client.metadata.token_exchange_allow_impersonation !== true) throw new ProtocolError("invalid_request", "actor_token is missing and this client may not impersonate");
        checkMayAct(subject, client.clientId);
        // Impersonation adds no actor but keeps an earlier delegation chain visible.
        act = subjectAct;
      }

      const requestedScope = params.get("scope");
      let requestedScopes: string[] | undefined;
      if (requestedScope !== undefined) {
        const parsed = parseScope(requestedScope);
        if (!parsed || parsed.length === 0) throw new ProtocolError("invalid_scope", "scope is malformed");
        requestedScopes = parsed;
      }
      const target = requestedTarget(request);
      const subjectIntended = intendedFor(request, subject);
      const decision =
        (await options.policy?.({ client, subject, ...(actor ? { actor } : {}), kind: actor ? "delegation" : "impersonation", subjectIntended, ...(target ? { audience: target } : {}), ...(requestedScopes ? { requestedScopes } : {}) })) ?? {};
      if (decision.deny !== undefined) throw new ProtocolError("invalid_target", decision.deny || "the exchange is not allowed");
      // RFC 8693 §2.2.2: a subject token this client may not use is an invalid subject_token.
      if (!subjectIntended && decision.acceptSubject !== true) throw new ProtocolError("invalid_request", "the subject_token was not issued to this client or for an API it may call");
      const audience = decision.audience ?? target;
      if (audience !== undefined && !request.apiResources.some((r) => r.name === audience)) throw new ProtocolError("invalid_target", `${audience} is not a known API resource`);
      const scopes = grantedScopes(request, subject, audience, requestedScopes);

      const now = request.now();
      const remaining = Math.min(subject.claims.exp, actor?.claims.exp ?? Infinity) - now;
      if (remaining <= 0) throw new ProtocolError("invalid_request", "the subject token has expired");
      const claims = Object.fromEntries(Object.entries(decision.claims ?? {}).filter(([name]) => !DELEGATION_CLAIMS.has(name)));
      const mayAct = mayActOf(subject);
      return { subject, ...(actor ? { actor } : {}), ...(act ? { act } : {}), ...(mayAct ? { mayAct } : {}), ...(audience ? { audience } : {}), scopes, claims, lifetime: remaining };
    },
    async issue(validated, request) {
      const { subject, actor, act } = validated;
      const session: GrantSession | undefined = subject.session;
      // A subject naming this client (its own token, typically) gives this client's own token (no subject:
      // issueTokens never takes the client's id as a subject).
      const ownToken = subject.claims.sub === request.client.clientId;
      const tokens: DelegatingIssueTokensRequest = {
        ...(session ? { session } : ownToken ? {} : { subject: subject.claims.sub }),
        scopes: validated.scopes,
        ...(validated.audience ? { audience: validated.audience } : {}),
        claims: validated.claims,
        ...(act ? { [DELEGATION_CHAIN]: act } : {}),
        ...(validated.mayAct ? { mayAct: validated.mayAct } : {}),
        lifetime: validated.lifetime,
        refreshToken: false,
        idToken: false,
      };
      const issued = await request.issueTokens(tokens);
      request.emit({
        type: "token.exchanged",
        clientId: request.client.clientId,
        sub: subject.claims.sub,
        subjectClientId: subject.claims.client_id,
        ...(actor ? { actor: actor.claims.sub } : {}),
        impersonation: actor === undefined,
        ...(validated.audience ? { audience: validated.audience } : {}),
        scope: issued.scope,
        tokenType: issued.token_type,
      });
      // RFC 8693 §2.2.1: the issued token's type; no refresh token (RFC 8693 §2.2.1 leaves it optional; we never issue one).
      const { refresh_token: _never, id_token: _none, ...response } = issued;
      return { ...response, issued_token_type: ACCESS_TOKEN_TYPE };
    },
  };
}
