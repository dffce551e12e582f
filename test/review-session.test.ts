import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createMemoryStore, createPostgresStore, createProvider, createSqliteStore, type Provider, type Store } from "@tessera/server";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { REDIRECT, RP, baseConfig, pkce } from "./support/fixtures.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

/** A back-channel receiver that records the logout tokens it got. */
async function receiver() {
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      tokens.push(new URLSearchParams(body).get("logout_token") ?? "");
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bc`,
    tokens,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!condition()) throw new Error(`gave up waiting for ${what}`);
}

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
}

/** Signs in (logging in on the way when asked) for `clientId`; returns the token response. */
async function signInTo(host: TestHost, browser: TestBrowser, clientId: string, extra: Record<string, string> = {}, secret = `${clientId}-secret`) {
  const { challenge, verifier } = pkce();
  const url = new URL(`${host.issuer}/connect/authorize`);
  url.search = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT, response_type: "code", scope: "openid profile", code_challenge: challenge, code_challenge_method: "S256", state: "s", ...extra }).toString();
  const stopAt = (u: URL) => u.origin === RP;
  let page = await browser.get(url, { stopAt });
  if (page.query("input[name=password]")) page = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
  const code = new URL(page.location!).searchParams.get("code")!;
  const response = await host.fetch(
    new Request(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString("base64")}` },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
    }),
  );
  return (await response.json()) as { id_token: string; access_token: string };
}

describe("logout requests and id_token_hint", () => {
  let host: TestHost;
  let a: Awaited<ReturnType<typeof receiver>>;
  let b: Awaited<ReturnType<typeof receiver>>;

  before(async () => {
    a = await receiver();
    b = await receiver();
    const config = baseConfig();
    const common = { redirect_uris: [REDIRECT], post_logout_redirect_uris: [`${RP}/signed-out`], scope: "openid profile", access_token_format: "jwt" as const };
    config.clients = [
      { client_id: "a", client_secret: "a-secret", ...common, frontchannel_logout_uri: `${RP}/a/front`, backchannel_logout_uri: a.url },
      { client_id: "b", client_secret: "b-secret", ...common, frontchannel_logout_uri: `${RP}/b/front`, backchannel_logout_uri: b.url },
    ];
    host = await createTestHost(config, { listen: true });
  });
  after(async () => {
    await host.close();
    await Promise.all([a.close(), b.close()]);
  });

  const endSessionUrl = (params: Record<string, string>) => {
    const url = new URL(`${host.issuer}/connect/endsession`);
    url.search = new URLSearchParams(params).toString();
    return url;
  };

  test("8.a a replayed logoutId never signs anyone out on a GET: a signed-in user gets the logout prompt", async () => {
    const browser = new TestBrowser();
    const first = await signInTo(host, browser, "a");
    const ended = await browser.get(endSessionUrl({ id_token_hint: first.id_token, post_logout_redirect_uri: `${RP}/signed-out`, state: "old" }), { stopAt: (u) => u.origin === RP });
    assert.ok(ended.query("#signed-out"));
    const logoutId = new URL(ended.url).searchParams.get("logoutId")!;
    assert.ok(logoutId);
    await until(() => a.tokens.length === 1, "a's back-channel token");

    const sidB = claimsOf((await signInTo(host, browser, "b")).id_token).sid;
    const bBefore = b.tokens.length;
    const replay = await browser.get(`${host.issuer}/signedout?logoutId=${encodeURIComponent(logoutId)}`, { stopAt: (u) => u.origin === RP });
    assert.equal(replay.status, 200);
    assert.equal(new URL(replay.url).pathname, "/logout", "sent to the logout prompt");
    assert.ok(replay.query("button[name=decision][value=logout]"));
    assert.equal(replay.queryAll("iframe").length, 0, "no iframes of the old logout");
    assert.doesNotMatch(replay.body, /state=old|signed-out/);
    assert.ok(browser.cookies.all().some((c) => c.name.endsWith("tessera.session") && c.value), "still signed in after the GET");
    assert.equal(b.tokens.length, bBefore, "b is not told by a GET");

    // Only the prompt's CSRF-protected POST ends the current session, notifying its own clients.
    const done = await browser.submitForm(replay, { button: "button[name=decision][value=logout]", stopAt: (u) => u.origin === RP });
    assert.deepEqual(done.queryAll("iframe.front-channel").map((f) => f.getAttribute("src")), [`${RP}/b/front`], "b's front-channel iframe, not a's");
    assert.equal(done.query("#continue"), null, "no redirect of the old request");
    assert.doesNotMatch(done.body, /state=old/);
    await until(() => b.tokens.length === bBefore + 1, "b's back-channel token");
    assert.equal(claimsOf(b.tokens[bBefore]!).sid, sidB);
    assert.equal(a.tokens.length, 1, "a is not told again");
    assert.equal(browser.cookies.all().some((c) => c.name.includes("tessera.session") && c.value), false, "signed out");

    // Nobody signed in: a plain signed-out page.
    const again = await browser.get(`${host.issuer}/signedout?logoutId=${encodeURIComponent(logoutId)}`, { stopAt: (u) => u.origin === RP });
    assert.equal(again.status, 200);
    assert.equal(new URL(again.url).pathname, "/signedout");
    assert.equal(again.queryAll("iframe").length, 0);
    assert.equal(again.query("#continue"), null);
  });

  test("8.b logout CSRF: an attacker's burnt logoutId sent to a victim does not sign the victim out", async () => {
    // The attacker signs out of their own session with a logout request and views its signed-out page once.
    const attacker = new TestBrowser();
    await signInTo(host, attacker, "a");
    const prompt = await attacker.get(endSessionUrl({ client_id: "a", post_logout_redirect_uri: `${RP}/signed-out`, state: "evil" }), { stopAt: (u) => u.origin === RP });
    const made = await attacker.submitForm(prompt, { button: "button[name=decision][value=logout]", stopAt: (u) => u.origin === RP });
    assert.match(made.body, /state=evil/, "the attacker saw the signed-out page");
    const logoutId = new URL(made.url).searchParams.get("logoutId")!;
    assert.ok(logoutId);
    const victim = new TestBrowser();
    await signInTo(host, victim, "b");
    const bBefore = b.tokens.length;
    for (const path of ["signedout", "logout"]) {
      const page = await victim.get(`${host.issuer}/${path}?logoutId=${encodeURIComponent(logoutId)}`, { stopAt: (u) => u.origin === RP });
      assert.equal(page.status, 200, path);
      assert.ok(page.query("button[name=decision][value=logout]"), `${path}: the victim is asked`);
      assert.equal(page.queryAll("iframe").length, 0);
      assert.doesNotMatch(page.body, /state=evil/);
    }
    assert.ok(victim.cookies.all().some((c) => c.name.endsWith("tessera.session") && c.value), "the victim is still signed in");
    const session = victim.cookies.all().find((c) => c.name.endsWith("tessera.session"))!;
    assert.ok(await host.provider.getSession(new Request(`${host.issuer}/`, { headers: { cookie: `${session.name}=${session.value}` } })));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(b.tokens.length, bBefore, "no back-channel logout");
  });

  test("8.c the logout prompt with an ended logoutId ends the current session of its own clients", async () => {
    const browser = new TestBrowser();
    const first = await signInTo(host, browser, "a");
    const ended = await browser.get(endSessionUrl({ id_token_hint: first.id_token, post_logout_redirect_uri: `${RP}/signed-out`, state: "old" }), { stopAt: (u) => u.origin === RP });
    const logoutId = new URL(ended.url).searchParams.get("logoutId")!;
    const before = b.tokens.length;
    await signInTo(host, browser, "b");
    const prompt = await browser.get(`${host.issuer}/logout?logoutId=${encodeURIComponent(logoutId)}`);
    const done = await browser.submitForm(prompt, { button: "button[name=decision][value=logout]", stopAt: (u) => u.origin === RP });
    assert.deepEqual(done.queryAll("iframe.front-channel").map((f) => f.getAttribute("src")), [`${RP}/b/front`]);
    assert.equal(done.query("#continue"), null);
    await until(() => b.tokens.length === before + 1, "b's back-channel token");
  });

  test("12 an access token as id_token_hint does not log out silently", async () => {
    const browser = new TestBrowser();
    const tokens = await signInTo(host, browser, "a");
    assert.equal(claimsOf(tokens.access_token).aud, "a");
    const page = await browser.get(endSessionUrl({ id_token_hint: tokens.access_token }), { stopAt: (u) => u.origin === RP });
    assert.equal(page.query("#signed-out"), null, "not signed out");
    assert.ok(page.status === 400 || page.query("button[name=decision][value=logout]"));
    assert.ok(browser.cookies.all().some((c) => c.name.endsWith("tessera.session") && c.value), "still signed in");
  });

  test("12 a logout token as id_token_hint does not log out silently", async () => {
    const browser = new TestBrowser();
    const tokens = await signInTo(host, browser, "a");
    const count = a.tokens.length;
    await browser.get(endSessionUrl({ id_token_hint: tokens.id_token }), { stopAt: (u) => u.origin === RP });
    await until(() => a.tokens.length === count + 1, "a logout token");
    const logoutToken = a.tokens[count]!;
    await signInTo(host, browser, "a");
    const page = await browser.get(endSessionUrl({ id_token_hint: logoutToken }), { stopAt: (u) => u.origin === RP });
    assert.equal(page.query("#signed-out"), null, "not signed out");
    assert.ok(page.status === 400 || page.query("button[name=decision][value=logout]"));
    assert.ok(browser.cookies.all().some((c) => c.name.endsWith("tessera.session") && c.value), "still signed in");
  });

  test("12 an ID token of an older session leads to the logout prompt", async () => {
    const browser = new TestBrowser();
    const old = await signInTo(host, browser, "a");
    await browser.get(endSessionUrl({ id_token_hint: old.id_token }), { stopAt: (u) => u.origin === RP });
    const current = await signInTo(host, browser, "a");
    assert.notEqual(claimsOf(current.id_token).sid, claimsOf(old.id_token).sid);
    const page = await browser.get(endSessionUrl({ id_token_hint: old.id_token }), { stopAt: (u) => u.origin === RP });
    assert.ok(page.query("button[name=decision][value=logout]"), "the user is asked");
    assert.ok(browser.cookies.all().some((c) => c.name.endsWith("tessera.session") && c.value), "still signed in");
    // The current session's own ID token still logs out at once.
    const ok = await browser.get(endSessionUrl({ id_token_hint: current.id_token }), { stopAt: (u) => u.origin === RP });
    assert.ok(ok.query("#signed-out"));
  });
});

