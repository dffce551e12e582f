import { ProtocolError, isValidCodeChallenge, parseScope, type CodeChallengeMethod } from "@tessera/protocol";
import type { Client, ClientLookup } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import { Params } from "../http/params.ts";
import { verifyIdTokenHint } from "./id-token-hint.ts";
import { redirectUriMatches } from "./redirect-uri.ts";
import { parseResourceIndicators, targetResources } from "./resource-indicators.ts";

export type ResponseMode = "query" | "fragment" | "form_post";
export type Prompt = "none" | "login" | "consent" | "create";

/** Where and how an authorization response (or error) goes; known once client and redirect_uri are valid. */
export interface AuthorizeReply {
  redirectUri: string;
  responseMode: ResponseMode;
  state?: string;
  /**
   * Errors are shown on the error page, never sent to `redirectUri`: a metadata-document client's
   * redirect URI off its client_id's origin (anyone can list any URI in a document; RFC 9700 §4.11.2).
   */
  errorsOnPage?: boolean;
}

/**
 * True when errors for this client may not be redirected to this URI: the client is known only by its
 * metadata document, and the URI is not on the origin of its client_id URL (draft-ietf-oauth-client-id-
 * metadata-document §8.1 ties trust in redirect URIs to that origin). Its codes still go there after consent.
 */
export function errorsStayOnPage(client: Client, redirectUri: string): boolean {
  if (client.metadataDocumentHost === undefined) return false;
  try {
    return new URL(redirectUri).origin !== new URL(client.clientId).origin;
  } catch {
    return true;
  }
}

/** An authorization request that passed every rule of OIDC Core §3.1.2.2 and RFC 7636. */
export interface ValidatedAuthorizeRequest {
  client: Client;
  reply: AuthorizeReply;
  scopes: string[];
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: CodeChallengeMethod;
  prompt: ReadonlySet<Prompt>;
  maxAge?: number;
  loginHint?: string;
  /** Subject of a valid `id_token_hint`. */
  hintSubject?: string;
  uiLocales?: string;
  acrValues?: string;
  /** RFC 9449 §10 `dpop_jkt`. */
  dpopJkt?: string;
  /** RFC 8707 `resource` values (distinct, each a configured API resource owning a requested scope); absent when none were sent. */
  resources?: string[];
  /**
   * The parameters this provider understands ({@link AUTHORIZE_PARAMETERS}), as received, kept while the
   * user logs in; unknown ones are dropped, never stored.
   */
  params: Params;
}

/** A failure: redirectable errors carry the reply they must be sent with. */
export type AuthorizeValidation =
  | { ok: true; value: ValidatedAuthorizeRequest }
  | { ok: false; error: ProtocolError; reply?: AuthorizeReply };

/**
 * The authorization request parameters this provider reads (OIDC Core §3.1.2.1, RFC 7636, RFC 9449 §10,
 * RFC 8707 `resource`, the only repeatable one);
 * only these are kept in a pending request. Others are ignored (OAuth 2.0 §3.1), and never stored.
 */
export const AUTHORIZE_PARAMETERS: ReadonlySet<string> = new Set([
  "client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "prompt", "max_age",
  "login_hint", "id_token_hint", "ui_locales", "acr_values", "code_challenge", "code_challenge_method", "dpop_jkt",
  "resource",
]);

const RESPONSE_MODES: readonly ResponseMode[] = ["query", "fragment", "form_post"];
const PROMPTS: readonly Prompt[] = ["none", "login", "consent", "create"];

/** The prompt values this provider serves: `create` (OIDC Prompt Create 1.0) only with a registration page. */
export function supportedPrompts(deps: ProviderDeps): Prompt[] {
  return PROMPTS.filter((p) => p !== "create" || deps.options.registrationUrl !== undefined);
}

/** RFC 6749 §3.1.2 / OIDC Core §3.1.2.1 / RFC 8252 §7.3: the client and a registered redirect_uri. */
async function validateClientAndRedirect(params: Params, deps: ProviderDeps, lookup?: ClientLookup): Promise<{ client: Client; redirectUri: string }> {
  const clientId = params.get("client_id");
  if (!clientId) throw new ProtocolError("invalid_request", "client_id is missing", { redirectable: false });
  const client = await deps.clients.findClientById(clientId, lookup);
  if (!client) throw new ProtocolError("invalid_client", "the client is unknown", { redirectable: false });
  const redirectUri = params.get("redirect_uri");
  if (!redirectUri) throw new ProtocolError("invalid_request", "redirect_uri is missing", { redirectable: false });
  // Exact string comparison (any port for loopback IPs when PKCE is used): no normalization, no prefix or wildcard matching.
  if (!redirectUriMatches(client.redirectUris, redirectUri, { anyLoopbackPort: !!params.get("code_challenge") })) {
    throw new ProtocolError("invalid_request", "redirect_uri is not registered for this client", { redirectable: false });
  }
  return { client, redirectUri };
}

/**
 * How a request reached validation: `direct` at the authorization endpoint, `pushed` through a PAR
 * request_uri, `par` at the PAR endpoint itself, `resumed` from a pending interaction (already checked).
 */
export type AuthorizeSource = "direct" | "pushed" | "par" | "resumed";

