import { randomHandle, type ProtocolError } from "@tessera/protocol";
import { htmlPage, redirect, withCookies } from "../http/responses.ts";
import { errorPage, formPostPage } from "../ui/html.ts";
import type { AuthorizeReply } from "../validation/authorize-request.ts";

/** Sends authorization response parameters to the client by the requested response mode. */
export function authorizeResponse(reply: AuthorizeReply, fields: Record<string, string>, issuer: string, cookies: string[] = []): Response {
  const all: Record<string, string> = { ...fields };
  if (reply.state !== undefined) all.state = reply.state;
  all.iss = issuer; // RFC 9207
  if (reply.responseMode === "form_post") {
    const nonce = randomHandle(16);
    return withCookies(htmlPage(formPostPage(reply.redirectUri, all, nonce), 200, nonce), cookies);
  }
  const url = new URL(reply.redirectUri);
  const encoded = new URLSearchParams(all);
  if (reply.responseMode === "fragment") {
    url.hash = encoded.toString();
  } else {
    for (const [name, value] of encoded) url.searchParams.append(name, value);
  }
  return redirect(url.toString(), cookies);
}

/** OIDC Core §3.1.2.6: an error to the client when it can go there safely, else an error page. */
export function authorizeError(error: ProtocolError, reply: AuthorizeReply | undefined, issuer: string, cookies: string[] = []): Response {
  if (reply && error.redirectable && !reply.errorsOnPage) {
    const fields: Record<string, string> = { error: error.code };
    if (error.description) fields.error_description = error.description;
    return authorizeResponse(reply, fields, issuer, cookies);
  }
  return withCookies(htmlPage(errorPage(error.code, error.description), error.status >= 500 ? error.status : 400), cookies);
}