describe("13 migrating cookie sessions to server-side sessions", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-review-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const issuer = "https://idp.test";
  const dataKey = randomBytes(32).toString("base64url");
  const make = (store: Store, enabled: boolean): Provider => createProvider({ issuer, store, dataKey, clients: [], serverSideSessions: { enabled } });
  const cookieHeader = (setCookies: string[]) => setCookies.map((c) => c.split(";")[0]!).join("; ");

  let postgres: TestPostgres | undefined;
  after(async () => postgres?.close());

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`13 ten concurrent requests with one pre-migration cookie make one server-side session (${kind})`, async (t) => {
      let store: Store;
      if (kind === "memory") store = createMemoryStore();
      else if (kind === "sqlite") store = await createSqliteStore(join(dir, `migrate-${randomBytes(4).toString("hex")}.db`));
      else {
        postgres ??= await startTestPostgres();
        if (!postgres) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
        store = await createPostgresStore(await postgres.createDatabase());
      }
      const cookieOnly = make(store, false);
      const { cookies, session } = await cookieOnly.signIn(new Request(`${issuer}/login`), { sub: "1", name: "Alice" });
      const on = make(store, true);
      try {
        const cookie = cookieHeader(cookies);
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => on.getSession(new Request(`${issuer}/`, { headers: { cookie } }))));
        for (const result of results) {
          assert.equal(result.status, "fulfilled", result.status === "rejected" ? String(result.reason) : "");
          assert.equal(result.status === "fulfilled" && result.value?.sid, session.sid);
        }
        const listed = await on.querySessions({ count: 50 });
        assert.deepEqual(listed.sessions.map((s) => s.sessionId), [session.sid]);
        const response = await on.fetch(new Request(`${issuer}/connect/checksession`, { headers: { cookie } }));
        assert.ok(response.status < 500);
      } finally {
        await on.close();
      }
    });
  }
});

