import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { leftHalfHash } from "@tessera/protocol";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

describe("authorization code flow (TestBrowser, in-process)", () => {
  let flow: Flow;
  before(async () => {
    flow = await Flow.create();
  });
  after(() => flow.close());

  it("signs in through the login page and issues verifiable tokens", async () => {
    const request = await flow.authorizeUrl();
    const loginPage = await flow.go(request.url);
    assert.equal(loginPage.status, 200);
    assert.ok(loginPage.query("input[name=username]") && loginPage.query("input[name=password]"));
    assert.equal(loginPage.queryAll("button[type=submit]").length, 1);
    assert.match(loginPage.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);

    const back = await flow.login(loginPage);
    const response = Flow.response(back);
    assert.equal(response.get("state"), request.state);
    assert.equal(response.get("iss"), flow.host.issuer);
    const code = response.get("code")!;
    assert.ok(code.length >= 43);

    const tokenResponse = await flow.redeem(code, request.verifier);
    assert.equal(tokenResponse.status, 200);
    assert.equal(tokenResponse.headers.get("cache-control"), "no-store");
    const tokens = (await tokenResponse.json()) as Record<string, string | number>;
    assert.equal(tokens.token_type, "Bearer");
    assert.equal(tokens.scope, "openid profile email api1.read");

    const metadata = await flow.metadata();
    const jwksResponse = await flow.host.fetch(new Request(String(metadata.jwks_uri)));
    const jwks = (await jwksResponse.json()) as { keys: Record<string, unknown>[] };
    for (const key of jwks.keys) for (const secret of ["d", "p", "q", "dp", "dq", "qi"]) assert.equal(key[secret], undefined);
    const keySet = createLocalJWKSet(jwks as never);

    const idToken = await jwtVerify(String(tokens.id_token), keySet, { issuer: flow.host.issuer, audience: "web" });
    assert.equal(idToken.payload.sub, "1");
    assert.equal(idToken.payload.nonce, request.nonce);
    assert.deepEqual(idToken.payload.amr, ["pwd"]);
    assert.equal(idToken.payload.idp, "local");
    assert.equal(typeof idToken.payload.auth_time, "number");
    assert.equal(typeof idToken.payload.sid, "string");
    assert.equal(idToken.payload.at_hash, leftHalfHash(String(tokens.access_token), idToken.protectedHeader.alg));

    const at = await jwtVerify(String(tokens.access_token), keySet, { issuer: flow.host.issuer, typ: "at+jwt" });
    assert.equal(decodeProtectedHeader(String(tokens.access_token)).typ, "at+jwt");
    assert.equal(at.payload.aud, "urn:api1");
    assert.equal(at.payload.client_id, "web");
    assert.equal(at.payload.sub, "1");
    assert.equal(at.payload.sid, idToken.payload.sid);
    assert.ok(at.payload.jti && at.payload.exp && at.payload.iat);

    const userinfo = await flow.host.fetch(new Request(String(metadata.userinfo_endpoint), { headers: { authorization: `Bearer ${tokens.access_token}` } }));
    assert.equal(userinfo.status, 200);
    assert.deepEqual(await userinfo.json(), { sub: "1", name: "Alice Smith", email: "alice@example.com" });

    // The session cookie is HttpOnly and Lax; the session-id cookie is readable by script and matches sid.
    const session = flow.browser.cookies.get("__Host-tessera.session", flow.host.issuer)!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Lax");
    assert.equal(session.secure, true);
    const sid = flow.browser.cookies.get("tessera.session_id", flow.host.issuer)!;
    assert.equal(sid.httpOnly, false);
    assert.equal(sid.value, idToken.payload.sid);
  });

  it("signs in once and then issues codes without a login page (SSO)", async () => {
    const request = await flow.authorizeUrl({ client_id: "post", scope: "openid profile" });
    const page = await flow.go(request.url);
    const code = Flow.response(page).get("code")!;
    const response = await flow.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: request.verifier, client_id: "post", client_secret: "post-secret" });
    assert.equal(response.status, 200);
  });

  it("supports public clients with PKCE and no secret", async () => {
    const { code, verifier } = await flow.signIn({ client_id: "spa", scope: "openid profile" });
    const response = await flow.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: "spa" });
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown>;
    assert.ok(body.id_token);
  });

  it("answers in form_post response mode with an auto-submitting form to the redirect_uri", async () => {
    const request = await flow.authorizeUrl({ response_mode: "form_post" });
    const page = await flow.go(request.url);
    assert.equal(page.status, 200);
    const form = page.query("form")!;
    assert.equal(form.getAttribute("action"), REDIRECT);
    assert.equal(form.getAttribute("method"), "post");
    assert.equal(page.query("input[name=state]")!.getAttribute("value"), request.state);
    assert.equal(page.query("input[name=iss]")!.getAttribute("value"), flow.host.issuer);
    assert.ok(page.query("input[name=code]")!.getAttribute("value"));
    assert.match(page.headers.get("content-security-policy")!, /script-src 'nonce-/);
  });

  it("answers in fragment response mode", async () => {
    const request = await flow.authorizeUrl({ response_mode: "fragment" });
    const page = await flow.go(request.url);
    const fragment = new URLSearchParams(new URL(page.location!).hash.slice(1));
    assert.ok(fragment.get("code"));
    assert.equal(fragment.get("state"), request.state);
  });
});

