/**
 * A native app's sign-in (RFC 8252): a public client, the authorization code flow with PKCE S256 (and PAR
 * when the server advertises it), the system browser, and a loopback redirect URI on an ephemeral port
 * (§7.3) that lives only as long as the sign-in.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as oidc from "openid-client";

/** Options of {@link signIn}. */
export interface SignInOptions {
  /** The identity server's issuer URL. */
  issuer: string;
  /** A public client (`token_endpoint_auth_method: none`) registered with `http://127.0.0.1/callback`. */
  clientId: string;
  scope?: string;
  /**
   * Shows the authorization URL to the user: opens the system browser, or (tests, headless machines)
   * only prints it. `redirectUri` is the loopback URI the browser will come back to.
   */
  present(authorizationUrl: URL, info: { redirectUri: string; pushed: boolean }): void | Promise<void>;
  /** How long to wait for the browser to come back (default 5 minutes). */
  timeoutMs?: number;
}

/** What a finished sign-in yields. */
export interface SignInResult {
  /** The validated ID token's claims. */
  claims: oidc.IDToken;
  /** The userinfo endpoint's answer for the access token. */
  userinfo: oidc.UserInfoResponse;
  tokens: oidc.TokenEndpointResponse;
  /** Whether the request went through the PAR endpoint (RFC 9126). */
  pushed: boolean;
}

const CALLBACK_PATH = "/callback";

/** Signs the user in through the system browser; resolves once the tokens and userinfo are in. */
export async function signIn(options: SignInOptions): Promise<SignInResult> {
  const issuer = new URL(options.issuer);
  // A local demo server speaks plain http; openid-client refuses that unless told.
  const config = await oidc.discovery(issuer, options.clientId, undefined, oidc.None(), issuer.protocol === "http:" ? { execute: [oidc.allowInsecureRequests] } : {});
  const callback = await loopbackListener();
  try {
    // RFC 8252 §7.3: the loopback IP literal, not `localhost`; the port is whatever the OS gave us.
    const redirectUri = `http://127.0.0.1:${callback.port}${CALLBACK_PATH}`;
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const parameters = {
      redirect_uri: redirectUri,
      scope: options.scope ?? "openid profile email",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
    };
    const pushed = config.serverMetadata().pushed_authorization_request_endpoint !== undefined;
    const url = pushed ? await oidc.buildAuthorizationUrlWithPAR(config, parameters) : oidc.buildAuthorizationUrl(config, parameters);
    await options.present(url, { redirectUri, pushed });

    const { request, response } = await callback.next(options.timeoutMs ?? 300_000);
    try {
      // openid-client checks `state` and, since the server advertises RFC 9207, that `iss` is present and
      // names this issuer (a mix-up defence), then redeems the code with the PKCE verifier.
      const current = new URL(request.url ?? "/", redirectUri);
      const tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true });
      const claims = tokens.claims()!;
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
      await finish(response, 200, "You are signed in", `Signed in as ${String(userinfo.name ?? claims.sub)}. You can close this tab and return to the terminal.`);
      return { claims, userinfo, tokens, pushed };
    } catch (error) {
      await finish(response, 400, "Sign-in failed", `${describe(error)} Return to the terminal and try again.`);
      throw error;
    }
  } finally {
    await callback.close();
  }
}

/** A short, human message for an error of the flow (an OAuth error code when there is one). */
export function describe(error: unknown): string {
  const e = error as { error?: string; error_description?: string; message?: string; cause?: { message?: string } };
  if (e.error) return `The identity server answered ${e.error}${e.error_description ? `: ${e.error_description}` : ""}.`;
  // openid-client wraps the precise reason (say, an unexpected "state") in `cause`.
  const reason = e.cause?.message ? `${e.message}: ${e.cause.message}` : (e.message ?? String(error));
  return reason.replace(/\.?$/, ".");
}

interface Callback {
  request: IncomingMessage;
  response: ServerResponse;
}

/** An HTTP listener on 127.0.0.1 and an ephemeral port that hands over the first GET of the callback path. */
async function loopbackListener(): Promise<{ port: number; next(timeoutMs: number): Promise<Callback>; close(): Promise<void> }> {
  let deliver: ((callback: Callback) => void) | undefined;
  const arrived = new Promise<Callback>((resolve) => (deliver = resolve));
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    if (request.method !== "GET" || path !== CALLBACK_PATH || !deliver) {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found");
      return;
    }
    // Only the first callback counts: a second one (a reload, another tab) finds nothing waiting.
    const take = deliver;
    deliver = undefined;
    take({ request, response });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    next: (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from the browser within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      });
      return Promise.race([arrived, timeout]).finally(() => clearTimeout(timer));
    },
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page the browser shows after the redirect; resolves once it is written. */
function finish(response: ServerResponse, status: number, title: string, message: string): Promise<void> {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5">
<h1 id="title">${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p></body></html>`;
  return new Promise((resolve) => {
    response.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      connection: "close",
    });
    response.end(html, () => resolve());
  });
}
