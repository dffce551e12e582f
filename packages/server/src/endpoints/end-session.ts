import { ProtocolError } from "@tessera/protocol";
import type { ProviderDeps } from "../deps.ts";
import { Params, readForm } from "../http/params.ts";
import { clientAddressOf } from "../http/request-context.ts";
import { htmlPage, redirect } from "../http/responses.ts";
import { postLogoutRedirect } from "../logout/logout-service.ts";
import { errorPage } from "../ui/html.ts";
import { validateEndSessionRequest } from "../validation/end-session-request.ts";

/** The signed-out or logout-prompt page URL for a logout id. */
export function logoutPageUrl(deps: ProviderDeps, page: string, logoutId: string): string {
  const target = /^https?:\/\//.test(page) ? new URL(page) : new URL(deps.options.issuer + page);
  target.searchParams.set("logoutId", logoutId);
  return target.toString();
}

/**
 * GET/POST {issuer}/connect/endsession (OIDC RP-Initiated Logout 1.0). With a valid id_token_hint for the
 * current user the session ends at once; otherwise the user confirms on the logout page first. Without a
 * session there is nothing to log out and nothing is stored: the browser goes on to the validated
 * post_logout_redirect_uri, else to the signed-out page. Never refused for the pending-request cap (the
 * logout service then carries the request sealed instead of stored).
 */
export function endSessionEndpoint(deps: ProviderDeps) {
  return async (request: Request): Promise<Response> => {
    let params: Params;
    try {
      params = request.method === "POST" ? await readForm(request, deps.options, false) : Params.parse(new URL(request.url).search, deps.options, false);
      const validated = await validateEndSessionRequest(params, deps, { clientAddress: clientAddressOf(request) });
      const session = (await deps.sessions.read(request))?.session;
      if (!session) {
        if (validated.postLogoutRedirectUri) return redirect(postLogoutRedirect(validated.postLogoutRedirectUri, validated.state));
        const page = /^https?:\/\//.test(deps.options.signedOutUrl) ? deps.options.signedOutUrl : deps.options.issuer + deps.options.signedOutUrl;
        return redirect(page);
      }
      const logoutId = await deps.logout.create({
        clientId: validated.client?.clientId,
        postLogoutRedirectUri: validated.postLogoutRedirectUri,
        state: validated.state,
        uiLocales: validated.uiLocales,
        redirectRejected: validated.redirectRejected,
      }, clientAddressOf(request));
      // Only an ID token of this very session (same sub and sid) proves the request came from one of its
      // clients; a token of an older session of the same user asks first (RP-Initiated Logout 1.0 §2).
      const hint = validated.hint;
      const confirmed = hint !== undefined && hint.sub === session.sub && hint.sid !== undefined && hint.sid === session.sid;
      if (!confirmed) return redirect(logoutPageUrl(deps, deps.options.logoutUrl, logoutId));
      const ended = await deps.logout.endSession(request, logoutId);
      // A session from an external provider may sign out there first (contract §15).
      return redirect(await deps.federation.signOutRedirect(ended.sid, logoutPageUrl(deps, deps.options.signedOutUrl, ended.logoutId)), ended.cookies);
    } catch (error) {
      // 413 for an oversized request.
      if (error instanceof ProtocolError) return htmlPage(errorPage(error.code, error.description), error.status === 413 ? 413 : 400);
      throw error;
    }
  };
}
