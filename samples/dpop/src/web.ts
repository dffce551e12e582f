/**
 * An interactive web app: signs the user in with openid-client using DPoP (dpop_jkt binds the code to the
 * key), keeps the user's tokens with @tessera/client's user token manager, and calls the DPoP API.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createUserTokenManager, type UserTokenManager, type UserTokens } from "@tessera/client";
import * as oidc from "openid-client";

export async function startDpopWeb(options: { issuer: string; apiUrl: string; port: number; baseUrl?: string }): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const keyPair = await oidc.randomDPoPKeyPair("ES256");
  const tokens = new Map<string, UserTokens>();
  const pending = new Map<string, { verifier: string; state: string }>();
  let config: oidc.Configuration | undefined;
  const configuration = async () => {
    const issuer = new URL(options.issuer);
    config ??= await oidc.discovery(issuer, "dpop-web", undefined, oidc.ClientSecretBasic("dpop-web-secret"), issuer.protocol === "http:" ? { execute: [oidc.allowInsecureRequests] } : {});
    return config;
  };
  // Created on first use, like the discovery, so the identity server may start after the app.
  let managerInstance: UserTokenManager | undefined;
  const manager = () =>
    (managerInstance ??= createUserTokenManager({ issuer: options.issuer, clientId: "dpop-web", clientSecret: "dpop-web-secret", dpop: keyPair, store: { get: (k) => tokens.get(k), set: (k, t) => void tokens.set(k, t), delete: (k) => void tokens.delete(k) } }));
  let baseUrl = options.baseUrl ?? "";
  const page = (res: import("node:http").ServerResponse, body: string, status = 200) => {
    res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'" });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>DPoP web app</title></head><body style="font-family:system-ui;max-width:40rem;margin:3rem auto"><h1>DPoP web app</h1>${body}</body></html>`);
  };
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", baseUrl);
      let sid = /(?:^|;\s*)dpop_app=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "")?.[1];
      if (!sid) {
        sid = randomBytes(16).toString("base64url");
        res.setHeader("set-cookie", `dpop_app=${sid}; Path=/; HttpOnly; SameSite=Lax`);
      }
      const DPoP = oidc.getDPoPHandle(await configuration(), keyPair);
      if (url.pathname === "/login") {
        const login = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState() };
        pending.set(sid, login);
        const target = oidc.buildAuthorizationUrl(await configuration(), {
          redirect_uri: `${baseUrl}/signin-oidc`,
          scope: "openid profile offline_access api1.read",
          code_challenge: await oidc.calculatePKCECodeChallenge(login.verifier),
          code_challenge_method: "S256",
          state: login.state,
          dpop_jkt: await DPoP.calculateThumbprint(),
        });
        res.writeHead(302, { location: target.href });
        return res.end();
      }
      if (url.pathname === "/signin-oidc") {
        const login = pending.get(sid);
        pending.delete(sid);
        if (!login) return page(res, "<p>No sign-in in progress.</p>", 400);
        const checks = { pkceCodeVerifier: login.verifier, expectedState: login.state };
        let result: oidc.TokenEndpointResponse;
        try {
          result = await oidc.authorizationCodeGrant(await configuration(), url, checks, undefined, { DPoP });
        } catch (error) {
          if ((error as { error?: string }).error !== "use_dpop_nonce") throw error;
          result = await oidc.authorizationCodeGrant(await configuration(), url, checks, undefined, { DPoP });
        }
        await manager().save(sid, result);
        res.writeHead(302, { location: "/" });
        return res.end();
      }
      if (url.pathname === "/") {
        if (!tokens.has(sid)) return page(res, `<p><a id="login" href="/login">Sign in</a></p>`);
        const response = await manager().fetchFor(sid)(`${options.apiUrl}/data`);
        return page(res, `<p>Signed in. The API said (HTTP ${response.status}):</p><pre id="api">${(await response.text()).replace(/</g, "&lt;")}</pre>`);
      }
      page(res, "<p>Not found</p>", 404);
    } catch (error) {
      page(res, `<p>Error: ${String((error as Error).message).replace(/</g, "&lt;")}</p>`, 502);
    }
  });
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));
  baseUrl ||= `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: baseUrl, server, close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
}
