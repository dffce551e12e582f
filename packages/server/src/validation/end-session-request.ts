import { ProtocolError } from "@tessera/protocol";
import type { Client, ClientLookup } from "../clients.ts";
import type { ProviderDeps } from "../deps.ts";
import type { Params } from "../http/params.ts";
import { verifyIdTokenHint, type IdTokenHint } from "./id-token-hint.ts";

/** An end-session request that passed OIDC RP-Initiated Logout 1.0 §2-§3. */
export interface ValidatedEndSession {
  client?: Client;
  hint?: IdTokenHint;
  /** Registered exactly for the client; otherwise undefined and `redirectRejected` tells why. */
  postLogoutRedirectUri?: string;
  redirectRejected: boolean;
  state?: string;
  uiLocales?: string;
}

/** Validates; a bad hint or client is an error (shown on a page, never redirected). */
export async function validateEndSessionRequest(params: Params, deps: ProviderDeps, lookup?: ClientLookup): Promise<ValidatedEndSession> {
  const page = (description: string) => new ProtocolError("invalid_request", description, { redirectable: false });
  let hint: IdTokenHint | undefined;
  const hintParam = params.get("id_token_hint");
  if (hintParam !== undefined) {
    hint = await verifyIdTokenHint(hintParam, deps);
    if (!hint) throw page("id_token_hint is invalid");
  }
  const clientId = params.get("client_id");
  if (clientId !== undefined && hint && hint.clientId !== clientId) throw page("client_id does not match the id_token_hint");
  const id = clientId ?? hint?.clientId;
  const client = id !== undefined ? await deps.clients.findClientById(id, lookup) : undefined;
  if (id !== undefined && !client) throw page("the client is unknown");

  const requested = params.get("post_logout_redirect_uri");
  // Exact match against the registered list, else no redirect at all (RP-Initiated Logout §3).
  const listed = requested !== undefined && client?.postLogoutRedirectUris.includes(requested) === true;
  // A metadata-document client's URIs are whatever anyone published: only its own valid ID token (proof that
  // a user signed in to it here) lets the request send the browser there (RFC 9700 §4.11.2).
  const unproven = client?.metadataDocumentHost !== undefined && hint === undefined;
  const accepted = listed && !unproven ? requested : undefined;
  if (requested !== undefined && !accepted) {
    deps.logger.warn({ clientId: id, postLogoutRedirectUri: requested }, listed ? "post_logout_redirect_uri of a metadata-document client without id_token_hint; not following it" : "post_logout_redirect_uri not registered; not following it");
  }
  return {
    client,
    hint,
    postLogoutRedirectUri: accepted,
    redirectRejected: requested !== undefined && !accepted,
    state: accepted ? params.get("state") : undefined,
    uiLocales: params.get("ui_locales"),
  };
}
