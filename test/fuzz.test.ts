import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestHost } from "@tessera/testing";
import fc from "fast-check";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

/** Cases per property: a thousand in `npm test` (thousands in all), twenty thousand with `npm run fuzz`. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

/** Hostile strings: empty, unicode, control characters, lone surrogates, percent-encodings, very long. */
const hostile = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.constantFrom("", " ", "%", "%ZZ", "%E0%A4%A", "\u0000", "\uD800", "a".repeat(5000), "openid".repeat(800), "<script>", "' OR 1=1 --", "../../etc/passwd", "https://evil.test", "http://127.0.0.1:1", "null", "[]", "{}"),
);
const name = fc.constantFrom("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "response_mode", "login_hint", "id_token_hint", "request", "grant_type", "code", "code_verifier", "refresh_token", "resource", "client_secret", "client_assertion", "client_assertion_type", "token", "token_type_hint", "dpop_jkt", "post_logout_redirect_uri", "csrf", "returnUrl", "username", "password", "decision", "logoutId", "sessionId", "clientId");
const params = fc.array(fc.tuple(name, hostile), { maxLength: 12 });
const encode = (pairs: [string, string][]) => {
  const search = new URLSearchParams();
  for (const [k, v] of pairs) search.append(k, v);
  return search.toString();
};

describe("fuzzed protocol surface: never a 5xx, never a crash", () => {
  let flow: Flow;
  let host: TestHost;
  let refreshToken: string;

  before(async () => {
    const config = baseConfig();
    config.admin = { role: "admin" };
    config.serverSideSessions = { enabled: true };
    config.clients = [...config.clients!, { client_id: "offline", client_secret: "offline-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token", "client_credentials"], scope: "openid offline_access api1.read" }];
    flow = await Flow.create(config);
    host = flow.host;
    const { code, verifier } = await flow.signIn({ client_id: "offline", scope: "openid offline_access" });
    const tokens = (await (await flow.redeem(code, verifier, { id: "offline", secret: "offline-secret" })).json()) as { refresh_token: string };
    refreshToken = tokens.refresh_token;
  });
  after(() => flow.close());

  const send = (request: Request) => host.fetch(request);
  const check = async (response: Response, what: string) => {
    assert.ok(response.status < 500, `${what} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  };

  it("GET endpoints and pages with random query strings", async () => {
    const paths = ["/connect/authorize", "/connect/authorize/callback", "/connect/userinfo", "/connect/endsession", "/connect/checksession", "/login", "/consent", "/logout", "/signedout", "/grants", "/serversidesessions", "/admin/api/sessions", "/.well-known/openid-configuration", "/nope"];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), params, async (path, pairs) => {
        await check(await send(new Request(`${host.issuer}${path}?${encode(pairs)}`)), `GET ${path}`);
      }),
      { numRuns: RUNS },
    );
  });

  it("POST endpoints and forms with random bodies, content types and credentials", async () => {
    const paths = ["/connect/token", "/connect/introspect", "/connect/revocation", "/connect/userinfo", "/connect/authorize", "/connect/endsession", "/login", "/consent", "/logout", "/grants", "/serversidesessions"];
    const contentType = fc.constantFrom("application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/json", "text/plain", "multipart/form-data; boundary=x", "");
    const authorization = fc.oneof(fc.constant(undefined), fc.constant(`Basic ${Buffer.from("web:web-secret").toString("base64")}`), hostile.map((h) => `Basic ${Buffer.from(h).toString("base64")}`), hostile.map((h) => `Bearer ${h}`), hostile.map((h) => `DPoP ${h}`), hostile);
    const dpop = fc.oneof(fc.constant(undefined), hostile, fc.constant("eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30."));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), params, contentType, authorization, dpop, fc.boolean(), async (path, pairs, type, auth, proof, raw) => {
        const headers: Record<string, string> = {};
        if (type) headers["content-type"] = type;
        if (auth !== undefined) headers.authorization = auth;
        if (proof !== undefined) headers.dpop = proof;
        const body = raw ? pairs.map(([k, v]) => `${k}=${v}`).join("&") : encode(pairs);
        let request: Request;
        try {
          request = new Request(`${host.issuer}${path}`, { method: "POST", headers, body });
        } catch {
          return; // a header value fetch itself refuses cannot reach a server
        }
        await check(await send(request), `POST ${path}`);
      }),
      { numRuns: RUNS },
    );
  });

  it("leaves state alone when requests are rejected: the refresh token still rotates afterwards", async () => {
    const token = await flow.token({ grant_type: "refresh_token", refresh_token: refreshToken }, { id: "offline", secret: "offline-secret" });
    assert.equal(token.status, 200);
  });

  it("survives random cookies on every page", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/login", "/connect/authorize?client_id=web", "/", "/grants", "/serversidesessions", "/logout"), hostile, hostile, async (path, session, csrf) => {
        const cookie = `__Host-tessera.session=${session}; __Host-tessera.csrf=${csrf}; tessera.session=${session}; tessera.csrf=${csrf}; tessera.session_id=${session}`;
        let request: Request;
        try {
          request = new Request(`${host.issuer}${path}`, { headers: { cookie } });
        } catch {
          return; // a header value fetch itself refuses cannot reach a server
        }
        await check(await send(request), `GET ${path} with cookies`);
      }),
      { numRuns: RUNS },
    );
  });
});
