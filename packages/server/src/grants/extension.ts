import { ProtocolError, randomHandle } from "@tessera/protocol";
import type { Client, ClientMetadata, TokenEndpointAuthMethod } from "../clients.ts";
import { nowSeconds, type ProviderDeps } from "../deps.ts";
import type { ApiResource, ApiScope } from "../options.ts";
import type { TesseraEvent } from "../events.ts";
import type { Params } from "../http/params.ts";
import { resolveAccessToken } from "../tokens/access-token-resolver.ts";
import { createRefreshToken } from "../tokens/refresh-tokens.ts";
import { issueTokens as issueTokensInternal, type AccessTokenClaims, type ActClaim, type MayActClaim, type TokenResponse, type UserTokenContext } from "../tokens/token-service.ts";
import type { Grant, GrantContext } from "./index.ts";

/** The request parameters, read-only (RFC 6749 §3.2: form-encoded, no repeats unless declared). */
export interface GrantParams {
  /** The value of a parameter, if sent. */
  get(name: string): string | undefined;
  /** Every value of a parameter: `resource` and the grant's {@link ExtensionGrant.repeatableParameters}. */
  getAll(name: string): string[];
  has(name: string): boolean;
}

/** The authenticated client, as a grant sees it: registration data without any secret. */
export interface GrantClient {
  readonly clientId: string;
  readonly clientName: string;
  readonly grantTypes: readonly string[];
  /** The scopes the client may ask for. */
  readonly scopes: readonly string[];
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** True for public clients (`token_endpoint_auth_method: none`). */
  readonly public: boolean;
  /** Its registration metadata (extensions included), `client_secret` removed. */
  readonly metadata: Readonly<Omit<ClientMetadata, "client_secret">>;
}

/** The user's sign-in session tokens continue: it ties them to logout, session expiry and revocation. */
export interface GrantSession {
  /** The user's subject identifier. */
  readonly sub: string;
  /** Session id (`sid`). */
  readonly sid: string;
  /** Unix seconds the user authenticated. */
  readonly authTime: number;
  readonly amr: readonly string[];
  readonly idp: string;
  /** Claims given at sign-in (used by the default profile service when there is no user store). */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Revocation family: tokens of one family are revoked together (default: a new family). */
  readonly grantId?: string;
}

/** An access token issued by this provider, valid now (signature, expiry, revocation, session). */
export interface ValidatedAccessToken {
  readonly claims: Readonly<AccessTokenClaims>;
  readonly format: "jwt" | "reference";
  /** For a user token: its session, to continue it in new tokens. */
  readonly session?: GrantSession;
}

/** What {@link GrantRequest.issueTokens} issues. */
export interface IssueTokensRequest {
  /**
   * The user the tokens are for, when there is no {@link session} (for example an assertion grant);
   * absent, and without a session, the tokens are the client's own (`sub` = client_id). Never the
   * client's own id (a TypeError): such a token would look self-contained and could not be revoked.
   */
  subject?: string;
  /** The user session the tokens continue; its `sub` is the tokens' subject. Needed for ID and refresh tokens. */
  session?: GrantSession;
  /** Granted scopes; each must be one the client may ask for (else `invalid_scope`). */
  scopes: readonly string[];
  /** `aud` of the access token (API resource names); default: the resources of the granted scopes, else the client. */
  audience?: string | readonly string[];
  /** Extra access-token claims; they never replace protocol claims (iss, sub, aud, client_id, scope, exp, cnf, ...). */
  claims?: Readonly<Record<string, unknown>>;
  /** Seconds the access token lives, at most (the client's or provider's lifetime caps it). */
  lifetime?: number;
  /** Also issue a refresh token (needs a session; only for clients allowed `refresh_token`). Default false. */
  refreshToken?: boolean;
  /** Also issue an ID token (needs a session and the `openid` scope). Default false. */
  idToken?: boolean;
  /** RFC 8693 §4.4 `may_act`: who may act for the subject in a later token exchange (never settable through `claims`). */
  mayAct?: Readonly<MayActClaim>;
  /** RFC 8707: the resources the grant covers, kept with its refresh token (which may then name any of them). */
  resources?: readonly string[];
}

/** Internal (not exported from the package): the delegation chain (`act`) only the built-in token exchange sets. */
export const DELEGATION_CHAIN: unique symbol = Symbol("tessera.delegationChain");

/** {@link IssueTokensRequest} as the built-in token exchange sends it. */
export interface DelegatingIssueTokensRequest extends IssueTokensRequest {
  [DELEGATION_CHAIN]?: ActClaim;
}