describe("11 cookies", () => {
  const hosts: TestHost[] = [];
  after(async () => Promise.all(hosts.map((h) => h.close())));
  const start = async (config: TestHostConfig = baseConfig(), listen = false) => {
    const host = await createTestHost(config, { listen });
    hosts.push(host);
    return host;
  };
  const browserFor = (host: TestHost) => new TestBrowser({ handlers: { [host.issuer]: host.fetch } });
  const login = async (host: TestHost, browser: TestBrowser, user: [string, string]) => {
    const page = await browser.get(`${host.issuer}/login`);
    return browser.submitForm(page, { fields: { username: user[0], password: user[1] }, stopAt: () => true });
  };

  test("11.a an https issuer uses __Host- cookies (Secure, Path=/, no Domain); http keeps the names", async () => {
    const host = await start();
    const browser = browserFor(host);
    const loginPage = await browser.get(`${host.issuer}/login`);
    const csrf = loginPage.headers.getSetCookie().find((c) => c.includes("tessera.csrf="))!;
    assert.match(csrf, /^__Host-tessera\.csrf=/);
    const signedIn = await browser.submitForm(loginPage, { fields: { username: "alice", password: "alice" }, stopAt: () => true });
    const session = signedIn.headers.getSetCookie().find((c) => /^[^=]*tessera\.session=/.test(c))!;
    assert.match(session, /^__Host-tessera\.session=/);
    for (const cookie of [csrf, session]) {
      assert.match(cookie, /; Path=\/(;|$)/);
      assert.match(cookie, /; Secure/);
      assert.doesNotMatch(cookie, /Domain=/i);
    }
    // A non-prefixed cookie (as a sibling subdomain could plant) is not read on https.
    const planted = browser.cookies.get("__Host-tessera.session", host.issuer)!.value;
    assert.equal(await host.provider.getSession(new Request(`${host.issuer}/`, { headers: { cookie: `tessera.session=${planted}` } })), undefined);
    assert.ok(await host.provider.getSession(new Request(`${host.issuer}/`, { headers: { cookie: `__Host-tessera.session=${planted}` } })));

    const plain = await start(baseConfig(), true);
    const plainPage = await fetch(`${plain.issuer}/login`);
    assert.match(plainPage.headers.getSetCookie().find((c) => c.includes("csrf"))!, /^tessera\.csrf=/);
    const signed = await login(plain, new TestBrowser(), ["alice", "alice"]);
    assert.ok(signed.headers.getSetCookie().some((c) => c.startsWith("tessera.session=")));
  });

  test("11.b a CSRF cookie and token from the attacker's own session do not pass in the victim's session", async () => {
    const host = await start();
    const attacker = browserFor(host);
    await login(host, attacker, ["bob", "bob-password"]);
    const attackerPage = await attacker.get(`${host.issuer}/logout`);
    const attackerToken = attackerPage.query("input[name=csrf]")!.getAttribute("value")!;
    const attackerCookie = attacker.cookies.all().find((c) => c.name.endsWith("tessera.csrf"))!;

    const victim = browserFor(host);
    await login(host, victim, ["alice", "alice"]);
    const victimSession = victim.cookies.all().find((c) => c.name.endsWith("tessera.session"))!;
    const post = (csrfCookie: string, token: string) =>
      host.fetch(
        new Request(`${host.issuer}/logout`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", cookie: `${victimSession.name}=${victimSession.value}; ${attackerCookie.name}=${csrfCookie}` },
          body: new URLSearchParams({ csrf: token, decision: "logout" }).toString(),
        }),
      );
    assert.equal((await post(attackerCookie.value, attackerToken)).status, 400, "the planted pair is refused");
    // The victim's own page, with the same cookie value, yields a token that works.
    const victimPage = await host.fetch(new Request(`${host.issuer}/logout`, { headers: { cookie: `${victimSession.name}=${victimSession.value}; ${attackerCookie.name}=${attackerCookie.value}` } }));
    const own = /name="csrf" value="([^"]+)"/.exec(await victimPage.text())![1]!;
    assert.equal((await post(attackerCookie.value, own)).status, 303);
  });

  test("11.e two issuers on one origin under different paths keep their own session, CSRF and device cookies", async () => {
    const [t1, t2] = [await start({ ...baseConfig(), issuer: "https://h.test/t1" }), await start({ ...baseConfig(), issuer: "https://h.test/t2" })];
    const browser = new TestBrowser({ handlers: (request: Request) => (new URL(request.url).pathname.startsWith("/t1/") ? t1.fetch(request) : t2.fetch(request)) });
    const signIn = async (host: TestHost, user: [string, string]) => {
      const page = await browser.get(`${host.issuer}/login`);
      const csrf = page.headers.getSetCookie().find((c) => c.includes("tessera.csrf"));
      const done = await browser.submitForm(page, { fields: { username: user[0], password: user[1] }, stopAt: () => true });
      return { csrf, cookies: done.headers.getSetCookie() };
    };
    const first = await signIn(t1, ["alice", "alice"]);
    const second = await signIn(t2, ["bob", "bob-password"]);
    const names = (set: string[], part: string) => set.map((c) => c.slice(0, c.indexOf("="))).filter((n) => n.includes(part));
    const [session1, session2] = [names(first.cookies, "tessera.session"), names(second.cookies, "tessera.session")].map((n) => n.filter((x) => !x.includes("session_id")));
    const [device1, device2] = [names(first.cookies, "tessera.device"), names(second.cookies, "tessera.device")];
    assert.match(session1[0]!, /^__Host-tessera\.session\.[0-9a-f]{8}$/);
    assert.notEqual(session1[0], session2[0]);
    assert.ok(first.csrf && second.csrf);
    assert.match(first.csrf, /^__Host-tessera\.csrf\.[0-9a-f]{8}=/);
    assert.notEqual(names([first.csrf], "csrf")[0], names([second.csrf], "csrf")[0]);
    assert.equal(device1.length, 1);
    assert.notEqual(device1[0], device2[0]);
    // Signing in at t2 left t1's session alone.
    const at = (host: TestHost) => new Request(`${host.issuer}/`, { headers: { cookie: browser.cookies.cookieHeader(new URL(`${host.issuer}/`)) ?? "" } });
    assert.equal((await t1.provider.getSession(at(t1)))?.sub, "1");
    assert.equal((await t2.provider.getSession(at(t2)))?.sub, "2");
    // A logout form of t1 still works (its CSRF cookie was not replaced by t2's).
    const prompt = await browser.get(`${t1.issuer}/logout`);
    const out = await browser.submitForm(prompt, { button: "button[name=decision][value=logout]", stopAt: () => true });
    assert.equal(out.status, 303);
    assert.equal(await t1.provider.getSession(at(t1)), undefined);
    assert.equal((await t2.provider.getSession(at(t2)))?.sub, "2");
  });

  for (const serverSide of [false, true]) {
    test(`11.c every sign-in rotates the session handle, re-authentication included (server-side ${serverSide})`, async () => {
      const config = baseConfig();
      if (serverSide) config.serverSideSessions = { enabled: true };
      const host = await start(config);
      const browser = browserFor(host);
      const sessionCookie = () => browser.cookies.all().find((c) => c.name.endsWith("tessera.session"))!.value;
      const first = await signInTo(host, browser, "web");
      const firstCookie = sessionCookie();
      const sids = [claimsOf(first.id_token).sid];
      const cookies = [firstCookie];
      for (const extra of [{ prompt: "login" }, { max_age: "0" }]) {
        const again = await signInTo(host, browser, "web", extra);
        sids.push(claimsOf(again.id_token).sid);
        cookies.push(sessionCookie());
      }
      // The handle changes every time; the same user keeps the sid its clients know (IdentityServer's rule).
      assert.equal(new Set(sids).size, 1, `the same user keeps the sid: ${sids.join(", ")}`);
      assert.equal(new Set(cookies).size, 3);
      if (serverSide) {
        // The pre-sign-in handle is useless afterwards.
        const name = browser.cookies.all().find((c) => c.name.endsWith("tessera.session"))!.name;
        assert.equal(await host.provider.getSession(new Request(`${host.issuer}/`, { headers: { cookie: `${name}=${firstCookie}` } })), undefined);
        assert.equal((await host.provider.querySessions({ count: 50 })).sessions.length, 1);
      }
    });
  }
});

