/**
 * The user's web app: signs the user in (code flow with PKCE, openid-client) and calls the gateway with the
 * user's access token; the page shows what the downstream API answered through the gateway.
 */
import { randomBytes } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as oidc from "openid-client";

export interface WebOptions {
  issuer: string;
  gatewayUrl: string;
  port: number;
  /** The app's public base URL (default: the address it listens on). */
  baseUrl?: string;
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export async function startWeb(options: WebOptions): Promise<{ url: string; close(): Promise<void> }> {
  const tokens = new Map<string, string>();
  const pending = new Map<string, { verifier: string; state: string; nonce: string }>();
  let config: oidc.Configuration | undefined;
  const configuration = async () => {
    const issuer = new URL(options.issuer);
    config ??= await oidc.discovery(issuer, "gateway-web", undefined, oidc.ClientSecretBasic("gateway-web-secret"), issuer.protocol === "http:" ? { execute: [oidc.allowInsecureRequests] } : {});
    return config;
  };
  let baseUrl = options.baseUrl ?? "";
  const page = (res: ServerResponse, body: string, status = 200) => {
    res.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gateway sample</title></head><body style="font-family:system-ui;max-width:40rem;margin:3rem auto"><h1>Gateway sample</h1>${body}</body></html>`);
  };
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", baseUrl);
      let sid = /(?:^|;\s*)gateway_app=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "")?.[1];
      if (!sid) {
        sid = randomBytes(16).toString("base64url");
        res.setHeader("set-cookie", `gateway_app=${sid}; Path=/; HttpOnly; SameSite=Lax`);
      }
      if (url.pathname === "/login") {
        const login = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
        pending.set(sid, login);
        const target = oidc.buildAuthorizationUrl(await configuration(), {
          redirect_uri: `${baseUrl}/signin-oidc`,
          scope: "openid profile gateway.access orders.read",
          code_challenge: await oidc.calculatePKCECodeChallenge(login.verifier),
          code_challenge_method: "S256",
          state: login.state,
          nonce: login.nonce,
        });
        res.writeHead(302, { location: target.href });
        return res.end();
      }
      if (url.pathname === "/signin-oidc") {
        const login = pending.get(sid);
        pending.delete(sid);
        if (!login) return page(res, "<p>No sign-in in progress.</p>", 400);
        const result = await oidc.authorizationCodeGrant(await configuration(), url, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
        tokens.set(sid, result.access_token);
        res.writeHead(302, { location: "/" });
        return res.end();
      }
      if (url.pathname === "/") {
        const token = tokens.get(sid);
        if (!token) return page(res, `<p><a id="login" href="/login">Sign in</a> (alice / alice), then the app calls the orders API through the gateway.</p>`);
        const response = await fetch(`${options.gatewayUrl}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
        return page(res, `<p>Signed in. The gateway answered (HTTP ${response.status}):</p><pre id="result">${escape(await response.text())}</pre>`);
      }
      page(res, "<p>Not found</p>", 404);
    } catch (error) {
      page(res, `<p>Error: ${escape(String((error as Error).message))}</p>`, 502);
    }
  });
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));
  baseUrl ||= `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: baseUrl, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
