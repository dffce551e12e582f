import { ProtocolError, computeSessionState, randomHandle, sha256Base64url } from "@tessera/protocol";
import { nowSeconds, PATHS, type ProviderDeps } from "../deps.ts";
import { Params, readForm, requestObjectLimits } from "../http/params.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { htmlPage, redirect } from "../http/responses.ts";
import type { Interaction } from "../session/interactions.ts";
import type { ExternalProvider } from "../federation/external-providers.ts";
import type { AuthenticationSession } from "../session/session.ts";
import { meetsAcr, requiredAcrFor } from "../session/authentication-context.ts";
import { errorPage } from "../ui/html.ts";
import { errorsStayOnPage, validateAuthorizeRequest, type AuthorizeSource, type ValidatedAuthorizeRequest } from "../validation/authorize-request.ts";
import { redirectUriMatches } from "../validation/redirect-uri.ts";
import { resolveRequestObject, unsignedRequestRefusal } from "../validation/request-object.ts";
import { PAR_REQUEST_URI_PREFIX, completePushedRequest, readPushedRequest, type PushedRequestRef } from "./par.ts";
import { authorizeError, authorizeResponse } from "./authorize-response.ts";

/** What an authorization code stands for; stored hashed under the code. */
export interface AuthorizationCodeData {
  redirectUri: string;
  scopes: string[];
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: "S256";
  sid: string;
  authTime: number;
  amr: string[];
  idp: string;
  sessionClaims: Record<string, unknown>;
  /** RFC 9449 §10: the DPoP key the code must be redeemed with. */
  dpopJkt?: string;
  /** RFC 8707: the resources of the authorization request (distinct configured API resources); absent when none were indicated. */
  resources?: string[];
}

/** GET/POST {issuer}/connect/authorize (OIDC Core §3.1.2). */
export function authorizeEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const limits = requestObjectLimits(deps.options);
    let params: Params;
    try {
      params =
        request.method === "POST" ? await readForm(request, limits) : Params.parse(new URL(request.url).search, limits);
    } catch (error) {
      // The parameters could not be read, so there is no trustworthy redirect_uri to send an error to.
      if (error instanceof ProtocolError) return htmlPage(errorPage(error.code, error.description), error.status === 413 ? 413 : 400);
      throw error;
    }
    const requestUri = params.get("request_uri");
    if (requestUri === undefined || params.has("request")) {
      // RFC 9101 §6.3: with a request object, only its parameters (and client_id) count.
      const resolved = await resolveRequestObject(params, deps, undefined, { clientAddress: clientAddressOf(request) });
      if (!resolved.ok) return authorizeError(resolved.error, resolved.reply, deps.options.issuer);
      return processAuthorization(request, resolved.params, undefined, deps, "direct", resolved.signed);
    }
    // Request objects by reference are not fetched: only this server's PAR request_uris are accepted.
    if (!requestUri.startsWith(PAR_REQUEST_URI_PREFIX)) {
      return invalidRequestUri(request, params, deps, new ProtocolError("request_uri_not_supported", "only request_uri values from the pushed authorization request endpoint are accepted"));
    }
    // RFC 9126 §4: a pushed request; only client_id counts beside request_uri, everything else was pushed.
    const clientId = params.get("client_id");
    let pushed;
    try {
      pushed = clientId === undefined ? undefined : await readPushedRequest(deps, requestUri, clientId, clientAddressOf(request));
    } catch (error) {
      // The pending-request cap is full (temporarily_unavailable): an error page, as for a bad request_uri.
      if (error instanceof ProtocolError) return invalidRequestUri(request, params, deps, error);
      throw error;
    }
    if (!pushed) return invalidRequestUri(request, params, deps);
    return processAuthorization(request, pushed.params, undefined, deps, "pushed", false, pushed.ref);
  };
}

/**
 * A request_uri that is unknown, expired, used, or another client's: `invalid_request_uri` (or the given
 * error), redirected only to a redirect_uri registered for the named client (never an open redirector),
 * else an error page.
 */
async function invalidRequestUri(request: Request, params: Params, deps: ProviderDeps, error = new ProtocolError("invalid_request_uri", "the request_uri is unknown, expired, already used, or not this client's")): Promise<Response> {
  const clientId = params.get("client_id");
  const client = clientId === undefined ? undefined : await deps.clients.findClientById(clientId, { clientAddress: clientAddressOf(request) });
  const redirectUri = params.get("redirect_uri");
  if (!client || redirectUri === undefined || !redirectUriMatches(client.redirectUris, redirectUri, { anyLoopbackPort: false }) || errorsStayOnPage(client, redirectUri)) {
    return authorizeError(error, undefined, deps.options.issuer);
  }
  return authorizeError(error, { redirectUri, responseMode: "query", state: params.get("state") }, deps.options.issuer);
}