/** A token request to an extension grant, after client authentication and the DPoP / mTLS checks. */
export interface GrantRequest {
  /** The `grant_type` parameter. */
  readonly grantType: string;
  readonly params: GrantParams;
  readonly client: GrantClient;
  /** Thumbprint of the request's DPoP proof key (RFC 9449); {@link issueTokens} binds to it. */
  readonly dpopJkt?: string;
  /** Thumbprint of the client certificate tokens are bound to (RFC 8705 §3); {@link issueTokens} binds to it. */
  readonly certificateThumbprint?: string;
  readonly issuer: string;
  readonly apiScopes: readonly Readonly<ApiScope>[];
  /** The configured API resources (names and scopes; no secrets). */
  readonly apiResources: readonly Readonly<Pick<ApiResource, "name" | "scopes">>[];
  /** Now, in Unix seconds, from the provider's clock. */
  now(): number;
  /**
   * An access token of this provider (JWT or reference) that is active and not revoked, else undefined.
   * Sender-constrained tokens are returned too (with their `cnf`).
   */
  validateAccessToken(token: string): Promise<ValidatedAccessToken | undefined>;
  /** Issues (and stores) the tokens, bound to the request's DPoP key or certificate when it has one. */
  issueTokens(tokens: IssueTokensRequest): Promise<TokenResponse>;
  /** Emits an audit event to the provider's event sink. */
  emit(event: TesseraEvent): void;
}

/**
 * A token-endpoint grant added with `createProvider({ grants: { [grantType]: grant } })`. `validate`
 * checks every rule of the grant (throwing {@link ProtocolError} with an RFC 6749 §5.2 code); `issue`
 * issues tokens for what it validated. The client must list the grant type in its `grant_types`.
 */
export interface ExtensionGrant<V = unknown> {
  /** Parameters this grant accepts more than once, besides `resource` (at most 8). */
  readonly repeatableParameters?: readonly string[];
  validate(request: GrantRequest): Promise<V>;
  issue(validated: V, request: GrantRequest): Promise<TokenResponse>;
}

/** The grant types built in; extension grants cannot replace them. */
export const BUILT_IN_GRANT_TYPES: readonly string[] = ["authorization_code", "refresh_token", "client_credentials"];

