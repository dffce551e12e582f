import { randomHandle } from "@tessera/protocol";
import type { ProviderDeps } from "../deps.ts";
import { SESSION_ID_COOKIE } from "../session/session.ts";
import { redirectOrigins } from "../http/cors.ts";
import { STORE_LIMITS } from "../stores/values.ts";

/**
 * The iframe's script (OIDC Session Management 1.0 §3.3): for "client_id session_state" messages it
 * recomputes the state from the sender's origin and the session-id cookie, and answers "unchanged",
 * "changed" or "error" to that origin only.
 */
const SCRIPT = `
const COOKIE = ${JSON.stringify(SESSION_ID_COOKIE)};
function browserState() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === COOKIE) return value.join("=");
  }
  return "";
}
async function hash(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
}
window.addEventListener("message", async (event) => {
  if (!event.source || event.origin === "null") return;
  const reply = (answer) => event.source.postMessage(answer, event.origin);
  if (typeof event.data !== "string" || event.data.length > 2048) return reply("error");
  const parts = event.data.split(" ");
  const dot = parts.length === 2 ? parts[1].lastIndexOf(".") : -1;
  if (dot < 1) return reply("error");
  const clientId = parts[0], sessionState = parts[1], salt = sessionState.slice(dot + 1);
  try {
    const expected = (await hash(clientId + " " + event.origin + " " + browserState() + " " + salt)) + "." + salt;
    reply(expected === sessionState ? "unchanged" : "changed");
  } catch {
    reply("error");
  }
});
`;

function refererOrigin(request: Request): string | undefined {
  const referer = request.headers.get("referer");
  if (!referer || referer.length > 4096) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

/**
 * GET {issuer}/connect/checksession: the check-session iframe. Its `frame-ancestors` lists the configured
 * clients' redirect origins, plus for clients created at run time: those of the client named by
 * `?client_id=` (at most 20), and the origin of the framing page (its `Referer`) when it is a stored
 * client's redirect origin (from the registry's cached set). The browser enforces the header against the
 * real ancestors, so the hints only choose which allowed origins are listed; the header stays small
 * however many clients are registered, and no stored client can break session management for the others.
 */
export function checkSessionEndpoint(deps: ProviderDeps, configuredOrigins: readonly string[], storedOrigins: () => Promise<ReadonlySet<string>>) {
  return async (request: Request): Promise<Response> => {
    const origins = new Set(configuredOrigins);
    const clientId = new URL(request.url).searchParams.get("client_id");
    if (clientId && clientId.length <= STORE_LIMITS.clientId) {
      const client = await deps.clients.findClientById(clientId).catch(() => undefined);
      if (client) for (const origin of redirectOrigins(client.redirectUris)) origins.add(origin);
    }
    const referer = refererOrigin(request);
    if (referer && !origins.has(referer) && (await storedOrigins().catch(() => new Set<string>())).has(referer)) origins.add(referer);
    const ancestors = origins.size ? [...origins].join(" ") : "'none'";
    const nonce = randomHandle(16);
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Check session</title></head><body><script nonce="${nonce}">${SCRIPT}</script></body></html>`;
    return new Response(html, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; frame-ancestors ${ancestors}; base-uri 'none'; form-action 'none'`,
      },
    });
  };
}