describe("19 authorization requests", () => {
  const hosts: TestHost[] = [];
  after(async () => Promise.all(hosts.map((h) => h.close())));
  const authorizeUrl = (host: TestHost, extra: Record<string, string>) => {
    const url = new URL(`${host.issuer}/connect/authorize`);
    url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", ...extra }).toString();
    return url;
  };
  const cookieHeader = (setCookies: string[]) => setCookies.map((c) => c.split(";")[0]!).join("; ");

  for (const [name, extra] of [["prompt=login", { prompt: "login" }], ["max_age=60", { max_age: "60" }]] as const) {
    test(`19.a ${name} is satisfied only by an authentication after the request, not an older one`, async () => {
      const host = await createTestHost(baseConfig());
      hosts.push(host);
      const first = await host.fetch(new Request(authorizeUrl(host, extra)));
      assert.equal(first.status, 302);
      const login = new URL(first.headers.get("location")!);
      assert.equal(login.pathname, "/login");
      const returnUrl = login.searchParams.get("returnUrl")!;
      const now = Math.floor(Date.now() / 1000);
      // A sign-in that happened before the request (an older session's, another tab's) does not count.
      const stale = await host.provider.signIn(new Request(`${host.issuer}/login`), { sub: "1", auth_time: now - 3600 });
      const back = await host.fetch(new Request(new URL(returnUrl, host.issuer), { headers: { cookie: cookieHeader(stale.cookies) } }));
      assert.equal(back.status, 302);
      assert.equal(new URL(back.headers.get("location")!).pathname, "/login", "asked to sign in again");
      // A sign-in after the request does.
      const fresh = await host.provider.signIn(new Request(`${host.issuer}/login`), { sub: "1" });
      const done = await host.fetch(new Request(new URL(returnUrl, host.issuer), { headers: { cookie: cookieHeader(fresh.cookies) } }));
      assert.ok(new URL(done.headers.get("location")!).searchParams.get("code"), "a code after a fresh sign-in");
    });
  }
});

describe("19.b pending requests are capped", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-pending-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const issuer = "https://idp.test";
  const clients = [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid" }];
  const authorize = () => {
    const url = new URL(`${issuer}/connect/authorize`);
    url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" }).toString();
    return new Request(url);
  };
  const endSession = () => new Request(`${issuer}/connect/endsession?client_id=web`);
  const rows = async (store: Store, kind: "interaction" | "logout") => (await store.grants.findAll({ kind }, 100_000)).length;

  for (const kind of ["memory", "sqlite"] as const) {
    test(`19.b 1,000 unauthenticated authorize and end-session requests leave at most the caps' rows (${kind})`, async () => {
      const open = async () => (kind === "memory" ? createMemoryStore() : await createSqliteStore(join(dir, `pending-${randomBytes(4).toString("hex")}.db`)));
      // One address: the per-address cap (default 100) holds.
      const store = await open();
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients });
      try {
        for (let i = 0; i < 1000; i++) {
          assert.equal((await provider.fetch(authorize(), { clientAddress: "203.0.113.7" })).status, 302);
          assert.ok((await provider.fetch(endSession(), { clientAddress: "203.0.113.7" })).status < 500);
        }
        assert.equal(await rows(store, "interaction"), 100);
        assert.equal(await rows(store, "logout"), 0, "an end-session request without a session stores nothing");
        // The newest request still works: the oldest were dropped.
        const latest = await provider.fetch(authorize(), { clientAddress: "203.0.113.7" });
        const returnUrl = new URL(latest.headers.get("location")!).searchParams.get("returnUrl")!;
        assert.ok(await provider.getInteraction(returnUrl));
      } finally {
        await provider.close();
      }
      // Many addresses (or none known): the global cap holds.
      const spread = await open();
      const capped = createProvider({ issuer, store: spread, dataKey: randomBytes(32), clients, interaction: { maxPending: 50 } });
      try {
        for (let i = 0; i < 1000; i++) {
          await capped.fetch(authorize(), { clientAddress: `198.51.${i >> 8}.${i & 255}` });
          await capped.fetch(endSession(), i % 2 ? {} : { clientAddress: `198.51.${i >> 8}.${i & 255}` });
        }
        // Over the total, requests of buckets holding fewer than 3 are still admitted, up to twice the total.
        assert.equal(await rows(spread, "interaction"), 100);
        assert.equal(await rows(spread, "logout"), 0);
      } finally {
        await capped.close();
      }
    });
  }

  const open = async (kind: "memory" | "sqlite") => (kind === "memory" ? createMemoryStore() : await createSqliteStore(join(dir, `pending-${randomBytes(4).toString("hex")}.db`)));
  const returnUrlOf = (response: Response) => new URL(response.headers.get("location")!).searchParams.get("returnUrl")!;
  /** A signed-in user's cookie header (an end-session request of a session leaves a pending logout). */
  const signedIn = async (provider: Provider, sub = "1") => (await provider.signIn(new Request(`${issuer}/login`), { sub })).cookies.map((c) => c.split(";")[0]!).join("; ");
  const endSessionOf = (cookie: string) => new Request(`${issuer}/connect/endsession?client_id=web`, { headers: { cookie } });

  for (const kind of ["memory", "sqlite"] as const) {
    test(`19.c a flood from one address (IPv6 addresses of one /64 included) evicts no other address's pending requests (${kind})`, async () => {
      const store = await open(kind);
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients, interaction: { maxPending: 50, maxPendingPerAddress: 10 } });
      try {
        const victim = returnUrlOf(await provider.fetch(authorize(), { clientAddress: "203.0.113.9" }));
        const victimLogout = await provider.fetch(endSessionOf(await signedIn(provider)), { clientAddress: "203.0.113.9" });
        assert.equal(victimLogout.status, 302);
        const logoutId = new URL(victimLogout.headers.get("location")!).searchParams.get("logoutId")!;
        const attacker = await signedIn(provider, "2");
        for (let i = 0; i < 300; i++) {
          const address = `2001:db8:1:2:${((i * 7919) & 0xffff).toString(16)}:${i.toString(16)}::${(i + 1).toString(16)}`;
          assert.ok((await provider.fetch(authorize(), { clientAddress: address })).status < 500);
          assert.ok((await provider.fetch(endSessionOf(attacker), { clientAddress: address })).status < 500);
        }
        assert.ok(await provider.getInteraction(victim), "the victim's sign-in survives");
        assert.ok(await provider.getLogoutRequest(logoutId), "the victim's logout survives");
        // The whole /64 was one bucket: it holds at most its own cap.
        assert.equal(await rows(store, "interaction"), 11);
        assert.equal(await rows(store, "logout"), 11);
      } finally {
        await provider.close();
      }
    });

    test(`19.d IPv6 addresses share a bucket per /64, an IPv4-mapped address is its IPv4 address (${kind})`, async () => {
      const store = await open(kind);
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients, interaction: { maxPending: 1000, maxPendingPerAddress: 5 } });
      try {
        const spellings = ["2001:db8:0:1::1", "2001:DB8:0:1:ffff::9", "2001:0db8:0000:0001:0:0:0:2", "[2001:db8:0:1::3]", "2001:db8:0:1::4%eth0"];
        for (let i = 0; i < 20; i++) await provider.fetch(authorize(), { clientAddress: spellings[i % spellings.length]! });
        assert.equal(await rows(store, "interaction"), 5);
        for (let i = 0; i < 20; i++) await provider.fetch(authorize(), { clientAddress: i % 2 ? "::ffff:203.0.113.7" : "203.0.113.7" });
        assert.equal(await rows(store, "interaction"), 10);
        // Another /64 is another bucket.
        await provider.fetch(authorize(), { clientAddress: "2001:db8:0:2::1" });
        assert.equal(await rows(store, "interaction"), 11);
      } finally {
        await provider.close();
      }
    });

    test(`19.e over the total cap new pending requests of a full bucket or an unknown address are refused, none is evicted (${kind})`, async () => {
      const store = await open(kind);
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients, interaction: { maxPending: 20, maxPendingPerAddress: 5 } });
      try {
        const kept: string[] = [];
        const attacker = await signedIn(provider, "2");
        for (let i = 0; i < 20; i++) kept.push(returnUrlOf(await provider.fetch(authorize(), { clientAddress: `198.51.100.${i % 4}` })));
        for (let i = 0; i < 20; i++) assert.equal((await provider.fetch(endSessionOf(attacker), { clientAddress: `198.51.100.${i % 4}` })).status, 302);
        for (const context of [{ clientAddress: "198.51.100.0" }, {}]) {
          const refused = await provider.fetch(authorize(), context);
          assert.equal(refused.status, 302);
          const location = new URL(refused.headers.get("location")!);
          assert.equal(location.origin + location.pathname, REDIRECT, "the error goes back to the client");
          assert.equal(location.searchParams.get("error"), "temporarily_unavailable");
          // A logout is never refused: it goes on to the prompt, carried sealed instead of stored.
          const logout = await provider.fetch(endSessionOf(attacker), context);
          assert.equal(logout.status, 302);
          assert.equal(new URL(logout.headers.get("location")!).pathname, "/logout");
        }
        for (const returnUrl of kept) assert.ok(await provider.getInteraction(returnUrl), "nothing evicted");
        assert.equal(await rows(store, "interaction"), 20);
        assert.equal(await rows(store, "logout"), 20);
        // Signing out still works when the logout requests are full.
        const { cookies } = await provider.signIn(new Request(`${issuer}/login`), { sub: "1" });
        const cookie = cookies.map((c) => c.split(";")[0]!).join("; ");
        const ended = await provider.endSession(new Request(`${issuer}/logout`, { method: "POST", headers: { cookie } }));
        assert.ok(ended.cookies.some((c) => /session=;/.test(c)));
      } finally {
        await provider.close();
      }
    });
  }
});

