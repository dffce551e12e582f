/**
 * A small relying party (a server-side web app) that signs users in at Tessera with openid-client
 * (authorization code + PKCE, state, nonce, userinfo) and takes part in every kind of single sign-out:
 * RP-initiated logout, front-channel and back-channel logout, and the check-session iframe.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";
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
  /** Milliseconds between check-session polls (default 3000). */
  checkSessionInterval?: number;
  /** An API to call with the user's access token (refreshed when it expires); enables /call-api and /refresh. */
  apiUrl?: string;
}

/** A logout this app received, for display and for tests. */
export interface LogoutEvent {
  kind: "front-channel" | "back-channel" | "rp-initiated";
  sid?: string;
  /** The `iss` a front-channel request carried. */
  iss?: string;
  sub?: string;
  /** App sessions that ended because of it. */
  ended: number;
}

interface SignedInUser {
  claims: Record<string, unknown>;
  userinfo: Record<string, unknown>;
  idToken: string;
  accessToken: string;
  /** Unix milliseconds. */
  accessTokenExpires: number;
  refreshToken?: string;
  /** What the last API call or refresh said, shown on the home page. */
  lastResult?: string;
  sid?: string;
  sessionState?: string;
}

interface AppSession {
  pending?: { verifier: string; state: string; nonce: string };
  logoutState?: string;
  user?: SignedInUser;
}