/** GET {issuer}/connect/authorize/callback?interaction=ID: continues a request after login or consent. */
export function authorizeCallbackEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    const id = new URL(request.url).searchParams.get("interaction") ?? "";
    const interaction = await deps.interactions.get(id);
    if (!interaction) {
      return htmlPage(errorPage("invalid_request", "This sign-in request has expired or was already completed."), 400);
    }
    return processAuthorization(request, Params.fromEntries(interaction.params), interaction, deps);
  };
}

/**
 * The authorization decision (OIDC Core §3.1.2.3-§3.1.2.5): validate, then login, then consent, then a
 * code. `interaction` is set when the request comes back from the login or consent page. A pushed request
 * (`pushed`, or the interaction's) is used up when the request ends: a code, an error or a denial.
 */
async function processAuthorization(request: Request, params: Params, interaction: Interaction | undefined, deps: ProviderDeps, source: AuthorizeSource = "resumed", signed = false, pushedRef?: PushedRequestRef): Promise<Response> {
  const issuer = deps.options.issuer;
  const pushed = pushedRef ?? interaction?.pushed;
  const validation = await validateAuthorizeRequest(params, deps, source, { clientAddress: clientAddressOf(request) });
  const complete = async () => (pushed && validation.ok ? completePushedRequest(deps, pushed, validation.value.client.clientId) : true);
  if (!validation.ok) {
    if (pushed) await completePushedRequest(deps, pushed, interaction?.clientId ?? params.get("client_id") ?? "");
    return authorizeError(validation.error, validation.reply, issuer);
  }
  const validated = validation.value;
  // Pushed requests met the rule at the PAR endpoint; resumed ones when they started.
  const unsigned = source === "direct" ? unsignedRequestRefusal(validated.client, signed) : undefined;
  if (unsigned) return authorizeError(unsigned, validated.reply, issuer);
  const read = await deps.sessions.read(request);
  const cookies = read?.cookies ?? [];
  const session = read?.session;
  const fail = async (code: "login_required" | "consent_required" | "access_denied", description: string) => {
    await complete();
    return authorizeError(new ProtocolError(code, description), validated.reply, issuer, cookies);
  };

  if (needsRegistration(validated, session, interaction) && deps.options.registrationUrl !== undefined) {
    return redirectToInteraction(request, deps.options.registrationUrl, validated, interaction, deps, cookies);
  }
  // acr_values=idp:{id} (contract §15): sign-in goes straight to that external provider, skipping the login page.
  const idp = await deps.federation.requestedProvider(validated.acrValues);
  if (needsLogin(validated, session, interaction, deps) || (idp && session!.idp !== idp.id)) {
    if (validated.prompt.has("none")) return fail("login_required", "the user must sign in");
    return redirectToInteraction(request, deps.options.loginUrl, validated, interaction, deps, cookies, pushed, idp);
  }
  const current = session!;

  if (interaction?.consent && interaction.consent.sid === current.sid && !interaction.consent.allow) {
    await deps.interactions.remove(interaction.id);
    return fail("access_denied", "the user denied the request");
  }
  const decision = interaction?.consent?.sid === current.sid ? interaction.consent : undefined;
  let granted = validated;
  if (decision?.allow) {
    if (decision.remember && !consentEveryTime(validated)) await deps.consents.remember(current.sub, validated.client.clientId, validated.scopes);
  } else if (await needsConsent(validated, current, deps)) {
    if (validated.prompt.has("none")) return fail("consent_required", "the user must consent");
    return redirectToInteraction(request, deps.options.consentUrl, validated, interaction, deps, cookies, pushed);
  } else if (validated.client.untrusted && validated.scopes.includes("offline_access")) {
    // OIDC Core §11: offline access for an unvetted client only when the user saw a consent screen for it.
    granted = { ...validated, scopes: validated.scopes.filter((s) => s !== "offline_access") };
  }

  if (interaction) await deps.interactions.remove(interaction.id);
  // RFC 9126 §4 / FAPI 2.0 SP §5.3.2.2: one authorization per pushed request; of racing completions one wins.
  if (!(await complete())) return authorizeError(new ProtocolError("invalid_request_uri", "the request_uri was already used"), validated.reply, issuer, cookies);
  const code = await storeCode(granted, current, deps);
  cookies.push(...(await deps.sessions.addClient(current, validated.client.clientId)));
  const fields: Record<string, string> = { code };
  if (validated.scopes.includes("openid")) {
    // OIDC Session Management §3: lets the client's check-session iframe notice a change of session.
    fields.session_state = computeSessionState(validated.client.clientId, new URL(validated.reply.redirectUri).origin, current.sid);
  }
  return authorizeResponse(validated.reply, fields, issuer, cookies);
}

/**
 * OIDC Core §3.1.2.3: no session, prompt=login, max_age exceeded, or a hint for another user. What counts is
 * the session's auth_time against the time of the authorization request (when its interaction was created):
 * prompt=login and max_age=0 need an authentication at or after the request, max_age one within max_age
 * of it. An older authentication (an earlier session, a sign-in in another tab) never satisfies them.
 * A session whose authentication context is weaker than the request's `acr_values` or the second-factor
 * policy asks goes back to the login page too, which steps it up (a second factor, not a new password).
 */
