import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, mock } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { REDIRECT, RP, baseConfig, pkce } from "./support/fixtures.ts";

/** A back-channel receiver that records the sids it was told about. */
async function receiver() {
  const sids: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      const token = new URLSearchParams(body).get("logout_token") ?? "";
      sids.push(JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString() || "{}").sid);
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bc`, sids, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!condition()) throw new Error(`gave up waiting for ${what}`);
}

function sessionsConfig(backchannel: string, extra: Partial<TestHostConfig> = {}): TestHostConfig {
  const config = baseConfig();
  config.admin = { role: "admin" };
  config.serverSideSessions = { enabled: true, removeExpiredSessionsFrequency: 60 };
  config.authentication = { cookieLifetime: 3600, cookieSlidingExpiration: false };
  config.clients = [
    { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access tessera.admin", coordinate_lifetime_with_user_session: true, backchannel_logout_uri: backchannel },
    { client_id: "plain", client_secret: "plain-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access" },
    { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" },
    { client_id: "reader", client_secret: "reader-secret", grant_types: ["client_credentials"], scope: "api1.read" },
  ];
  return { ...config, ...extra };
}

/** Signs `user` in through the code flow for `client`; returns the browser and the token response. */
async function signIn(host: TestHost, user: [string, string], client = "web", browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch } })) {
  const { verifier, challenge } = pkce();
  const url = new URL(`${host.issuer}/connect/authorize`);
  url.search = new URLSearchParams({ client_id: client, redirect_uri: REDIRECT, response_type: "code", scope: client === "web" ? "openid profile offline_access" : "openid offline_access", code_challenge: challenge, code_challenge_method: "S256" }).toString();
  const stopAt = (u: URL) => u.origin === RP;
  let page = await browser.get(url, { stopAt });
  if (page.query("input[name=password]")) page = await browser.submitForm(page, { fields: { username: user[0], password: user[1] }, stopAt });
  const code = new URL(page.location!).searchParams.get("code")!;
  const tokens = await token(host, client, { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier });
  return { browser, tokens: tokens as { access_token: string; refresh_token: string; id_token: string }, sid: JSON.parse(Buffer.from(String(tokens.id_token).split(".")[1]!, "base64url").toString()).sid as string };
}

async function token(host: TestHost, client: string, form: Record<string, string>): Promise<Record<string, string>> {
  const secret = `${client === "admin-cli" ? "cli" : client}-secret`;
  const response = await host.fetch(
    new Request(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString("base64")}` },
      body: new URLSearchParams(form).toString(),
    }),
  );
  return (await response.json()) as Record<string, string>;
}

async function promptNone(host: TestHost, browser: TestBrowser): Promise<URLSearchParams> {
  const { challenge } = pkce();
  const url = new URL(`${host.issuer}/connect/authorize`);
  url.search = new URLSearchParams({ client_id: "plain", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: challenge, code_challenge_method: "S256", prompt: "none" }).toString();
  return new URL((await browser.get(url, { stopAt: (u) => u.origin === RP })).location!).searchParams;
}