/**
 * Opens a fresh store of each kind for one describe block: files under a temporary folder, PostgreSQL
 * from one throwaway cluster started on first use (undefined when PostgreSQL is not installed).
 */
function storesFor(prefix: string): (kind: "memory" | "sqlite" | "postgres") => Promise<Store | undefined> {
  const dir = mkdtempSync(join(tmpdir(), `tessera-${prefix}-`));
  let postgres: TestPostgres | undefined;
  after(async () => {
    await postgres?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return async (kind) => {
    if (kind === "memory") return createMemoryStore();
    if (kind === "sqlite") return createSqliteStore(join(dir, `${randomBytes(4).toString("hex")}.db`));
    postgres ??= await startTestPostgres();
    return postgres ? createPostgresStore(await postgres.createDatabase()) : undefined;
  };
}

describe("19.f a filled pending-request cap", () => {
  const open = storesFor("cap");
  const issuer = "https://idp.test";
  const BYE = `${RP}/bye`;
  const clients = [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], post_logout_redirect_uris: [BYE], scope: "openid" }];
  const make = (store: Store) => createProvider({ issuer, store, dataKey: randomBytes(32), clients, serverSideSessions: { enabled: true }, interaction: { maxPending: 20, maxPendingPerAddress: 5 } });
  const authorize = (cookie?: string) => {
    const url = new URL(`${issuer}/connect/authorize`);
    url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" }).toString();
    return new Request(url, cookie ? { headers: { cookie } } : {});
  };
  const endSession = (params: Record<string, string>, cookie?: string) => new Request(`${issuer}/connect/endsession?${new URLSearchParams(params)}`, cookie ? { headers: { cookie } } : {});
  const cookieOf = (setCookies: string[]) => setCookies.map((c) => c.split(";")[0]!).join("; ");
  const signedIn = async (provider: Provider, sub: string) => cookieOf((await provider.signIn(new Request(`${issuer}/login`), { sub })).cookies);
  const rows = async (store: Store, kind: "interaction" | "logout") => (await store.grants.findAll({ kind }, 100_000)).length;
  const location = (response: Response) => new URL(response.headers.get("location")!);
  /** An ID token of the cookie's session for client web (a code flow in-process; no pending request). */
  const idTokenFor = async (provider: Provider, cookie: string) => {
    const { challenge, verifier } = pkce();
    const url = new URL(`${issuer}/connect/authorize`);
    url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: challenge, code_challenge_method: "S256" }).toString();
    const code = location(await provider.fetch(new Request(url, { headers: { cookie } }))).searchParams.get("code")!;
    assert.ok(code, "a code");
    const response = await provider.fetch(
      new Request(`${issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
      }),
    );
    return ((await response.json()) as { id_token: string }).id_token;
  };
  const signedOutCookies = (response: Response) => response.headers.getSetCookie().some((c) => /tessera\.session=;/.test(c));

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`19.f a filled cap never blocks a signed-in user's logout, with or without id_token_hint (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const provider = make(store);
      try {
        // An attacker signed in to an account of their own fills logout and authorization requests from many
        // addresses, up to the hard ceiling (twice the total).
        const attacker = await signedIn(provider, "2");
        for (let i = 0; i < 100; i++) {
          const context = { clientAddress: `198.51.${i >> 8}.${i & 255}` };
          assert.equal((await provider.fetch(endSession({ client_id: "web" }, attacker), context)).status, 302);
          assert.equal((await provider.fetch(authorize(), context)).status, 302);
        }
        assert.equal(await rows(store, "logout"), 40);
        assert.equal(await rows(store, "interaction"), 40);

        for (const context of [{}, { clientAddress: "198.51.0.1" }, { clientAddress: "203.0.113.77" }]) {
          // With a hint of this session: the session ends at once, and the signed-out page continues to the client.
          const victim = await signedIn(provider, "1");
          const hint = await idTokenFor(provider, victim);
          const ended = await provider.fetch(endSession({ id_token_hint: hint, post_logout_redirect_uri: BYE, state: "s1" }, victim), context);
          assert.equal(ended.status, 302, `not ${ended.status}`);
          assert.equal(location(ended).pathname, "/signedout");
          assert.ok(signedOutCookies(ended), "the cookies are cleared");
          assert.equal(await provider.getSession(new Request(`${issuer}/`, { headers: { cookie: victim } })), undefined, "signed out");
          const shown = await provider.getSignedOut(location(ended).searchParams.get("logoutId")!, new Request(`${issuer}/signedout`));
          assert.ok(shown && "postLogoutRedirectUri" in shown);
          assert.equal(shown.postLogoutRedirectUri, `${BYE}?state=s1`);

          // Without a hint: the logout prompt, whose confirmation ends the session.
          const other = await signedIn(provider, "1");
          const asked = await provider.fetch(endSession({ client_id: "web", post_logout_redirect_uri: BYE, state: "s2" }, other), context);
          assert.equal(asked.status, 302, `not ${asked.status}`);
          assert.equal(location(asked).pathname, "/logout");
          const logoutId = location(asked).searchParams.get("logoutId")!;
          assert.equal((await provider.getLogoutRequest(logoutId))?.ended, false, "the prompt knows the request");
          const confirmed = await provider.endSession(new Request(`${issuer}/logout`, { method: "POST", headers: { cookie: other } }), logoutId);
          assert.ok(confirmed.cookies.some((c) => /tessera\.session=;/.test(c)));
          assert.equal(await provider.getSession(new Request(`${issuer}/`, { headers: { cookie: other } })), undefined, "signed out");
          const page = await provider.getSignedOut(new URL(confirmed.signedOutUrl).searchParams.get("logoutId")!, new Request(`${issuer}/signedout`));
          assert.ok(page && "postLogoutRedirectUri" in page);
          assert.equal(page.postLogoutRedirectUri, `${BYE}?state=s2`);
        }
        assert.equal(await rows(store, "logout"), 40, "nothing more stored");
      } finally {
        await provider.close();
      }
    });

    test(`19.f an end-session request without a session leaves no row (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const provider = make(store);
      try {
        const context = { clientAddress: "203.0.113.5" };
        const back = await provider.fetch(endSession({ client_id: "web", post_logout_redirect_uri: BYE, state: "s" }), context);
        assert.equal(back.status, 302);
        assert.equal(location(back).toString(), `${BYE}?state=s`, "straight back to the registered URI");
        const unregistered = await provider.fetch(endSession({ client_id: "web", post_logout_redirect_uri: `${RP}/elsewhere`, state: "s" }), context);
        assert.equal(location(unregistered).toString(), `${issuer}/signedout`);
        const plain = await provider.fetch(endSession({}), context);
        assert.equal(location(plain).toString(), `${issuer}/signedout`);
        assert.equal(await rows(store, "logout"), 0);
        // A hint of a session that has ended meanwhile (its own logout stored one): nothing to log out either.
        const cookie = await signedIn(provider, "1");
        const hint = await idTokenFor(provider, cookie);
        await provider.endSession(new Request(`${issuer}/logout`, { method: "POST", headers: { cookie } }));
        const before = await rows(store, "logout");
        const stale = await provider.fetch(endSession({ id_token_hint: hint, post_logout_redirect_uri: BYE }), context);
        assert.equal(location(stale).toString(), BYE);
        assert.equal(await rows(store, "logout"), before);
      } finally {
        await provider.close();
      }
    });

    test(`19.f over the total cap a fresh address is still admitted, a full bucket is refused, all at twice the total (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const provider = make(store);
      const admitted = async (clientAddress?: string) => {
        const response = await provider.fetch(authorize(), clientAddress ? { clientAddress } : {});
        assert.equal(response.status, 302);
        if (location(response).pathname === "/login") return true;
        assert.equal(location(response).searchParams.get("error"), "temporarily_unavailable");
        return false;
      };
      try {
        for (let i = 0; i < 20; i++) assert.ok(await admitted(`198.51.100.${i % 4}`));
        assert.equal(await rows(store, "interaction"), 20);
        assert.equal(await admitted("198.51.100.0"), false, "a full bucket is refused");
        assert.equal(await admitted(), false, "an unknown address is refused");
        // A fresh address (or /64) gets up to three, then is refused.
        assert.deepEqual([await admitted("203.0.113.50"), await admitted("203.0.113.50"), await admitted("203.0.113.50"), await admitted("203.0.113.50")], [true, true, true, false]);
        assert.ok(await admitted("2001:db8:9:9::1"));
        assert.equal(await rows(store, "interaction"), 24);
        // At twice the total everything is refused.
        for (let i = 0; i < 40; i++) await admitted(`192.0.2.${i}`);
        assert.equal(await rows(store, "interaction"), 40);
        assert.equal(await admitted("192.0.2.200"), false);
      } finally {
        await provider.close();
      }
    });
  }
});