/** Validates an authorization request; never throws for bad input. `lookup` tells about the HTTP request. */
export async function validateAuthorizeRequest(params: Params, deps: ProviderDeps, source: AuthorizeSource = "resumed", lookup?: ClientLookup): Promise<AuthorizeValidation> {
  let client: Client;
  let redirectUri: string;
  try {
    ({ client, redirectUri } = await validateClientAndRedirect(params, deps, lookup));
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error };
    throw error;
  }
  const requestedMode = params.get("response_mode");
  const validMode = requestedMode === undefined || RESPONSE_MODES.includes(requestedMode as ResponseMode);
  const reply: AuthorizeReply = {
    redirectUri,
    responseMode: validMode && requestedMode ? (requestedMode as ResponseMode) : "query",
    state: params.get("state"),
    ...(errorsStayOnPage(client, redirectUri) ? { errorsOnPage: true } : {}),
  };
  const fail = (code: ConstructorParameters<typeof ProtocolError>[0], description: string): AuthorizeValidation => ({
    ok: false,
    error: new ProtocolError(code, description),
    reply,
  });

  if (!validMode) return fail("invalid_request", "response_mode is not supported");
  if (params.has("request")) return fail("request_not_supported", "request objects are not supported");
  if (params.has("request_uri")) return fail("request_uri_not_supported", "request_uri is not supported");
  // RFC 9126 §5-§6: pushing first is required globally or for this client.
  if (source === "direct" && (deps.options.par.required || client.requirePushedAuthorizationRequests)) {
    return fail("invalid_request", "this client must use a pushed authorization request (PAR)");
  }
  if (params.has("registration")) return fail("registration_not_supported", "registration is not supported");

  const responseType = params.get("response_type");
  if (!responseType) return fail("invalid_request", "response_type is missing");
  if (responseType !== "code") return fail(client.profileErrorCode ?? "unsupported_response_type", "only response_type=code is supported");
  if (!client.responseTypes.includes("code") || !client.grantTypes.includes("authorization_code")) {
    return fail("unauthorized_client", "the client may not use the authorization code flow");
  }

  const scopeParam = params.get("scope");
  if (!scopeParam) return fail("invalid_request", "scope is missing");
  const scopes = parseScope(scopeParam);
  if (!scopes || scopes.length === 0) return fail("invalid_scope", "scope is malformed");
  const known = new Set([...deps.options.identityResources, ...deps.options.apiScopes.map((s) => s.name)]);
  for (const scope of scopes) {
    if (!known.has(scope)) return fail("invalid_scope", `scope ${scope} is unknown`);
    if (!client.scopes.includes(scope)) return fail("invalid_scope", `scope ${scope} is not allowed for this client`);
  }

  // RFC 8707 §2: resources the scopes are for; an error here is redirected like any other.
  let resources: string[] | undefined;
  const indicated = params.getAll("resource");
  if (indicated.length > 0) {
    try {
      resources = targetResources(parseResourceIndicators(indicated, deps.options), scopes, deps.options, true).audience;
    } catch (error) {
      if (error instanceof ProtocolError) return fail(error.code, error.description ?? error.code);
      throw error;
    }
  }

  const codeChallenge = params.get("code_challenge");
  const method = params.get("code_challenge_method");
  if (codeChallenge === undefined) {
    if (method !== undefined) return fail("invalid_request", "code_challenge_method without code_challenge");
    if (client.requirePkce) return fail("invalid_request", "code_challenge is required (PKCE, RFC 7636)");
  } else {
    // RFC 7636 §4.3: the method defaults to plain, which is not accepted.
    if (method !== "S256") return fail("invalid_request", "code_challenge_method must be S256");
    if (!isValidCodeChallenge(codeChallenge)) return fail("invalid_request", "code_challenge is malformed");
  }

  const prompt = new Set<Prompt>();
  // Prompt Create 1.0 §4: a value not in prompt_values_supported is invalid_request.
  const supported = supportedPrompts(deps);
  for (const value of (params.get("prompt") ?? "").split(" ").filter(Boolean)) {
    if (!supported.includes(value as Prompt)) return fail("invalid_request", `prompt ${value} is not supported`);
    prompt.add(value as Prompt);
  }
  if (prompt.has("none") && prompt.size > 1) return fail("invalid_request", "prompt=none cannot be combined with other values");

  let maxAge: number | undefined;
  const maxAgeParam = params.get("max_age");
  if (maxAgeParam !== undefined) {
    if (!/^\d{1,10}$/.test(maxAgeParam)) return fail("invalid_request", "max_age must be a non-negative integer");
    maxAge = Number(maxAgeParam);
  }

  const dpopJkt = params.get("dpop_jkt");
  if (dpopJkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(dpopJkt)) return fail("invalid_request", "dpop_jkt must be a SHA-256 JWK thumbprint");

  let hintSubject: string | undefined;
  const idTokenHint = params.get("id_token_hint");
  if (idTokenHint !== undefined) {
    const hint = await verifyIdTokenHint(idTokenHint, deps);
    if (!hint || hint.clientId !== client.clientId) return fail("invalid_request", "id_token_hint is invalid");
    hintSubject = hint.sub;
  }

  return {
    ok: true,
    value: {
      client,
      reply,
      scopes,
      nonce: params.get("nonce"),
      codeChallenge,
      codeChallengeMethod: codeChallenge ? "S256" : undefined,
      prompt,
      maxAge,
      loginHint: params.get("login_hint"),
      hintSubject,
      uiLocales: params.get("ui_locales"),
      acrValues: params.get("acr_values"),
      dpopJkt,
      resources,
      params: Params.fromEntries([...params].filter(([name]) => AUTHORIZE_PARAMETERS.has(name))),
    },
  };
}