describe("server-side sessions: admin API and page", () => {
  let host: TestHost;
  let bc: Awaited<ReturnType<typeof receiver>>;
  let adminToken: string;
  const api = (path: string, init: RequestInit = {}, bearer = adminToken) =>
    host.fetch(new Request(`${host.issuer}/admin/api${path}`, { ...init, headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) } }));

  before(async () => {
    bc = await receiver();
    host = await createTestHost(sessionsConfig(bc.url));
    adminToken = (await token(host, "admin-cli", { grant_type: "client_credentials" })).access_token!;
  });
  after(async () => {
    await host.close();
    await bc.close();
  });

  it("lists, filters and pages sessions through the API", async () => {
    await signIn(host, ["alice", "alice"]);
    await signIn(host, ["bob", "bob-password"]);
    await signIn(host, ["alice", "alice"]);
    const all = (await (await api("/sessions")).json()) as { sessions: Record<string, unknown>[]; next: string | null };
    assert.equal(all.sessions.length, 3);
    assert.deepEqual(Object.keys(all.sessions[0]!).sort(), ["clientIds", "created", "displayName", "expires", "renewed", "sessionId", "subject"]);
    assert.match(String(all.sessions[0]!.created), /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(all.sessions[0]!.clientIds, ["web"]);
    const bob = (await (await api("/sessions?subject=2")).json()) as { sessions: { displayName: string }[] };
    assert.deepEqual(bob.sessions.map((s) => s.displayName), ["Bob"]);
    assert.equal(((await (await api("/sessions?displayName=alice")).json()) as { sessions: unknown[] }).sessions.length, 2);
    const seen: string[] = [];
    let cursor = "";
    for (let i = 0; i < 5; i++) {
      const page = (await (await api(`/sessions?count=1${cursor ? `&cursor=${cursor}` : ""}`)).json()) as { sessions: { sessionId: string }[]; next: string | null };
      seen.push(...page.sessions.map((s) => s.sessionId));
      if (!page.next) break;
      cursor = page.next;
    }
    assert.equal(new Set(seen).size, 3);
    assert.equal((await api("/sessions?count=0")).status, 400);
  });

  it("revokes a session through the API: back-channel logout, dead refresh token, signed out browser", async () => {
    const victim = await signIn(host, ["bob", "bob-password"]);
    const response = await api(`/sessions/${victim.sid}`, { method: "DELETE" });
    assert.equal(response.status, 204);
    await until(() => bc.sids.includes(victim.sid), "the back-channel logout");
    assert.equal((await token(host, "web", { grant_type: "refresh_token", refresh_token: victim.tokens.refresh_token })).error, "invalid_grant");
    assert.equal((await promptNone(host, victim.browser)).get("error"), "login_required");
    assert.equal((await api(`/sessions/${victim.sid}`, { method: "DELETE" })).status, 404);
  });

  it("refuses the API without a token, with a token lacking the scope, and for non-admin users", async () => {
    assert.equal((await api("/sessions", {}, "")).status, 401);
    assert.equal((await api("/sessions", {}, "garbage")).status, 401);
    const reader = (await token(host, "reader", { grant_type: "client_credentials" })).access_token!;
    assert.equal((await api("/sessions", {}, reader)).status, 403);
    const { tokens: userTokens } = await signIn(host, ["bob", "bob-password"]);
    const bobAdmin = await token(host, "web", { grant_type: "refresh_token", refresh_token: userTokens.refresh_token });
    assert.equal((await api("/sessions", {}, bobAdmin.access_token)).status, 403, "bob's token has no tessera.admin scope");
  });

  it("serves the sessions page to admins only, and revokes from it", async () => {
    const admin = await signIn(host, ["alice", "alice"]);
    const bob = await signIn(host, ["bob", "bob-password"]);
    const page = await admin.browser.get(`${host.issuer}/serversidesessions?subject=2`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
    const row = page.query(`tr[data-session-id="${bob.sid}"]`);
    assert.ok(row, "bob's session is listed");
    for (const cell of ["subject", "display-name", "session-id", "created", "renewed", "expires"]) assert.ok(row.querySelector(`.${cell}`), cell);
    const after = await admin.browser.submitForm(page, { form: `tr[data-session-id="${bob.sid}"] form`, button: "button[name=revoke]" });
    assert.equal(after.query(`tr[data-session-id="${bob.sid}"]`), null);
    await until(() => bc.sids.includes(bob.sid), "the back-channel logout");
    assert.equal((await token(host, "web", { grant_type: "refresh_token", refresh_token: bob.tokens.refresh_token })).error, "invalid_grant");

    const nonAdmin = await signIn(host, ["bob", "bob-password"]);
    assert.equal((await nonAdmin.browser.get(`${host.issuer}/serversidesessions`)).status, 403);
    const forged = await nonAdmin.browser.post(`${host.issuer}/serversidesessions`, { sessionId: admin.sid, csrf: "x" });
    assert.equal(forged.status, 400);
    const anonymous = await new TestBrowser({ handlers: { [host.issuer]: host.fetch } }).get(`${host.issuer}/serversidesessions`);
    assert.ok(anonymous.query("input[name=password]"), "anonymous visitors get the login page");
  });
});