describe("19.g/19.h bounded pending requests", () => {
  const open = storesFor("bound");
  const issuer = "https://idp.test";
  const BYE = `${RP}/bye`;
  const clients = [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], post_logout_redirect_uris: [BYE], scope: "openid" }];
  const cookieOf = (setCookies: string[]) => setCookies.map((c) => c.split(";")[0]!).join("; ");
  const location = (response: Response) => new URL(response.headers.get("location")!);
  const stored = async (store: Store, kind: "interaction" | "logout") => (await store.grants.findAll({ kind }, 100_000)).map((g) => g.data);
  const known = () => ({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge_method: "S256" });
  const post = (fields: Record<string, string>, cookie?: string) =>
    new Request(`${issuer}/connect/authorize`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
      body: new URLSearchParams(fields).toString(),
    });

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`19.g an authorization request stores only the parameters the provider understands, under 8 KiB (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      // Form limits raised so that only the stored-request rules are what bounds the row.
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients, limits: { maxFormBytes: 1 << 20, maxParameters: 100 } });
      try {
        const junk: Record<string, string> = {};
        for (let i = 0; i < 60; i++) junk[`x${i}`] = "a".repeat(4096);
        const flood = await provider.fetch(post({ ...known(), code_challenge: pkce().challenge, ...junk }), { clientAddress: "203.0.113.1" });
        assert.equal(location(flood).pathname, "/login");
        const [row, ...more] = await stored(store, "interaction");
        assert.equal(more.length, 0);
        assert.ok(row!.length < 8192, `stored ${row!.length} characters`);
        assert.ok(!row!.includes("\"x0\"") && !row!.includes("a".repeat(64)), "no unknown parameter is stored");

        // The largest realistic request (long state, nonce, login_hint, an id_token_hint, ...) still signs in.
        const cookie = cookieOf((await provider.signIn(new Request(`${issuer}/login`), { sub: "1" })).cookies);
        const { challenge, verifier } = pkce();
        const first = await provider.fetch(post({ ...known(), code_challenge: challenge }, cookie));
        const code = location(first).searchParams.get("code")!;
        const tokens = await provider.fetch(
          new Request(`${issuer}/connect/token`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` },
            body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
          }),
        );
        const idToken = ((await tokens.json()) as { id_token: string }).id_token;
        assert.ok(idToken.length > 500);
        const large = {
          ...known(),
          code_challenge: pkce().challenge,
          state: "s".repeat(2048),
          nonce: "n".repeat(256),
          login_hint: `${"l".repeat(240)}@example.com`,
          id_token_hint: idToken,
          prompt: "login",
          max_age: "3600",
          ui_locales: "de-CH de fr-CH fr en-GB en",
          acr_values: "urn:mace:incommon:iap:silver urn:mace:incommon:iap:bronze",
          response_mode: "query",
        };
        const asked = await provider.fetch(post(large, cookie), { clientAddress: "203.0.113.2" });
        assert.equal(location(asked).pathname, "/login", location(asked).toString());
        const returnUrl = location(asked).searchParams.get("returnUrl")!;
        assert.equal((await provider.getInteraction(returnUrl))?.loginHint, large.login_hint);
        const again = cookieOf((await provider.signIn(new Request(`${issuer}/login`), { sub: "1" })).cookies);
        const done = await provider.fetch(new Request(`${issuer}${returnUrl}`, { headers: { cookie: again } }));
        assert.ok(location(done).searchParams.get("code"), location(done).toString());
        assert.equal(location(done).searchParams.get("state"), large.state);

        // Known parameters too large to keep: refused to the client, nothing stored.
        const before = (await stored(store, "interaction")).length;
        const huge = await provider.fetch(post({ ...known(), code_challenge: pkce().challenge, state: "s", nonce: "n".repeat(4096), login_hint: "l".repeat(4096) }), { clientAddress: "203.0.113.3" });
        assert.equal(location(huge).origin + location(huge).pathname, REDIRECT);
        assert.equal(location(huge).searchParams.get("error"), "invalid_request");
        assert.equal(location(huge).searchParams.get("error_description"), "request too large");
        assert.equal((await stored(store, "interaction")).length, before);
      } finally {
        await provider.close();
      }
    });

    test(`19.g a logout request stores only what logout needs, under 8 KiB (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients });
      const endSession = (params: Record<string, string>, cookie: string) => new Request(`${issuer}/connect/endsession?${new URLSearchParams(params)}`, { headers: { cookie } });
      try {
        const cookie = cookieOf((await provider.signIn(new Request(`${issuer}/login`), { sub: "1" })).cookies);
        const junk: Record<string, string> = {};
        for (let i = 0; i < 40; i++) junk[`x${i}`] = "a".repeat(4096);
        const asked = await provider.fetch(endSession({ client_id: "web", post_logout_redirect_uri: BYE, state: "s".repeat(2048), ui_locales: "de en", ...junk }, cookie), { clientAddress: "203.0.113.1" });
        assert.equal(location(asked).pathname, "/logout");
        const [row, ...more] = await stored(store, "logout");
        assert.equal(more.length, 0);
        assert.ok(row!.length < 8192 && !row!.includes("x0") && !row!.includes("aaaa"));
        // A state and ui_locales no client sends would make a row over 8 KiB: refused, on a page, nothing stored.
        const huge = await provider.fetch(endSession({ client_id: "web", post_logout_redirect_uri: BYE, state: "s".repeat(4096), ui_locales: "u".repeat(4096) }, cookie), { clientAddress: "203.0.113.1" });
        assert.equal(huge.status, 400);
        assert.match(await huge.text(), /request too large/);
        assert.equal((await stored(store, "logout")).length, 1);
        assert.ok(await provider.getSession(new Request(`${issuer}/`, { headers: { cookie } })), "still signed in");
      } finally {
        await provider.close();
      }
    });

    test(`19.h over the total cap one IPv6 /48 gets only a few rows however many /64s it uses; a fresh IPv4 address is still admitted (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const provider = createProvider({ issuer, store, dataKey: randomBytes(32), clients, interaction: { maxPending: 20, maxPendingPerAddress: 5 } });
      const authorize = () => new Request(`${issuer}/connect/authorize?${new URLSearchParams({ ...known(), code_challenge: pkce().challenge })}`);
      const admitted = async (clientAddress: string) => {
        const response = await provider.fetch(authorize(), { clientAddress });
        if (location(response).pathname === "/login") return true;
        assert.equal(location(response).searchParams.get("error"), "temporarily_unavailable");
        return false;
      };
      try {
        for (let i = 0; i < 20; i++) assert.ok(await admitted(`198.51.100.${i % 4}`));
        let fromOne48 = 0;
        for (let i = 0; i < 400; i++) if (await admitted(`2001:db8:5:${i.toString(16)}::1`)) fromOne48++;
        assert.equal(fromOne48, 3, "admitted while the /48 holds fewer than 3, then refused");
        assert.equal((await stored(store, "interaction")).length, 23);
        assert.ok(await admitted("203.0.113.50"), "a fresh IPv4 address is still admitted");
        assert.ok(await admitted("2001:db8:6:1::1"), "so is another /48");
        // Under the total the per-address cap stays per /64: one /64 keeps 5, its neighbour in the /48 its own.
        const roomy = createProvider({ issuer, store: (await open(kind))!, dataKey: randomBytes(32), clients, interaction: { maxPending: 1000, maxPendingPerAddress: 5 } });
        try {
          for (let i = 0; i < 8; i++) await roomy.fetch(authorize(), { clientAddress: `2001:db8:7:1::${i + 1}` });
          const neighbour = await roomy.fetch(authorize(), { clientAddress: "2001:db8:7:2::1" });
          assert.equal(location(neighbour).pathname, "/login");
          for (let i = 0; i < 3; i++) await roomy.fetch(authorize(), { clientAddress: `2001:db8:7:1::${i + 20}` });
          assert.ok(await roomy.getInteraction(location(neighbour).searchParams.get("returnUrl")!), "a flood of one /64 drops none of its neighbour's");
        } finally {
          await roomy.close();
        }
      } finally {
        await provider.close();
      }
    });
  }
});