describe("authorization code flow: bad input", () => {
  let flow: Flow;
  before(async () => {
    flow = await Flow.create();
  });
  after(() => flow.close());

  for (const [name, params] of [
    ["an unregistered redirect_uri", { redirect_uri: "https://evil.test/callback" }],
    ["a redirect_uri with an extra trailing slash", { redirect_uri: `${REDIRECT}/` }],
    ["a redirect_uri with a different query", { redirect_uri: `${REDIRECT}?x=1` }],
    ["a missing redirect_uri", { redirect_uri: undefined }],
    ["an unknown client", { client_id: "nobody" }],
    ["a missing client_id", { client_id: undefined }],
  ] as const) {
    it(`shows an error page, never a redirect, for ${name}`, async () => {
      const { url } = await flow.authorizeUrl(params);
      const page = await flow.go(url);
      assert.equal(page.status, 400);
      assert.equal(page.location, undefined);
      assert.ok(page.query("#error"));
      assert.doesNotMatch(page.body, /evil\.test/);
    });
  }

  it("refuses repeated parameters", async () => {
    const { url } = await flow.authorizeUrl();
    url.searchParams.append("client_id", "web");
    const page = await flow.go(url);
    assert.equal(page.status, 400);
    assert.equal(page.location, undefined);
  });

  for (const [name, params, error] of [
    ["a missing code_challenge", { code_challenge: undefined, code_challenge_method: undefined }, "invalid_request"],
    ["code_challenge_method plain", { code_challenge_method: "plain" }, "invalid_request"],
    ["a missing code_challenge_method (plain by default)", { code_challenge_method: undefined }, "invalid_request"],
    ["a malformed code_challenge", { code_challenge: "short" }, "invalid_request"],
    ["response_type token", { response_type: "token" }, "unsupported_response_type"],
    ["a missing response_type", { response_type: undefined }, "invalid_request"],
    ["an unknown scope", { scope: "openid nope" }, "invalid_scope"],
    ["a scope the client may not use", { scope: "openid api1.write" }, "invalid_scope"],
    ["an unknown prompt", { prompt: "bogus" }, "invalid_request"],
    ["prompt=none with login", { prompt: "none login" }, "invalid_request"],
    ["a negative max_age", { max_age: "-1" }, "invalid_request"],
    ["an invalid id_token_hint", { id_token_hint: "not-a-jwt" }, "invalid_request"],
  ] as const) {
    it(`redirects ${error} for ${name}, with state and iss`, async () => {
      const { url, state } = await flow.authorizeUrl(params);
      const response = Flow.response(await flow.go(url));
      assert.equal(response.get("error"), error);
      assert.equal(response.get("state"), state);
      assert.equal(response.get("iss"), flow.host.issuer);
      assert.equal(response.get("code"), null);
    });
  }

  it("sends errors by the requested response mode, and invalid modes by query", async () => {
    const { url } = await flow.authorizeUrl({ response_mode: "fragment", scope: "nope" });
    const page = await flow.go(url);
    assert.equal(new URLSearchParams(new URL(page.location!).hash.slice(1)).get("error"), "invalid_scope");
    const bad = await flow.authorizeUrl({ response_mode: "bogus" });
    assert.equal(Flow.response(await flow.go(bad.url)).get("error"), "invalid_request");
  });

  it("answers login_required to prompt=none without a session", async () => {
    const fresh = await Flow.create();
    try {
      const { url, state } = await fresh.authorizeUrl({ prompt: "none" });
      const response = Flow.response(await fresh.go(url));
      assert.equal(response.get("error"), "login_required");
      assert.equal(response.get("state"), state);
    } finally {
      await fresh.close();
    }
  });

  it("re-shows the login form with one message for a wrong password and for an unknown user", async () => {
    const fresh = await Flow.create();
    try {
      const { url } = await fresh.authorizeUrl();
      const loginPage = await fresh.go(url);
      const wrong = await fresh.login(loginPage, "alice", "wrong");
      const unknown = await fresh.login(loginPage, "mallory", "wrong");
      const wrongHash = await fresh.login(loginPage, "bob", "wrong");
      for (const page of [wrong, unknown, wrongHash]) {
        assert.equal(page.status, 200);
        assert.ok(page.query("input[name=password]"));
        assert.equal(page.text("#login-error"), "Invalid username or password.");
        assert.equal(page.headers.getSetCookie().some((c) => c.startsWith("__Host-tessera.session=")), false);
      }
      assert.equal(fresh.browser.cookies.get("__Host-tessera.session", fresh.host.issuer), undefined);
      // The right password (argon2id hash) still works afterwards, from the same form.
      const ok = await fresh.login(loginPage, "bob", "bob-password");
      assert.ok(Flow.response(ok).get("code"));
    } finally {
      await fresh.close();
    }
  });

  it("refuses a login post without a valid CSRF token", async () => {
    const fresh = await Flow.create();
    try {
      const { url } = await fresh.authorizeUrl();
      const loginPage = await fresh.go(url);
      const forged = await fresh.browser.submitForm(loginPage, { fields: { username: "alice", password: "alice", csrf: "forged" } });
      assert.equal(forged.status, 400);
      assert.equal(fresh.browser.cookies.get("__Host-tessera.session", fresh.host.issuer), undefined);
    } finally {
      await fresh.close();
    }
  });

  it("forces a new login for max_age=0 and prompt=login, then continues without looping", async () => {
    const fresh = await Flow.create();
    try {
      const first = await fresh.signIn();
      const firstTokens = (await (await fresh.redeem(first.code, first.verifier)).json()) as { id_token: string };
      const firstAuthTime = JSON.parse(Buffer.from(firstTokens.id_token.split(".")[1]!, "base64url").toString()).auth_time as number;
      fresh.now += 5000;
      for (const params of [{ max_age: "0" }, { prompt: "login" }]) {
        const request = await fresh.authorizeUrl(params);
        const page = await fresh.go(request.url);
        assert.ok(page.query("input[name=password]"), `login page for ${JSON.stringify(params)}`);
        const done = await fresh.login(page);
        const code = Flow.response(done).get("code")!;
        const tokens = (await (await fresh.redeem(code, request.verifier)).json()) as { id_token: string };
        const authTime = JSON.parse(Buffer.from(tokens.id_token.split(".")[1]!, "base64url").toString()).auth_time as number;
        assert.ok(authTime >= firstAuthTime + 5);
      }
      // max_age larger than the session's age does not force a login.
      const relaxed = await fresh.authorizeUrl({ max_age: "3600" });
      assert.ok(Flow.response(await fresh.go(relaxed.url)).get("code"));
    } finally {
      await fresh.close();
    }
  });

  it("ignores a forged session cookie", async () => {
    const fresh = await Flow.create();
    try {
      await fresh.signIn();
      const real = fresh.browser.cookies.get("__Host-tessera.session", fresh.host.issuer)!;
      const tampered = real.value.slice(0, -4) + (real.value.endsWith("AAAA") ? "BBBB" : "AAAA");
      for (const value of [tampered, "garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "x".repeat(5000)]) {
        fresh.browser.cookies.set({ ...real, value });
        const request = await fresh.authorizeUrl();
        const page = await fresh.go(request.url);
        assert.ok(page.query("input[name=password]"), "forged cookie must lead to the login page");
        const none = await fresh.authorizeUrl({ prompt: "none" });
        assert.equal(Flow.response(await fresh.go(none.url)).get("error"), "login_required");
      }
    } finally {
      await fresh.close();
    }
  });

  it("ends an expired session, and slides an active one", async () => {
    let now = Date.now();
    const config = { ...baseConfig(), authentication: { cookieLifetime: 600, cookieSlidingExpiration: true } };
    const fresh = await Flow.create(config, () => now);
    const sync = () => {
      fresh.now = now;
    };
    try {
      sync();
      await fresh.signIn();
      // 400 s in: past half the lifetime, the session is renewed.
      now += 400_000;
      sync();
      const renewed = await fresh.authorizeUrl();
      assert.ok(Flow.response(await fresh.go(renewed.url)).get("code"));
      // 400 s later the original would have expired, the renewed one has not.
      now += 400_000;
      sync();
      const still = await fresh.authorizeUrl({ prompt: "none" });
      assert.ok(Flow.response(await fresh.go(still.url)).get("code"));
      // Idle past the lifetime: gone, even if the browser kept the cookie.
      const cookie = fresh.browser.cookies.get("__Host-tessera.session", fresh.host.issuer)!;
      now += 700_000;
      sync();
      fresh.browser.cookies.set({ ...cookie, expires: undefined });
      const expired = await fresh.authorizeUrl({ prompt: "none" });
      assert.equal(Flow.response(await fresh.go(expired.url)).get("error"), "login_required");
    } finally {
      await fresh.close();
    }
  });

  it("refuses a replayed code and revokes the tokens issued from it", async () => {
    const { code, verifier } = await flow.signIn();
    const first = await flow.redeem(code, verifier);
    assert.equal(first.status, 200);
    const { access_token } = (await first.json()) as { access_token: string };
    const userinfo = String((await flow.metadata()).userinfo_endpoint);
    const before = await flow.host.fetch(new Request(userinfo, { headers: { authorization: `Bearer ${access_token}` } }));
    assert.equal(before.status, 200);
    const replay = await flow.redeem(code, verifier);
    assert.equal(replay.status, 400);
    assert.equal(((await replay.json()) as { error: string }).error, "invalid_grant");
    const afterReplay = await flow.host.fetch(new Request(userinfo, { headers: { authorization: `Bearer ${access_token}` } }));
    assert.equal(afterReplay.status, 401);
    assert.match(afterReplay.headers.get("www-authenticate")!, /error="invalid_token"/);
  });

  it("refuses a wrong or missing code_verifier, and a verifier without a challenge", async () => {
    const wrong = await flow.signIn();
    const bad = await flow.redeem(wrong.code, "x".repeat(43));
    assert.equal(((await bad.json()) as { error: string }).error, "invalid_grant");
    const missing = await flow.signIn();
    const noVerifier = await flow.token({ grant_type: "authorization_code", code: missing.code, redirect_uri: REDIRECT }, { id: "web", secret: "web-secret" });
    assert.equal(((await noVerifier.json()) as { error: string }).error, "invalid_grant");
    const plain = await flow.signIn({ client_id: "nopkce", scope: "openid", code_challenge: undefined, code_challenge_method: undefined });
    const downgrade = await flow.redeem(plain.code, "y".repeat(43), { id: "nopkce", secret: "nopkce-secret" });
    assert.equal(((await downgrade.json()) as { error: string }).error, "invalid_grant");
  });

  it("refuses a wrong client secret, the wrong method, and a code of another client", async () => {
    const { code, verifier } = await flow.signIn();
    const wrongSecret = await flow.redeem(code, verifier, { id: "web", secret: "nope" });
    assert.equal(wrongSecret.status, 401);
    assert.equal(((await wrongSecret.json()) as { error: string }).error, "invalid_client");
    assert.match(wrongSecret.headers.get("www-authenticate")!, /^Basic/);
    const wrongMethod = await flow.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: "web", client_secret: "web-secret" });
    assert.equal(wrongMethod.status, 401);
    const unknown = await flow.redeem(code, verifier, { id: "ghost", secret: "x" });
    assert.equal(unknown.status, 401);
    const other = await flow.redeem(code, verifier, { id: "nopkce", secret: "nopkce-secret" });
    assert.equal(((await other.json()) as { error: string }).error, "invalid_grant");
  });

  it("refuses a mismatched redirect_uri at the token endpoint", async () => {
    const { code, verifier } = await flow.signIn();
    const response = await flow.token({ grant_type: "authorization_code", code, redirect_uri: `${REDIRECT}/other`, code_verifier: verifier }, { id: "web", secret: "web-secret" });
    assert.equal(((await response.json()) as { error: string }).error, "invalid_grant");
  });

  it("refuses an expired code", async () => {
    const { code, verifier } = await flow.signIn();
    flow.now += 301_000;
    try {
      const response = await flow.redeem(code, verifier);
      assert.equal(((await response.json()) as { error: string }).error, "invalid_grant");
    } finally {
      flow.now = Date.now();
    }
  });

  it("answers malformed token requests with RFC 6749 errors, never 5xx", async () => {
    const endpoint = String((await flow.metadata()).token_endpoint);
    const send = (body: string, headers: Record<string, string>) => flow.host.fetch(new Request(endpoint, { method: "POST", headers, body }));
    const basic = { authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` };
    const form = { "content-type": "application/x-www-form-urlencoded", ...basic };
    const cases: [string, Record<string, string>, number, string][] = [
      ["grant_type=authorization_code&code=x", { "content-type": "application/json", ...basic }, 400, "invalid_request"],
      ["grant_type=password", form, 400, "unsupported_grant_type"],
      ["code=x", form, 400, "invalid_request"],
      ["grant_type=authorization_code&grant_type=authorization_code&code=x", form, 400, "invalid_request"],
      ["grant_type=authorization_code", form, 400, "invalid_request"],
      ["grant_type=authorization_code&code=%E0%A4%A", form, 400, "invalid_request"],
      ["grant_type=authorization_code&code=x", { "content-type": "application/x-www-form-urlencoded", authorization: "Basic !!!" }, 401, "invalid_client"],
      ["grant_type=authorization_code&code=x", { "content-type": "application/x-www-form-urlencoded" }, 401, "invalid_client"],
      ["a=" + "x".repeat(70_000), form, 413, "invalid_request"],
    ];
    for (const [body, headers, status, error] of cases) {
      const response = await send(body, headers);
      assert.equal(response.status, status, body.slice(0, 60));
      assert.equal(((await response.json()) as { error: string }).error, error, body.slice(0, 60));
    }
    const get = await flow.host.fetch(new Request(endpoint));
    assert.ok(get.status < 500);
  });

  it("answers userinfo without or with a bad token with RFC 6750 challenges", async () => {
    const endpoint = String((await flow.metadata()).userinfo_endpoint);
    const none = await flow.host.fetch(new Request(endpoint));
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate")!, /^Bearer/);
    const bad = await flow.host.fetch(new Request(endpoint, { headers: { authorization: "Bearer abc.def.ghi" } }));
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get("www-authenticate")!, /invalid_token/);
  });
});

describe("consent", () => {
  let flow: Flow;
  before(async () => {
    flow = await Flow.create();
  });
  after(() => flow.close());

  it("asks, and answers access_denied on deny and a code on allow", async () => {
    const request = await flow.authorizeUrl({ client_id: "consent", scope: "openid profile" });
    const consent = await flow.login(await flow.go(request.url));
    assert.ok(consent.query("button[name=decision][value=allow]"));
    assert.ok(consent.query("button[name=decision][value=deny]"));
    assert.match(consent.text(), /Consent App/);
    const denied = await flow.browser.submitForm(consent, { button: "button[name=decision][value=deny]", stopAt: (u) => u.origin === "https://rp.test" });
    assert.equal(Flow.response(denied).get("error"), "access_denied");
    assert.equal(Flow.response(denied).get("state"), request.state);

    const again = await flow.authorizeUrl({ client_id: "consent", scope: "openid profile" });
    const page = await flow.go(again.url);
    // Unticking "remember" makes this a one-time decision.
    const allowed = await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]", fields: { remember: "" }, stopAt: (u) => u.origin === "https://rp.test" });
    assert.ok(Flow.response(allowed).get("code"));
    const asksAgain = await flow.go((await flow.authorizeUrl({ client_id: "consent", scope: "openid profile" })).url);
    assert.ok(asksAgain.query("button[name=decision][value=allow]"));
  });

  it("answers consent_required to prompt=none when consent is needed, and asks for prompt=consent", async () => {
    const none = await flow.authorizeUrl({ client_id: "consent", scope: "openid profile", prompt: "none" });
    assert.equal(Flow.response(await flow.go(none.url)).get("error"), "consent_required");
    const ask = await flow.authorizeUrl({ prompt: "consent" });
    const page = await flow.go(ask.url);
    assert.ok(page.query("button[name=decision][value=allow]"));
  });

  it("refuses a consent decision without a valid CSRF token", async () => {
    const request = await flow.authorizeUrl({ client_id: "consent", scope: "openid profile" });
    const page = await flow.go(request.url);
    const forged = await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]", fields: { csrf: "x" } });
    assert.equal(forged.status, 400);
  });
});

describe("remembered consent and the grants page", () => {
  it("remembers an allowed consent, asks again for more scopes or prompt=consent, and forgets it when revoked", async () => {
    const config = baseConfig();
    config.clients = [...config.clients!, { client_id: "consent2", client_secret: "c2-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile email offline_access", require_consent: true, client_name: "Second App" }];
    const flow = await Flow.create(config);
    try {
      const stopAt = (u: URL) => u.origin === "https://rp.test";
      const first = await flow.authorizeUrl({ client_id: "consent2", scope: "openid profile offline_access" });
      const consent = await flow.login(await flow.go(first.url));
      assert.ok(consent.query("input[name=remember][checked]"), "remember is ticked by default");
      const code = Flow.response(await flow.browser.submitForm(consent, { button: "button[name=decision][value=allow]", stopAt })).get("code")!;
      const tokens = (await (await flow.redeem(code, first.verifier, { id: "consent2", secret: "c2-secret" })).json()) as { refresh_token: string };
      assert.ok(tokens.refresh_token);

      // Same scopes again, even with prompt=none: no question.
      const again = await flow.authorizeUrl({ client_id: "consent2", scope: "openid profile", prompt: "none" });
      assert.ok(Flow.response(await flow.go(again.url)).get("code"));
      // More scopes, or prompt=consent: asked again.
      assert.ok((await flow.go((await flow.authorizeUrl({ client_id: "consent2", scope: "openid email" })).url)).query("button[name=decision]"));
      assert.ok((await flow.go((await flow.authorizeUrl({ client_id: "consent2", scope: "openid", prompt: "consent" })).url)).query("button[name=decision]"));

      // The grants page lists the app; revoking it ends the consent and the refresh token.
      const grants = await flow.browser.get(`${flow.host.issuer}/grants`);
      assert.equal(grants.status, 200);
      assert.match(grants.text("#grants"), /Second App/);
      assert.match(grants.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
      const revoked = await flow.browser.submitForm(grants, { form: "li[data-client-id=consent2] form", button: "button[name=revoke]" });
      assert.ok(revoked.query("#no-grants"));
      const refresh = await flow.token({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }, { id: "consent2", secret: "c2-secret" });
      assert.equal(((await refresh.json()) as { error: string }).error, "invalid_grant");
      const none = await flow.authorizeUrl({ client_id: "consent2", scope: "openid profile", prompt: "none" });
      assert.equal(Flow.response(await flow.go(none.url)).get("error"), "consent_required");
    } finally {
      await flow.close();
    }
  });

  it("sends an anonymous visitor of the grants page to login and back, and refuses a forged revoke", async () => {
    const flow = await Flow.create();
    try {
      const login = await flow.browser.get(`${flow.host.issuer}/grants`);
      assert.ok(login.query("input[name=password]"));
      const grants = await flow.browser.submitForm(login, { fields: { username: "alice", password: "alice" } });
      assert.equal(new URL(grants.url).pathname, "/grants");
      assert.ok(grants.query("#no-grants"));
      const forged = await flow.browser.post(`${flow.host.issuer}/grants`, { clientId: "web", csrf: "forged" });
      assert.equal(forged.status, 400);
      // returnUrl cannot point anywhere else.
      const evil = await flow.browser.get(`${flow.host.issuer}/login?returnUrl=${encodeURIComponent("https://evil.test/")}`);
      assert.equal(evil.query("input[name=returnUrl]"), null);
    } finally {
      await flow.close();
    }
  });
});

describe("id_token_hint", () => {
  it("asks for login when the hint names another user, and answers login_required with prompt=none", async () => {
    const flow = await Flow.create();
    try {
      const alice = await flow.signIn();
      const { id_token } = (await (await flow.redeem(alice.code, alice.verifier)).json()) as { id_token: string };
      const same = await flow.authorizeUrl({ id_token_hint: id_token, prompt: "none" });
      assert.ok(Flow.response(await flow.go(same.url)).get("code"));
      // Bob signs in in the same browser: alice's hint no longer matches.
      const bobRequest = await flow.authorizeUrl({ prompt: "login" });
      await flow.login(await flow.go(bobRequest.url), "bob", "bob-password");
      const other = await flow.authorizeUrl({ id_token_hint: id_token, prompt: "none" });
      assert.equal(Flow.response(await flow.go(other.url)).get("error"), "login_required");
    } finally {
      await flow.close();
    }
  });
});

describe("CORS for browser-based clients", () => {
  it("allows the token, revocation and userinfo endpoints from registered redirect origins only", async () => {
    const flow = await Flow.create();
    try {
      const metadata = await flow.metadata();
      for (const endpoint of [metadata.token_endpoint, metadata.revocation_endpoint, metadata.userinfo_endpoint]) {
        const ok = await flow.host.fetch(new Request(String(endpoint), { method: "OPTIONS", headers: { origin: "https://rp.test", "access-control-request-method": "POST" } }));
        assert.equal(ok.headers.get("access-control-allow-origin"), "https://rp.test");
        const other = await flow.host.fetch(new Request(String(endpoint), { method: "OPTIONS", headers: { origin: "https://evil.test", "access-control-request-method": "POST" } }));
        assert.equal(other.headers.get("access-control-allow-origin"), null);
      }
      const { code, verifier } = await flow.signIn({ client_id: "spa", scope: "openid profile" });
      const response = await flow.host.fetch(
        new Request(String(metadata.token_endpoint), {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://rp.test" },
          body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: "spa" }).toString(),
        }),
      );
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("access-control-allow-origin"), "https://rp.test");
      const error = await flow.host.fetch(new Request(String(metadata.token_endpoint), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://rp.test" }, body: "grant_type=x&client_id=spa" }));
      assert.equal(error.status, 400);
      assert.equal(error.headers.get("access-control-allow-origin"), "https://rp.test", "errors are readable by the app too");
    } finally {
      await flow.close();
    }
  });
});