describe("server-side sessions: lifetimes", () => {
  it("slides the session on refresh for coordinating clients, and kills their tokens with it", async () => {
    let now = Date.now();
    const bc = await receiver();
    const host = await createTestHost(sessionsConfig(bc.url), { clock: () => now });
    try {
      const { tokens, sid } = await signIn(host, ["alice", "alice"]);
      const expiresOf = async () => (await host.provider.querySessions({ sessionId: sid, count: 1 })).sessions[0]?.expires;
      const before = (await expiresOf())!;
      now += 1800_000;
      const refreshed = await token(host, "web", { grant_type: "refresh_token", refresh_token: tokens.refresh_token });
      assert.ok(refreshed.access_token);
      assert.equal(await expiresOf(), before + 1800, "the refresh extended the session");
      const introspect = async (value: string) => {
        const response = await host.fetch(new Request(`${host.issuer}/connect/introspect`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` }, body: `token=${value}` }));
        return ((await response.json()) as { active: boolean }).active;
      };
      assert.equal(await introspect(refreshed.access_token!), true);
      // The session ends (expires without being used): the client's tokens die with it.
      now += 3700_000;
      assert.equal(await introspect(refreshed.access_token!), false);
      assert.equal(await introspect(refreshed.refresh_token!), false);
      assert.equal((await token(host, "web", { grant_type: "refresh_token", refresh_token: refreshed.refresh_token! })).error, "invalid_grant");
    } finally {
      await host.close();
      await bc.close();
    }
  });

  for (const trigger of [true, false]) {
    it(`removes expired sessions on schedule, ${trigger ? "with" : "without"} back-channel logout`, async () => {
      mock.timers.enable({ apis: ["setInterval"] });
      let now = Date.now();
      const bc = await receiver();
      try {
        const host = await createTestHost(sessionsConfig(bc.url, { serverSideSessions: { enabled: true, removeExpiredSessionsFrequency: 60, expiredSessionsTriggerBackchannelLogout: trigger } }), { clock: () => now });
        const { sid } = await signIn(host, ["alice", "alice"]);
        now += 3601_000;
        mock.timers.tick(60_000);
        for (let i = 0; i < 200 && (await host.provider.querySessions({ count: 10 })).sessions.length > 0; i++) await new Promise((r) => setImmediate(r));
        assert.equal((await host.provider.querySessions({ count: 10 })).sessions.length, 0);
        await host.close(); // waits for back-channel deliveries in flight
        assert.deepEqual(bc.sids, trigger ? [sid] : []);
      } finally {
        mock.timers.reset();
        await bc.close();
      }
    });
  }
});

describe("server-side sessions: persistence and migration", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-sss-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const dataKey = randomBytes(32).toString("base64url");

  const hostOn = (db: string, enabled: boolean) =>
    createTestHost({ ...sessionsConfig("http://127.0.0.1:9/unused"), store: { kind: "sqlite", path: join(dir, db) }, dataKey, serverSideSessions: { enabled } });

  it("survives a restart with the SQLite store", async () => {
    const first = await hostOn("restart.db", true);
    const { browser, sid } = await signIn(first, ["alice", "alice"]);
    await first.close();
    const second = await hostOn("restart.db", true);
    try {
      const rebound = new TestBrowser({ handlers: { [second.issuer]: second.fetch } });
      for (const cookie of browser.cookies.all()) rebound.cookies.set(cookie);
      assert.ok((await promptNone(second, rebound)).get("code"), "still signed in");
      assert.equal((await second.provider.querySessions({ sessionId: sid, count: 1 })).sessions.length, 1);
    } finally {
      await second.close();
    }
  });

  it("migrates cookie-only sessions when switched on, and back when switched off, signing nobody out", async () => {
    const cookieOnly = await hostOn("migrate.db", false);
    const { browser, sid } = await signIn(cookieOnly, ["alice", "alice"]);
    const cookieBefore = browser.cookies.get("__Host-tessera.session", cookieOnly.issuer)!.value;
    assert.equal((await cookieOnly.provider.querySessions({ count: 10 })).sessions.length, 0);
    await cookieOnly.close();

    const on = await hostOn("migrate.db", true);
    const rebind = (host: TestHost) => {
      const next = new TestBrowser({ handlers: { [host.issuer]: host.fetch } });
      for (const cookie of browser.cookies.all()) next.cookies.set(cookie);
      return next;
    };
    let current = rebind(on);
    assert.ok((await promptNone(on, current)).get("code"), "still signed in after switching on");
    const listed = (await on.provider.querySessions({ count: 10 })).sessions;
    assert.deepEqual(listed.map((s) => s.sessionId), [sid], "the session moved into the store, same sid");
    const keyCookie = current.cookies.get("__Host-tessera.session", on.issuer)!.value;
    assert.ok(keyCookie.length < cookieBefore.length, "the cookie now carries only a key");
    await on.close();

    const off = await hostOn("migrate.db", false);
    current = (() => {
      const next = new TestBrowser({ handlers: { [off.issuer]: off.fetch } });
      for (const cookie of current.cookies.all()) next.cookies.set(cookie);
      return next;
    })();
    try {
      assert.ok((await promptNone(off, current)).get("code"), "still signed in after switching off");
      assert.equal((await off.provider.querySessions({ count: 10 })).sessions.length, 0, "the record was handed back to the cookie");
      assert.ok((await promptNone(off, current)).get("code"), "and stays signed in");
    } finally {
      await off.close();
    }
  });
});
