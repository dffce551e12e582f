/**
 * A small relying party (a server-side web app) that signs users in at Tessera with openid-client:
 * authorization code flow with PKCE, state and nonce, then userinfo.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as oidc from "openid-client";

export interface WebClientOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Port to listen on (0 for any). */
  port: number;
  /** Public base URL of this app; default http://127.0.0.1:PORT. */
  baseUrl?: string;
  scope?: string;
}

interface PendingLogin {
  verifier: string;
  state: string;
  nonce: string;
}

interface AppSession {
  pending?: PendingLogin;
  user?: { claims: Record<string, unknown>; userinfo: Record<string, unknown> };
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: ServerResponse, body: string, status = 200): void {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo web app</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}pre{background:#f2f3f5;padding:1rem;border-radius:8px;overflow:auto}</style></head><body><h1>Demo web app</h1>${body}</body></html>`);
}

/** Starts the demo app; discovery happens on the first sign-in, so the identity server may start later. */
export async function startWebClient(options: WebClientOptions): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const sessions = new Map<string, AppSession>();
  let config: oidc.Configuration | undefined;
  const configuration = async () => {
    const issuer = new URL(options.issuer);
    config ??= await oidc.discovery(issuer, options.clientId, undefined, oidc.ClientSecretBasic(options.clientSecret), issuer.protocol === "http:" ? { execute: [oidc.allowInsecureRequests] } : {});
    return config;
  };
  let baseUrl = options.baseUrl ?? "";
  const redirectUri = () => `${baseUrl}/signin-oidc`;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", baseUrl);
    const sid = /(?:^|;\s*)app_session=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "")?.[1];
    let session = sid ? sessions.get(sid) : undefined;
    let sessionId = sid;
    if (!session || !sessionId) {
      sessionId = randomBytes(16).toString("base64url");
      session = {};
      sessions.set(sessionId, session);
      res.setHeader("set-cookie", `app_session=${sessionId}; Path=/; HttpOnly; SameSite=Lax`);
    }
    if (url.pathname === "/") {
      if (session.user) {
        return page(res, `<p id="user">Signed in as <strong>${escape(String(session.user.userinfo.name ?? session.user.claims.sub))}</strong></p><h2>ID token claims</h2><pre id="claims">${escape(JSON.stringify(session.user.claims, null, 2))}</pre><h2>Userinfo</h2><pre id="userinfo">${escape(JSON.stringify(session.user.userinfo, null, 2))}</pre><p><a href="/logout">Sign out of this app</a></p>`);
      }
      return page(res, `<p>You are not signed in.</p><p><a id="login" href="/login">Sign in with Tessera</a></p>`);
    }
    if (url.pathname === "/login") {
      const pending: PendingLogin = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
      session.pending = pending;
      const target = oidc.buildAuthorizationUrl(await configuration(), {
        redirect_uri: redirectUri(),
        scope: options.scope ?? "openid profile email",
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
        code_challenge_method: "S256",
        state: pending.state,
        nonce: pending.nonce,
      });
      res.writeHead(302, { location: target.href });
      return res.end();
    }
    if (url.pathname === "/signin-oidc") {
      const pending = session.pending;
      if (!pending) return page(res, "<p>No sign-in in progress. <a href=\"/\">Start again</a></p>", 400);
      session.pending = undefined;
      try {
        const tokens = await oidc.authorizationCodeGrant(await configuration(), url, { pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true });
        const claims = tokens.claims()!;
        const userinfo = await oidc.fetchUserInfo(await configuration(), tokens.access_token, claims.sub);
        session.user = { claims: { ...claims }, userinfo: { ...userinfo } };
      } catch (error) {
        const { message, error: code, error_description: description } = error as Error & { error?: string; error_description?: string };
        return page(res, `<p>Sign-in failed: <code>${escape(code ?? message)}</code> ${escape(description ?? "")}</p><p><a href="/">Start again</a></p>`, 400);
      }
      res.writeHead(302, { location: "/" });
      return res.end();
    }
    if (url.pathname === "/logout") {
      session.user = undefined;
      res.writeHead(302, { location: "/" });
      return res.end();
    }
    page(res, "<p>Not found</p>", 404);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) page(res, `<p>Error: ${escape((error as Error).message)}</p>`, 502);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl ||= `http://127.0.0.1:${port}`;
  return {
    url: baseUrl,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