describe("F id_token_hint typ", () => {
  test("12.f an ID-token-shaped JWT of this server without typ JWT is no hint: the user is asked", async () => {
    const { DataProtector } = await import("@tessera/server");
    const { KeyManager } = await import("../packages/server/src/keys/key-manager.ts");
    const { SignJWT } = await import("jose");
    const issuer = "https://idp.test";
    const store = createMemoryStore();
    const dataKey = randomBytes(32).toString("base64url");
    const provider = createProvider({ issuer, store, dataKey, clients: [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid" }] });
    try {
      const { cookies, session } = await provider.signIn(new Request(`${issuer}/login`), { sub: "1" });
      const cookie = cookies.map((c) => c.split(";")[0]!).join("; ");
      const key = await new KeyManager(store.keys, new DataProtector(dataKey), ["RS256"], Date.now).signingKey();
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: issuer, sub: "1", aud: "web", sid: session.sid, iat: now, exp: now + 300 };
      const sign = (header: Record<string, string>) => new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey);
      const endSession = async (hint: string) => {
        const response = await provider.fetch(new Request(`${issuer}/connect/endsession?id_token_hint=${hint}`, { headers: { cookie } }));
        // A refused hint is an error page (400) or the logout prompt; never an immediate logout.
        return response.status === 302 ? new URL(response.headers.get("location")!).pathname : String(response.status);
      };
      for (const header of [{}, { typ: "jwt" }, { typ: "application/jwt" }]) {
        assert.ok(["/logout", "400"].includes(await endSession(await sign(header))), `not logged out for ${JSON.stringify(header)}`);
      }
      assert.ok(await provider.getSession(new Request(`${issuer}/`, { headers: { cookie } })), "still signed in");
      assert.equal(await endSession(await sign({ typ: "JWT" })), "/signedout", "a real ID token's header logs out at once");
    } finally {
      await provider.close();
    }
  });
});

describe("11.d, 11.f, 13.b server-side sessions under races and replays", () => {
  const open = storesFor("rekey");
  const issuer = "https://idp.test";
  const dataKey = randomBytes(32).toString("base64url");
  const make = (store: Store, enabled: boolean): Provider => createProvider({ issuer, store, dataKey, clients: [], serverSideSessions: { enabled } });
  const cookieHeader = (setCookies: string[]) => setCookies.map((c) => c.split(";")[0]!).join("; ");
  const request = (cookie: string) => new Request(`${issuer}/`, { headers: { cookie } });

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`11.d ten concurrent re-sign-ins of one user with one cookie: no error, one row per sid (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const provider = make(store, true);
      try {
        const first = await provider.signIn(new Request(`${issuer}/login`), { sub: "1", name: "Alice" });
        const cookie = cookieHeader(first.cookies);
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => provider.signIn(new Request(`${issuer}/login`, { headers: { cookie } }), { sub: "1", name: "Alice" })));
        const signedIn = results.map((r) => {
          assert.equal(r.status, "fulfilled", r.status === "rejected" ? String(r.reason) : "");
          return (r as PromiseFulfilledResult<Awaited<ReturnType<Provider["signIn"]>>>).value;
        });
        // All carry the session (and its sid) over: they compute the same successor key (see 11.g).
        assert.equal(signedIn.filter((s) => s.session.sid === first.session.sid).length, 10);
        const listed = (await provider.querySessions({ count: 50 })).sessions;
        assert.equal(new Set(listed.map((s) => s.sessionId)).size, listed.length, "at most one row per sid");
        assert.deepEqual(new Set(listed.map((s) => s.sessionId)), new Set(signedIn.map((s) => s.session.sid)));
        for (const s of signedIn) assert.equal((await provider.getSession(request(cookieHeader(s.cookies))))?.sid, s.session.sid);
        assert.equal(await provider.getSession(request(cookie)), undefined, "the pre-sign-in handle is dead");
      } finally {
        await provider.close();
      }
    });
  }


  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`11.g ten concurrent re-sign-ins with one cookie keep one session, its key and its clients; logout reaches them (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const rc = await receiver();
      const clients = [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid", backchannel_logout_uri: rc.url }];
      const provider = createProvider({ issuer, store, dataKey, clients, serverSideSessions: { enabled: true }, outbound: { allowLoopback: true } });
      try {
        const first = await provider.signIn(new Request(`${issuer}/login`), { sub: "1", name: "Alice" });
        const cookie = cookieHeader(first.cookies);
        const url = new URL(`${issuer}/connect/authorize`);
        url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" }).toString();
        const authorized = await provider.fetch(new Request(url, { headers: { cookie } }));
        assert.ok(new URL(authorized.headers.get("location")!).searchParams.get("code"), "web is in the session");
        assert.deepEqual((await store.sessions.getBySessionId(first.session.sid))?.clientIds, ["web"]);

        const results = await Promise.all(Array.from({ length: 10 }, () => provider.signIn(new Request(`${issuer}/login`, { headers: { cookie } }), { sub: "1", name: "Alice" })));
        const { DataProtector } = await import("@tessera/server");
        const protector = new DataProtector(dataKey);
        const keys = new Set<unknown>();
        for (const r of results) {
          const value = r.cookies[0]!.split(";")[0]!.split("=").slice(1).join("=");
          keys.add((await protector.openJwt("session-cookie", value, Math.floor(Date.now() / 1000)))?.ssk);
          assert.equal(r.session.sid, first.session.sid);
        }
        assert.equal(keys.size, 1, "every returned cookie carries the same key");
        assert.notEqual([...keys][0], undefined);
        const listed = (await provider.querySessions({ count: 50 })).sessions;
        assert.deepEqual(listed.map((s) => s.sessionId), [first.session.sid], "one row");
        assert.deepEqual(listed[0]!.clientIds, ["web"], "the original clients stay in the session");
        assert.equal(await provider.getSession(request(cookie)), undefined, "the pre-sign-in handle is dead");

        // Whichever cookie the browser kept, logout ends the one session and notifies its clients.
        const kept = cookieHeader(results[results.length - 1]!.cookies);
        assert.equal((await provider.getSession(request(kept)))?.sid, first.session.sid);
        await provider.endSession(new Request(`${issuer}/logout`, { method: "POST", headers: { cookie: kept } }));
        await until(() => rc.tokens.length === 1, "web's back-channel logout token");
        assert.equal(claimsOf(rc.tokens[0]!).sid, first.session.sid);
        assert.equal((await provider.querySessions({ count: 50 })).sessions.length, 0);
      } finally {
        await provider.close();
        await rc.close();
      }
    });
  }

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`11.f writes of a session racing its re-sign-in never store its sid twice (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const clients = [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid" }];
      const provider = createProvider({ issuer, store, dataKey, clients, serverSideSessions: { enabled: true } });
      try {
        const first = await provider.signIn(new Request(`${issuer}/login`), { sub: "1" });
        const cookie = cookieHeader(first.cookies);
        const authorize = () => {
          const url = new URL(`${issuer}/connect/authorize`);
          url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" }).toString();
          return provider.fetch(new Request(url, { headers: { cookie } })).then((r) => assert.ok(r.status < 500, `authorize ${r.status}`));
        };
        const signIn = () => provider.signIn(new Request(`${issuer}/login`, { headers: { cookie } }), { sub: "1" });
        const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? authorize() : signIn())));
        for (const r of results) assert.equal(r.status, "fulfilled", r.status === "rejected" ? String(r.reason) : "");
        const listed = (await provider.querySessions({ count: 50 })).sessions;
        assert.equal(new Set(listed.map((s) => s.sessionId)).size, listed.length, "at most one row per sid");
      } finally {
        await provider.close();
      }
    });
  }

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    test(`13.b an ended server-side session does not come back from its pre-migration cookie, nor overwrite a live record (${kind})`, async (t) => {
      const store = await open(kind);
      if (!store) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const cookieOnly = make(store, false);
      const on = make(store, true);
      try {
        const oldCookie = async (sub: string) => cookieHeader((await cookieOnly.signIn(new Request(`${issuer}/login`), { sub })).cookies);
        const sidOf = async (cookie: string) => (await on.getSession(request(cookie)))?.sid;

        // A live record is never overwritten by the stale cookie: its clients and expiry stay.
        const live = await oldCookie("1");
        const sid = (await sidOf(live))!;
        assert.ok(sid);
        const record = (await store.sessions.getBySessionId(sid))!;
        await store.sessions.put({ ...record, clientIds: ["x"], expires: record.expires + 1000 });
        const again = await Promise.all(Array.from({ length: 5 }, () => on.getSession(request(live))));
        assert.deepEqual(again.map((s) => s?.sid), Array(5).fill(sid), "still signed in");
        assert.deepEqual(again[0]!.clients, ["x"]);
        const after = (await store.sessions.getBySessionId(sid))!;
        assert.deepEqual(after.clientIds, ["x"]);
        assert.equal(after.expires, record.expires + 1000);

        // Revoked by an administrator.
        assert.equal(await on.removeSessions({ sessionId: sid }), 1);
        assert.equal(await sidOf(live), undefined, "revoked stays revoked");
        assert.equal((await on.querySessions({ count: 10, sessionId: sid })).sessions.length, 0);

        // Logged out.
        const loggedOut = await oldCookie("2");
        assert.ok(await sidOf(loggedOut));
        await on.endSession(request(loggedOut));
        assert.equal(await sidOf(loggedOut), undefined, "logged out stays logged out");

        // Another user signed in over it.
        const replaced = await oldCookie("3");
        const replacedSid = await sidOf(replaced);
        const other = await on.signIn(new Request(`${issuer}/login`, { headers: { cookie: replaced } }), { sub: "4" });
        assert.notEqual(other.session.sid, replacedSid);
        assert.equal(await sidOf(replaced), undefined, "the replaced session stays ended");

        const listed = (await on.querySessions({ count: 10 })).sessions;
        assert.deepEqual(listed.map((s) => s.subject), ["4"]);
      } finally {
        await on.close();
      }
    });
  }
});
