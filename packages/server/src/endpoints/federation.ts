import { ProtocolError } from "@tessera/protocol";
import { PATHS, type ProviderDeps } from "../deps.ts";
import { FederationError, type FederationService } from "../federation/federation-service.ts";
import { Params, readForm } from "../http/params.ts";
import { errorJson, htmlPage, noStoreJson, redirect, withCookies } from "../http/responses.ts";
import { accountClaims } from "../stores/accounts.ts";
import { escapeHtml, simplePage } from "../ui/html.ts";

type Handler = (request: Request, id: string) => Promise<Response>;

function pageUrl(deps: ProviderDeps, page: string): URL {
  return /^https?:\/\//.test(page) ? new URL(page) : new URL(deps.options.issuer + page);
}

/** The error page of a failed external sign-in, with a way back to the login page when the request is still pending. */
function federationErrorPage(error: FederationError): Response {
  const back = error.returnUrl ? `<p><a id="back" href="${escapeHtml(error.returnUrl)}">Back to sign-in</a></p>` : "<p>Return to the application you came from and try again.</p>";
  return htmlPage(simplePage("Sign-in error", `<h1>Sign-in did not complete</h1><p><code id="error">${escapeHtml(error.code)}</code></p><p id="error_description">${escapeHtml(error.description)}</p>${back}`), 400);
}

/**
 * A page that moves on by itself, not a redirect: the navigation to the client then starts on this site, so
 * the upstream login form's CSP form-action (Chromium applies it to the whole redirect chain) never covers
 * it, and after a cross-site form_post the session cookie is sent as for any same-site link.
 */
function continuePage(next: string, cookies: string[]): Response {
  const html = simplePage("Signing you in", `<meta http-equiv="refresh" content="0;url=${escapeHtml(next)}"><h1>Signing you in…</h1><p><a id="continue" href="${escapeHtml(next)}">Continue</a></p>`);
  return withCookies(htmlPage(html), cookies);
}

async function paramsOf(request: Request, deps: ProviderDeps): Promise<URLSearchParams> {
  const params = request.method === "POST" ? await readForm(request, deps.options, false) : Params.parse(new URL(request.url).search, deps.options, false);
  return new URLSearchParams([...params]);
}

/**
 * GET/POST {issuer}/federation/{id}/callback: the upstream's authorization response (query or form_post).
 * Signs the user in with `idp` = the provider id and resumes the pending authorization request.
 */
export function federationCallbackEndpoint(deps: ProviderDeps, federation: FederationService): Handler {
  return async (request, id) => {
    const provider = await federation.registry.get(id);
    if (!provider) return noStoreJson({ error: "not_found" }, 404);
    const loginPage = (interaction: string) => {
      const url = pageUrl(deps, deps.options.loginUrl);
      url.searchParams.set("returnUrl", `${deps.options.basePath}${PATHS.authorizeCallback}?interaction=${encodeURIComponent(interaction)}`);
      return url.toString();
    };
    try {
      const params = await paramsOf(request, deps);
      const current = (await deps.sessions.read(request))?.session;
      const result = await federation.callback(provider, params, loginPage, request, current && { sub: current.sub, sid: current.sid });
      if (result.link?.purpose === "link") return continuePage(new URL(deps.options.issuer).origin + result.link.returnTo, []);
      const claims = accountClaims(result.account);
      const name = typeof claims.name === "string" ? claims.name : undefined;
      const signedIn = await deps.sessions.signIn(request, { sub: result.account.sub, ...(name ? { name } : {}), amr: result.amr, idp: provider.id, claims }, false);
      deps.emit({ type: "session.started", sub: signedIn.session.sub, sid: signedIn.session.sid, idp: signedIn.session.idp, amr: signedIn.session.amr });
      await federation.rememberSession(signedIn.session.sid, signedIn.session.sub, result.federated);
      const resume = result.link ? new URL(deps.options.issuer).origin + result.link.returnTo : `${deps.options.issuer}${PATHS.authorizeCallback}?interaction=${encodeURIComponent(result.interaction ?? "")}`;
      return continuePage(resume, signedIn.cookies);
    } catch (error) {
      if (error instanceof FederationError) return federationErrorPage(error);
      if (error instanceof ProtocolError) return federationErrorPage(new FederationError(error.code, error.description ?? "The sign-in failed."));
      throw error;
    }
  };
}

/** GET {issuer}/federation/{id}/signed-out: back from the upstream's sign-out, on to Tessera's signed-out page. */
export function federationSignedOutEndpoint(deps: ProviderDeps, federation: FederationService): Handler {
  return async (request, id) => {
    const provider = await federation.registry.get(id);
    if (!provider) return noStoreJson({ error: "not_found" }, 404);
    const next = await federation.signedOut(provider, new URL(request.url).searchParams.get("state"));
    return redirect(next ?? pageUrl(deps, deps.options.signedOutUrl).toString());
  };
}

/** POST {issuer}/federation/{id}/backchannel: the upstream's logout token (OIDC Back-Channel Logout 1.0 §2.5, §2.8). */
export function federationBackchannelEndpoint(deps: ProviderDeps, federation: FederationService): Handler {
  return async (request, id) => {
    const provider = await federation.registry.get(id);
    if (!provider) return noStoreJson({ error: "not_found" }, 404);
    try {
      const form = await readForm(request, deps.options, false);
      const token = form.get("logout_token");
      if (!token) throw new ProtocolError("invalid_request", "logout_token is required");
      await federation.backChannelLogout(provider, token);
      return new Response(null, { status: 200, headers: { "cache-control": "no-store" } });
    } catch (error) {
      if (error instanceof ProtocolError) return errorJson(error.status >= 500 ? error : new ProtocolError("invalid_request", error.description));
      throw error;
    }
  };
}