/** RFC 6749 §A.10: a grant name or an absolute URI, printable ASCII. */
const GRANT_TYPE = /^[\x21-\x7e]{1,255}$/;
const PARAMETER_NAME = /^[A-Za-z0-9_.\-~]{1,64}$/;
/** Parameters the endpoint itself reads; they are never repeatable. */
const SINGLE_PARAMETERS = ["grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "scope"];

/** A deep copy where possible (JSON metadata), so a grant cannot change the registered client. */
function copyOf<T extends object>(value: T): T {
  try {
    return structuredClone(value);
  } catch {
    return { ...value };
  }
}

/** A read-only view of the client for grants. */
function grantClient(client: Client): GrantClient {
  const { client_secret: _secret, ...metadata } = client.metadata;
  return Object.freeze({
    clientId: client.clientId,
    clientName: client.clientName,
    grantTypes: Object.freeze([...client.grantTypes]),
    scopes: Object.freeze([...client.scopes]),
    tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
    public: client.tokenEndpointAuthMethod === "none",
    metadata: Object.freeze(copyOf(metadata)),
  });
}

function userContext(session: GrantSession): UserTokenContext {
  return {
    sub: session.sub,
    sid: session.sid,
    authTime: session.authTime,
    amr: [...session.amr],
    idp: session.idp,
    sessionClaims: { ...(session.claims ?? {}) },
    grantId: session.grantId ?? randomHandle(16),
  };
}

/** What the adapter hands the token endpoint as the "validated" value. */
interface ExtensionValidated {
  request: GrantRequest;
  value: unknown;
  /** Set once tokens were issued for a subject, for the `token.issued` event. */
  subject?: string;
}

/** The public request view over the endpoint's internals. */
function grantRequest(grantType: string, form: Params, client: Client, deps: ProviderDeps, context: GrantContext, issuedFor: { subject?: string }): GrantRequest {
  return Object.freeze({
    grantType,
    params: { get: (name: string) => form.get(name), getAll: (name: string) => form.getAll(name), has: (name: string) => form.has(name) },
    client: grantClient(client),
    ...(context.dpopJkt ? { dpopJkt: context.dpopJkt } : {}),
    ...(context.certificateThumbprint ? { certificateThumbprint: context.certificateThumbprint } : {}),
    issuer: deps.options.issuer,
    apiScopes: deps.options.apiScopes.map((s) => Object.freeze({ ...s })),
    apiResources: deps.options.apiResources.map((r) => Object.freeze({ name: r.name, scopes: [...r.scopes] })),
    now: () => nowSeconds(deps),
    async validateAccessToken(token: string): Promise<ValidatedAccessToken | undefined> {
      if (typeof token !== "string" || token === "") return undefined;
      const resolved = await resolveAccessToken(token, deps);
      if (!resolved) return undefined;
      const { claims } = resolved;
      const session: GrantSession | undefined =
        claims.sid !== undefined && resolved.record
          ? { sub: claims.sub, sid: claims.sid, authTime: claims.auth_time ?? claims.iat, amr: claims.amr ?? [], idp: claims.idp ?? "local", claims: resolved.record.sessionClaims, ...(resolved.grantId ? { grantId: resolved.grantId } : {}) }
          : undefined;
      return Object.freeze({ claims: Object.freeze(structuredClone(claims)), format: resolved.format, ...(session ? { session: Object.freeze(session) } : {}) });
    },
    async issueTokens(tokens: IssueTokensRequest): Promise<TokenResponse> {
      const { session } = tokens;
      if (session && tokens.subject !== undefined && tokens.subject !== session.sub) throw new TypeError("issueTokens: subject differs from the session's sub");
      if ((tokens.refreshToken || tokens.idToken) && !session) throw new TypeError("issueTokens: refresh and ID tokens need a session");
      if (tokens.subject !== undefined && (typeof tokens.subject !== "string" || tokens.subject === "" || tokens.subject.length > 255 || tokens.subject.includes("\0"))) {
        throw new TypeError("issueTokens: subject must be 1 to 255 characters without NUL");
      }
      // A client's own tokens have no subject (sub = client_id): one named so would look self-contained.
      if (!session && tokens.subject === client.clientId) throw new TypeError("issueTokens: subject is the client's own id; omit subject for the client's own tokens");
      const mayAct = tokens.mayAct;
      if (mayAct !== undefined && (typeof mayAct?.sub !== "string" || mayAct.sub === "" || (mayAct.iss !== undefined && typeof mayAct.iss !== "string"))) throw new TypeError("issueTokens: mayAct needs a non-empty sub");
      const act = (tokens as DelegatingIssueTokensRequest)[DELEGATION_CHAIN];
      const scopes = [...tokens.scopes];
      const outside = scopes.find((s) => !client.scopes.includes(s));
      if (outside !== undefined) throw new ProtocolError("invalid_scope", `scope ${outside} is not allowed for this client`);
      if (tokens.lifetime !== undefined && !(Number.isInteger(tokens.lifetime) && tokens.lifetime > 0)) throw new TypeError("issueTokens: lifetime must be a positive integer");
      const audience = tokens.audience === undefined ? undefined : typeof tokens.audience === "string" ? [tokens.audience] : [...tokens.audience];
      if (audience && (audience.length === 0 || audience.some((a) => typeof a !== "string" || a === ""))) throw new TypeError("issueTokens: audience must name at least one non-empty value");
      const user = session ? userContext(session) : undefined;
      // Refresh tokens are bound by the client's policy, like the code grant's (RFC 9449 §5, RFC 8705 §4).
      const bindTo = client.bindRefreshTokens ? { dpopJkt: context.dpopJkt, certificateThumbprint: context.certificateThumbprint } : undefined;
      const refreshToken = user && tokens.refreshToken && client.grantTypes.includes("refresh_token") ? () => createRefreshToken(deps, client, user, scopes, undefined, bindTo, undefined, tokens.resources ? [...tokens.resources] : undefined) : undefined;
      const issued = await issueTokensInternal(deps, {
        client,
        scopes,
        user,
        subject: user ? undefined : tokens.subject,
        audience,
        claims: tokens.claims ? { ...tokens.claims } : undefined,
        act,
        mayAct: mayAct ? { sub: mayAct.sub, ...(mayAct.iss !== undefined ? { iss: mayAct.iss } : {}) } : undefined,
        lifetime: tokens.lifetime,
        idToken: tokens.idToken === true && scopes.includes("openid"),
        refreshToken,
        dpopJkt: context.dpopJkt,
        certificateThumbprint: context.certificateThumbprint,
      });
      issuedFor.subject = user?.sub ?? tokens.subject;
      return issued;
    },
    emit: (event: TesseraEvent) => deps.emit(event),
  });
}

/** Wraps a public extension grant in the token endpoint's internal grant interface. */
export function adaptExtensionGrant(grantType: string, extension: ExtensionGrant): Grant<ExtensionValidated> {
  return {
    repeatableParameters: extension.repeatableParameters ?? [],
    async validate(form, client, deps, context) {
      // The same object the endpoint gets back, so it sees the subject once tokens are issued.
      const issuedFor: { subject?: string } = {};
      const request = grantRequest(grantType, form, client, deps, context, issuedFor);
      const value = await extension.validate(request);
      return Object.assign(issuedFor, { request, value });
    },
    issue: (validated) => extension.issue(validated.value, validated.request),
  };
}

/** Checks the embedder's grants: valid names, no built-in replaced, bounded repeatable parameters. */
export function checkExtensionGrants(grants: Readonly<Record<string, ExtensionGrant>>, reserved: readonly string[]): void {
  for (const [grantType, grant] of Object.entries(grants)) {
    if (!GRANT_TYPE.test(grantType)) throw new TypeError(`grants: ${JSON.stringify(grantType)} is not a grant type name`);
    if (reserved.includes(grantType)) throw new TypeError(`grants: ${grantType} is built in and cannot be replaced`);
    if (typeof grant?.validate !== "function" || typeof grant.issue !== "function") throw new TypeError(`grants: ${grantType} needs validate and issue functions`);
    const repeatable = grant.repeatableParameters ?? [];
    if (repeatable.length > 8) throw new TypeError(`grants: ${grantType} declares more than 8 repeatable parameters`);
    for (const name of repeatable) {
      if (!PARAMETER_NAME.test(name) || SINGLE_PARAMETERS.includes(name)) throw new TypeError(`grants: ${grantType}: ${JSON.stringify(name)} cannot be a repeatable parameter`);
    }
  }
}