const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Starts the demo app; discovery happens on first use, so the identity server may start later. */
export async function startWebClient(options: WebClientOptions): Promise<{ url: string; server: Server; events: LogoutEvent[]; close(): Promise<void> }> {
  const sessions = new Map<string, AppSession>();
  const events: LogoutEvent[] = [];
  const seenLogoutJtis = new Set<string>();
  let config: oidc.Configuration | undefined;
  let jwks: JWTVerifyGetKey | undefined;
  const configuration = async () => {
    const issuer = new URL(options.issuer);
    config ??= await oidc.discovery(issuer, options.clientId, undefined, oidc.ClientSecretBasic(options.clientSecret), issuer.protocol === "http:" ? { execute: [oidc.allowInsecureRequests] } : {});
    return config;
  };
  let baseUrl = options.baseUrl ?? "";
  const issuerOrigin = () => new URL(options.issuer).origin;

  /** Ends every app session of an identity-provider session (sid) or user (sub). */
  const endSessions = (match: { sid?: string; sub?: string }) => {
    let ended = 0;
    for (const session of sessions.values()) {
      const user = session.user;
      if (!user) continue;
      if ((match.sid && user.sid === match.sid) || (!match.sid && match.sub && user.claims.sub === match.sub)) {
        session.user = undefined;
        ended++;
      }
    }
    return ended;
  };

  const page = (res: ServerResponse, body: string, status = 200, extra: { nonce?: string; frameAncestors?: string } = {}) => {
    const csp = [
      "default-src 'none'",
      "style-src 'unsafe-inline'",
      extra.nonce ? `script-src 'nonce-${extra.nonce}'` : "script-src 'none'",
      `frame-src ${issuerOrigin()}`,
      `frame-ancestors ${extra.frameAncestors ?? "'none'"}`,
    ].join("; ");
    res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": csp });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo web app</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}pre{background:#f2f3f5;padding:1rem;border-radius:8px;overflow:auto}</style></head><body><h1>Demo web app</h1>${body}</body></html>`);
  };

  const home = async (res: ServerResponse, session: AppSession) => {
    const user = session.user;
    if (!user) return page(res, `<p>You are not signed in.</p><p><a id="login" href="/login">Sign in with Tessera</a></p>`);
    const metadata = (await configuration()).serverMetadata();
    const nonce = randomBytes(16).toString("base64url");
    // OIDC Session Management: poll the provider's iframe with "client_id session_state".
    const checkSession =
      metadata.check_session_iframe && user.sessionState
        ? `<iframe id="op" src="${escape(metadata.check_session_iframe)}" title="session check" hidden></iframe>
<script nonce="${nonce}">
const op = document.getElementById("op"), status = document.getElementById("session-status");
const message = ${JSON.stringify(`${options.clientId} ${user.sessionState}`)}, target = ${JSON.stringify(issuerOrigin())};
window.addEventListener("message", (e) => { if (e.origin === target && e.source === op.contentWindow) status.textContent = e.data; });
const check = () => op.contentWindow.postMessage(message, target);
op.addEventListener("load", () => { check(); setInterval(check, ${options.checkSessionInterval ?? 3000}); });
</script>`
        : "";
    page(
      res,
      `<p id="user">Signed in as <strong>${escape(String(user.userinfo.name ?? user.claims.sub))}</strong></p>
<p>Session at the identity provider: <span id="session-status">checking</span></p>
<h2>ID token claims</h2><pre id="claims">${escape(JSON.stringify(user.claims, null, 2))}</pre>
<h2>Userinfo</h2><pre id="userinfo">${escape(JSON.stringify(user.userinfo, null, 2))}</pre>
${apiSection(user)}
<p><a id="logout" href="/logout">Sign out</a></p>${checkSession}`,
      200,
      { nonce },
    );
  };

  const apiSection = (user: SignedInUser) =>
    options.apiUrl
      ? `<h2>API</h2><form method="post" action="/call-api"><button id="call-api" type="submit">Call the API</button></form>
<form method="post" action="/refresh"><button id="refresh" type="submit" ${user.refreshToken ? "" : "disabled"}>Refresh the access token</button></form>
<pre id="result">${escape(user.lastResult ?? "")}</pre>`
      : "";

  /** Refreshes the user's tokens; with coordinate_lifetime_with_user_session this also extends the provider session. */
  const refresh = async (user: SignedInUser) => {
    if (!user.refreshToken) throw new Error("no refresh token (ask for offline_access)");
    const tokens = await oidc.refreshTokenGrant(await configuration(), user.refreshToken);
    user.accessToken = tokens.access_token;
    user.accessTokenExpires = Date.now() + (tokens.expires_in ?? 60) * 1000;
    user.refreshToken = tokens.refresh_token ?? user.refreshToken;
  };

  const callApi = async (user: SignedInUser): Promise<string> => {
    if (Date.now() > user.accessTokenExpires - 5000) await refresh(user);
    const response = await fetch(options.apiUrl!, { headers: { authorization: `Bearer ${user.accessToken}` } });
    return `${response.status} ${await response.text()}`;
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      let body = "";
      req.on("data", (chunk: Buffer) => {
        body += chunk;
        if (body.length > 65536) req.destroy(new Error("body too large"));
      });
      req.on("end", () => resolve(body));
      req.on("error", reject);
    });

  /** OIDC Back-Channel Logout §2.6: verify the logout token before acting on it. */
  const backChannel = async (req: IncomingMessage, res: ServerResponse) => {
    const token = new URLSearchParams(await readBody(req)).get("logout_token");
    const fail = (why: string) => {
      res.writeHead(400, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ error: "invalid_request", error_description: why }));
    };
    if (!token) return fail("logout_token is missing");
    try {
      const metadata = (await configuration()).serverMetadata();
      jwks ??= createRemoteJWKSet(new URL(metadata.jwks_uri!));
      const { payload } = await jwtVerify(token, jwks, { issuer: metadata.issuer, audience: options.clientId, typ: "logout+jwt", maxTokenAge: "2 minutes", requiredClaims: ["iat", "jti", "events"] });
      const eventsClaim = payload.events as Record<string, unknown> | undefined;
      if (!eventsClaim || typeof eventsClaim[BACKCHANNEL_EVENT] !== "object") return fail("not a back-channel logout event");
      if ("nonce" in payload) return fail("a logout token has no nonce");
      if (!payload.sid && !payload.sub) return fail("neither sid nor sub");
      if (seenLogoutJtis.has(String(payload.jti))) return fail("replayed logout token");
      seenLogoutJtis.add(String(payload.jti));
      const sid = typeof payload.sid === "string" ? payload.sid : undefined;
      events.push({ kind: "back-channel", sid, sub: payload.sub, ended: endSessions({ sid, sub: payload.sub }) });
      res.writeHead(200, { "cache-control": "no-store" });
      res.end();
    } catch (error) {
      fail((error as Error).message);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", baseUrl);
    if (url.pathname === "/bff/backchannel" && req.method === "POST") return backChannel(req, res);
    if (url.pathname === "/signout-oidc") {
      // Front-channel logout: loaded in an iframe of the provider's signed-out page.
      const iss = url.searchParams.get("iss");
      const sid = url.searchParams.get("sid") ?? undefined;
      if (iss !== null && iss !== (await configuration()).serverMetadata().issuer) return page(res, "<p>Unknown issuer</p>", 400, { frameAncestors: issuerOrigin() });
      events.push({ kind: "front-channel", sid, iss: iss ?? undefined, ended: sid ? endSessions({ sid }) : 0 });
      return page(res, "<p>Signed out of the demo app.</p>", 200, { frameAncestors: issuerOrigin() });
    }

    const cookieSid = /(?:^|;\s*)app_session=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "")?.[1];
    let session = cookieSid ? sessions.get(cookieSid) : undefined;
    if (!session) {
      const id = randomBytes(16).toString("base64url");
      session = {};
      sessions.set(id, session);
      res.setHeader("set-cookie", `app_session=${id}; Path=/; HttpOnly; SameSite=Lax`);
    }

    if (url.pathname === "/") return home(res, session);
    if (url.pathname === "/login") {
      const pending = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
      session.pending = pending;
      const target = oidc.buildAuthorizationUrl(await configuration(), {
        redirect_uri: `${baseUrl}/signin-oidc`,
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
      if (!pending) return page(res, `<p>No sign-in in progress. <a href="/">Start again</a></p>`, 400);
      session.pending = undefined;
      try {
        const tokens = await oidc.authorizationCodeGrant(await configuration(), url, { pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true });
        const claims = tokens.claims()!;
        const userinfo = await oidc.fetchUserInfo(await configuration(), tokens.access_token, claims.sub);
        session.user = {
          claims: { ...claims },
          userinfo: { ...userinfo },
          idToken: tokens.id_token!,
          accessToken: tokens.access_token,
          accessTokenExpires: Date.now() + (tokens.expires_in ?? 60) * 1000,
          refreshToken: tokens.refresh_token,
          sid: typeof claims.sid === "string" ? claims.sid : undefined,
          sessionState: url.searchParams.get("session_state") ?? undefined,
        };
      } catch (error) {
        const { message, error: code, error_description: description } = error as Error & { error?: string; error_description?: string };
        return page(res, `<p>Sign-in failed: <code>${escape(code ?? message)}</code> ${escape(description ?? "")}</p><p><a href="/">Start again</a></p>`, 400);
      }
      res.writeHead(302, { location: "/" });
      return res.end();
    }
    if ((url.pathname === "/call-api" || url.pathname === "/refresh") && req.method === "POST" && options.apiUrl) {
      const user = session.user;
      if (!user) {
        res.writeHead(302, { location: "/" });
        return res.end();
      }
      try {
        if (url.pathname === "/refresh") {
          await refresh(user);
          user.lastResult = "refreshed: the provider session was extended";
        } else {
          user.lastResult = await callApi(user);
        }
      } catch (error) {
        const { message, error: code } = error as Error & { error?: string };
        // The refresh token died with the user's session (revoked or expired): sign out locally.
        if (code === "invalid_grant") session.user = undefined;
        else user.lastResult = `failed: ${code ?? message}`;
      }
      res.writeHead(303, { location: "/" });
      return res.end();
    }
    if (url.pathname === "/logout") {
      // RP-initiated logout: end the local session, then ask the provider to end its session too.
      const user = session.user;
      session.user = undefined;
      if (!user) {
        res.writeHead(302, { location: "/" });
        return res.end();
      }
      session.logoutState = oidc.randomState();
      events.push({ kind: "rp-initiated", sid: user.sid, sub: String(user.claims.sub), ended: 1 });
      const target = oidc.buildEndSessionUrl(await configuration(), { id_token_hint: user.idToken, post_logout_redirect_uri: `${baseUrl}/signout-callback-oidc`, state: session.logoutState });
      res.writeHead(302, { location: target.href });
      return res.end();
    }
    if (url.pathname === "/signout-callback-oidc") {
      const state = url.searchParams.get("state");
      const expected = session.logoutState;
      session.logoutState = undefined;
      if (!expected || state !== expected) return page(res, `<p>Unexpected sign-out callback.</p>`, 400);
      return page(res, `<p id="signed-out">You are signed out. <a href="/">Home</a></p>`);
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
    events,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