function needsLogin(request: ValidatedAuthorizeRequest, session: AuthenticationSession | undefined, interaction: Interaction | undefined, deps: ProviderDeps): boolean {
  if (!session) return true;
  if (request.hintSubject !== undefined && request.hintSubject !== session.sub) return true;
  const requestedAt = interaction ? Math.floor(interaction.createdAt / 1000) : nowSeconds(deps);
  const authenticatedSinceRequest = interaction !== undefined && session.authTime >= requestedAt;
  if (request.prompt.has("login") && !authenticatedSinceRequest) return true;
  if (request.maxAge !== undefined) {
    if (request.maxAge === 0 ? !authenticatedSinceRequest : requestedAt - session.authTime > request.maxAge) return true;
  }
  return !meetsAcr(session.amr, requiredAcrFor(request.acrValues, request.client, deps.options));
}

/**
 * OIDC Prompt Create 1.0 §4: prompt=create shows the account creation page first, even to a signed-in user;
 * the request goes on once a user has signed in since it was made (after creating the account, or by
 * choosing to sign in to an existing one from that page).
 */
function needsRegistration(request: ValidatedAuthorizeRequest, session: AuthenticationSession | undefined, interaction: Interaction | undefined): boolean {
  if (!request.prompt.has("create")) return false;
  if (!session || !interaction) return true;
  return session.authTime < Math.floor(interaction.createdAt / 1000);
}

/**
 * Asked about every time, consent never remembered: a metadata-document client (its document may change
 * its redirect URIs at any moment, and a public one with loopback redirects cannot prove which local
 * process asks, RFC 8252 §8.6, so a remembered consent would hand codes out silently), and a registered
 * client whose policy says so (`Client.consentEveryTime`: public, or with a non-https redirect URI).
 */
function consentEveryTime(request: ValidatedAuthorizeRequest): boolean {
  return request.client.metadataDocumentHost !== undefined || request.client.consentEveryTime === true;
}

/**
 * prompt=consent always asks, and so does a client whose consent is never remembered; a client that
 * requires consent asks unless a remembered consent covers the scopes.
 */
async function needsConsent(request: ValidatedAuthorizeRequest, session: AuthenticationSession, deps: ProviderDeps): Promise<boolean> {
  if (request.prompt.has("consent") || consentEveryTime(request)) return true;
  if (!request.client.requireConsent) return false;
  if (request.client.consentEveryTime) return true;
  const remembered = await deps.consents.rememberedScopes(session.sub, request.client.clientId);
  return !request.scopes.every((s) => remembered.includes(s));
}

async function redirectToInteraction(http: Request, page: string, request: ValidatedAuthorizeRequest, interaction: Interaction | undefined, deps: ProviderDeps, cookies: string[], pushed?: PushedRequestRef, externalProvider?: ExternalProvider): Promise<Response> {
  let pending: Interaction;
  try {
    pending = interaction ?? (await deps.interactions.create(request.client.clientId, request.params, clientAddressOf(http), pushed));
    if (externalProvider) {
      const started = await deps.federation.start(externalProvider, pending.id, http, clientAddressOf(http));
      return redirect(started.url, [...cookies, started.cookie]);
    }
  } catch (error) {
    // The pending-request cap is full: temporarily_unavailable, to the client (OAuth 2.0 §4.1.2.1).
    if (error instanceof ProtocolError) return authorizeError(error, request.reply, deps.options.issuer, cookies);
    throw error;
  }
  const returnUrl = `${deps.options.basePath}${PATHS.authorizeCallback}?interaction=${encodeURIComponent(pending.id)}`;
  const target = /^https?:\/\//.test(page) ? new URL(page) : new URL(deps.options.issuer + page);
  target.searchParams.set("returnUrl", returnUrl);
  return redirect(target.toString(), cookies);
}

async function storeCode(request: ValidatedAuthorizeRequest, session: AuthenticationSession, deps: ProviderDeps): Promise<string> {
  const code = randomHandle(32);
  const now = nowSeconds(deps);
  const data: AuthorizationCodeData = {
    redirectUri: request.reply.redirectUri,
    scopes: request.scopes,
    nonce: request.nonce,
    codeChallenge: request.codeChallenge,
    codeChallengeMethod: request.codeChallengeMethod,
    sid: session.sid,
    authTime: session.authTime,
    amr: session.amr,
    idp: session.idp,
    sessionClaims: session.claims,
    dpopJkt: request.dpopJkt,
    ...(request.resources ? { resources: request.resources } : {}),
  };
  await deps.store.grants.put({
    key: sha256Base64url(code),
    kind: "authorization_code",
    clientId: request.client.clientId,
    subject: session.sub,
    sessionId: session.sid,
    grantId: randomHandle(16),
    data: JSON.stringify(data),
    createdAt: now,
    // The client's profile may shorten it (FAPI 2.0 SP §5.3.2.1-11: 60 s).
    expiresAt: now + Math.min(deps.options.authorizationCodeLifetime, request.client.authorizationCodeLifetime ?? Infinity),
  });
  return code;
}
