import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import type { TesseraEvent } from "@tessera/server";
import { REDIRECT, RP, baseConfig, pkce } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

const postgres = await startTestPostgres();
after(() => postgres?.close());

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

function accountsConfig(backchannel: string, extra: Partial<TestHostConfig> = {}): TestHostConfig {
  const config = baseConfig();
  config.admin = { role: "admin" };
  config.serverSideSessions = { enabled: true };
  // Cheap hashes keep the test fast; the parameters are what the rehash compares against.
  config.accounts = { passwordHashing: { memoryCost: 1024, timeCost: 1 } };
  config.clients = [
    { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile email offline_access", backchannel_logout_uri: backchannel },
    { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" },
    { client_id: "reader", client_secret: "reader-secret", grant_types: ["client_credentials"], scope: "api1.read" },
  ];
  return { ...config, ...extra };
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

const browserFor = (host: TestHost) => new TestBrowser({ handlers: { [host.issuer]: host.fetch } });

/** Signs in through the code flow; returns the browser, tokens and sid, or the login page when refused. */
async function signIn(host: TestHost, username: string, password: string, browser = browserFor(host)) {
  const { verifier, challenge } = pkce();
  const url = new URL(`${host.issuer}/connect/authorize`);
  url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile email offline_access", code_challenge: challenge, code_challenge_method: "S256" }).toString();
  const stopAt = (u: URL) => u.origin === RP;
  let page = await browser.get(url, { stopAt });
  if (page.query("input[name=password]")) page = await browser.submitForm(page, { fields: { username, password }, stopAt });
  if (!page.location?.startsWith(RP)) return { browser, refused: page };
  const code = new URL(page.location).searchParams.get("code")!;
  const tokens = await token(host, "web", { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier });
  const claims = JSON.parse(Buffer.from(String(tokens.id_token).split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
  return { browser, tokens, sid: claims.sid as string, claims };
}

async function promptNone(host: TestHost, browser: TestBrowser): Promise<URLSearchParams> {
  const { challenge } = pkce();
  const url = new URL(`${host.issuer}/connect/authorize`);
  url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: challenge, code_challenge_method: "S256", prompt: "none" }).toString();
  return new URL((await browser.get(url, { stopAt: (u) => u.origin === RP })).location!).searchParams;
}

type UserJson = { sub: string; username: string; email: string | null; emailVerified: boolean; claims: Record<string, unknown>; disabled: boolean; source: string; hasPassword: boolean; created: string | null; updated: string | null };

describe("20 accounts: admin API, sign-in and disabling", () => {
  let host: TestHost;
  let bc: Awaited<ReturnType<typeof receiver>>;
  let adminToken: string;
  const events: TesseraEvent[] = [];
  const api = (path: string, init: { method?: string; json?: unknown; body?: string; contentType?: string } = {}, bearer = adminToken) =>
    host.fetch(
      new Request(`${host.issuer}/admin/api${path}`, {
        method: init.method ?? "GET",
        headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(init.json !== undefined || init.body !== undefined ? { "content-type": init.contentType ?? "application/json" } : {}) },
        body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      }),
    );
  const create = async (body: Record<string, unknown>) => {
    const response = await api("/users", { method: "POST", json: body });
    assert.equal(response.status, 201, await response.clone().text());
    return (await response.json()) as UserJson;
  };

  before(async () => {
    bc = await receiver();
    host = await createTestHost(accountsConfig(bc.url), { events: (e) => events.push(e) });
    adminToken = (await token(host, "admin-cli", { grant_type: "client_credentials" })).access_token!;
  });
  after(async () => {
    await host.close();
    await bc.close();
  });

  it("20 admin API: creates, reads, lists, searches, pages, changes and deletes users", async () => {
    const carol = await create({ username: "carol", email: "Carol@Example.com", name: "Carol Jones", role: "editor", password: "carol-password" });
    assert.match(carol.sub, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(carol.emailVerified, true, "an email given by an administrator counts as verified");
    assert.deepEqual(carol.claims, { name: "Carol Jones", role: "editor" });
    assert.equal(carol.source, "store");
    assert.equal(carol.hasPassword, true);
    assert.ok(!("passwordHash" in carol) && !JSON.stringify(carol).includes("argon2"), "never the hash");
    assert.deepEqual(await (await api(`/users/${carol.sub}`)).json(), carol);
    for (let i = 0; i < 3; i++) await create({ username: `pager${i}`, name: `Pager ${i}` });
    const listed = (await (await api("/users")).json()) as { users: UserJson[]; next: string | null };
    assert.deepEqual(listed.users.slice(0, 2).map((u) => [u.username, u.source]), [["alice", "config"], ["bob", "config"]]);
    assert.ok(listed.users.some((u) => u.sub === carol.sub));
    const search = (await (await api("/users?query=JONES")).json()) as { users: UserJson[] };
    assert.deepEqual(search.users.map((u) => u.username), ["carol"]);
    const seen: string[] = [];
    let cursor = "";
    for (let i = 0; i < 10; i++) {
      const page = (await (await api(`/users?query=pager&count=2${cursor ? `&cursor=${cursor}` : ""}`)).json()) as { users: UserJson[]; next: string | null };
      seen.push(...page.users.map((u) => u.username));
      if (!page.next) break;
      cursor = page.next;
    }
    // Creation order (within one second by sub): each once, none left out.
    assert.deepEqual([...seen].sort(), ["pager0", "pager1", "pager2"]);
    const patched = await api(`/users/${carol.sub}`, { method: "PATCH", json: { email: "carol@new.example", claims: { name: "Carol J." } } });
    assert.equal(patched.status, 200);
    const carol2 = (await patched.json()) as UserJson;
    assert.equal(carol2.email, "carol@new.example");
    assert.equal(carol2.emailVerified, false, "a changed address is not verified");
    assert.deepEqual(carol2.claims, { name: "Carol J." });
    assert.equal((await api(`/users/${carol.sub}`, { method: "DELETE" })).status, 204);
    assert.equal((await api(`/users/${carol.sub}`)).status, 404);
    assert.equal((await api(`/users/${carol.sub}`, { method: "DELETE" })).status, 404);
    assert.equal((await api(`/users/${carol.sub}`, { method: "PATCH", json: { disabled: true } })).status, 404);
    const types = events.filter((e) => e.type.startsWith("account.")).map((e) => e.type);
    assert.deepEqual(types.slice(0, 6), ["account.created", "account.created", "account.created", "account.created", "account.updated", "account.deleted"]);
  });

  it("20 admin API: config users are read-only (409), clashes are 409, bad input is 400, never 5xx", async () => {
    assert.equal((await api("/users/1", { method: "PATCH", json: { disabled: true } })).status, 409);
    assert.equal((await api("/users/1", { method: "DELETE" })).status, 409);
    assert.equal(((await (await api("/users/1")).json()) as UserJson).source, "config");
    const clash = await api("/users", { method: "POST", json: { username: "ALICE", password: "long enough" } });
    assert.equal(clash.status, 409);
    assert.equal(((await clash.json()) as { error: string }).error, "conflict");
    await create({ username: "dave", email: "dave@example.com" });
    assert.equal((await api("/users", { method: "POST", json: { username: "Dave" } })).status, 409);
    assert.equal((await api("/users", { method: "POST", json: { username: "dave2", email: "DAVE@example.com" } })).status, 409, "emails are unique among stored accounts");
    const bad: unknown[] = [
      { username: "x".repeat(101) },
      { username: "nul\u0000" },
      { username: "lone\uD800" },
      { username: "ok", email: "not an address" },
      { username: "ok", email: `${"e".repeat(300)}@example.com` },
      { username: "ok", password: "short" },
      { username: "ok", password: "x".repeat(2000) },
      { username: "ok", claims: { sub: "1" } },
      { username: "ok", claims: { name: "\uDC00" } },
      { username: "ok", claims: [1] },
      { username: 5 },
      { username: "ok", unknown: true },
      {},
      [],
      "text",
    ];
    for (const body of bad) {
      const response = await api("/users", { method: "POST", json: body });
      assert.equal(response.status, 400, `${JSON.stringify(body)} → ${await response.clone().text()}`);
      assert.equal(((await response.json()) as { error: string }).error, "invalid_request");
    }
    assert.equal((await api("/users", { method: "POST", body: "{not json" })).status, 400);
    assert.equal((await api("/users", { method: "POST", body: "username=x", contentType: "application/x-www-form-urlencoded" })).status, 400);
    assert.equal((await api("/users?count=0")).status, 400);
    assert.equal((await api("/users?count=abc")).status, 400);
    assert.equal((await api(`/users?query=${encodeURIComponent("\u0000")}`)).status, 200);
    assert.equal((await api("/users?cursor=garbage")).status, 200);
    assert.equal((await api(`/users/${"s".repeat(400)}`)).status, 404);
    assert.equal((await api(`/users/${encodeURIComponent("\u0000")}`)).status, 404);
    const dave = ((await (await api("/users?query=dave")).json()) as { users: UserJson[] }).users[0]!;
    assert.equal((await api(`/users/${dave.sub}`, { method: "PATCH", json: { username: "alice" } })).status, 409, "a config username");
    assert.equal((await api(`/users/${dave.sub}`, { method: "PATCH", json: { disabled: "yes" } })).status, 400);
    assert.equal((await api(`/users/${dave.sub}`, { method: "PATCH", json: { email: "\u0000@x.y" } })).status, 400);
    assert.equal((await api(`/users/${dave.sub}`, { method: "PATCH", json: { claims: { name: "Changed" }, password: "short" } })).status, 400);
    assert.equal(((await (await api(`/users/${dave.sub}`)).json()) as UserJson).claims.name, undefined, "a refused PATCH changes nothing");
  });

  it("20 admin API: refused without a token, without the scope, and for a user who is not an administrator", async () => {
    assert.equal((await api("/users", {}, "")).status, 401);
    const reader = (await token(host, "reader", { grant_type: "client_credentials" })).access_token!;
    assert.equal((await api("/users", {}, reader)).status, 403);
    assert.equal((await api("/users", { method: "POST", json: { username: "eve" } }, reader)).status, 403);
  });

  it("20 a stored user signs in with the login page; a wrong password and an unknown user get the same answer", async () => {
    const erin = await create({ username: "erin", email: "erin@example.com", name: "Erin", password: "erin-password" });
    const signed = await signIn(host, "ERIN", "erin-password");
    assert.equal(signed.claims?.sub, erin.sub);
    const userinfo = await host.fetch(new Request(`${host.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${signed.tokens!.access_token}` } }));
    const info = (await userinfo.json()) as Record<string, unknown>;
    assert.equal(info.email, "erin@example.com");
    assert.equal(info.email_verified, true);
    assert.equal(info.name, "Erin");
    const wrong = await signIn(host, "erin", "wrong-password");
    const unknown = await signIn(host, "nobody-here", "wrong-password");
    assert.equal(wrong.refused?.text("#login-error"), unknown.refused?.text("#login-error"));
    assert.ok(wrong.refused?.text("#login-error"));
  });

  it("20 a disabled user cannot sign in, his sessions end (back-channel logout, tokens revoked), and enabling lets him back", async () => {
    const frank = await create({ username: "frank", password: "frank-password" });
    const first = await signIn(host, "frank", "frank-password");
    const second = await signIn(host, "frank", "frank-password");
    assert.ok(first.sid && second.sid);
    const disabled = await api(`/users/${frank.sub}`, { method: "PATCH", json: { disabled: true } });
    assert.equal(disabled.status, 200);
    assert.equal(((await disabled.json()) as UserJson).disabled, true);
    await until(() => bc.sids.includes(first.sid!) && bc.sids.includes(second.sid!), "back-channel logout of both sessions");
    assert.equal((await token(host, "web", { grant_type: "refresh_token", refresh_token: first.tokens!.refresh_token! })).error, "invalid_grant");
    assert.equal((await promptNone(host, first.browser)).get("error"), "login_required");
    const sessions = (await (await api(`/sessions?subject=${frank.sub}`)).json()) as { sessions: unknown[] };
    assert.equal(sessions.sessions.length, 0);
    const refused = await signIn(host, "frank", "frank-password");
    assert.equal(refused.refused?.text("#login-error"), "Invalid username or password.", "the same answer as a wrong password");
    assert.ok(events.some((e) => e.type === "account.disabled" && "sub" in e && e.sub === frank.sub));
    assert.equal((await api(`/users/${frank.sub}`, { method: "PATCH", json: { disabled: false } })).status, 200);
    assert.ok((await signIn(host, "frank", "frank-password")).sid, "enabled again: signs in");
    assert.equal((await promptNone(host, first.browser)).get("error"), "login_required", "the old session stays ended");
  });

  it("20 stored accounts are throttled like config accounts: locked after perAccount failures, the right password included", async () => {
    await create({ username: "grace", password: "grace-password" });
    const browser = browserFor(host);
    for (let i = 0; i < 5; i++) await signIn(host, "grace", `wrong-${i}`, browser);
    const locked = await signIn(host, "GRACE", "grace-password", browserFor(host));
    assert.match(locked.refused?.text("#login-error") ?? "", /Too many failed sign-ins/);
  });
});

describe("20 accounts: cookie-only sessions and the admin pages", () => {
  it("20 a cookie-only session of a disabled user ends at its next use", async () => {
    const host = await createTestHost({ ...accountsConfig("http://127.0.0.1:9/bc"), serverSideSessions: { enabled: false } });
    try {
      const app = host;
      const adminToken = (await token(host, "admin-cli", { grant_type: "client_credentials" })).access_token!;
      const created = await app.fetch(
        new Request(`${host.issuer}/admin/api/users`, { method: "POST", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ username: "heidi", password: "heidi-password" }) }),
      );
      const heidi = (await created.json()) as UserJson;
      const signed = await signIn(host, "heidi", "heidi-password");
      assert.equal((await promptNone(host, signed.browser)).get("code") !== null, true, "signed in");
      await app.fetch(new Request(`${host.issuer}/admin/api/users/${heidi.sub}`, { method: "PATCH", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ disabled: true }) }));
      assert.equal((await promptNone(host, signed.browser)).get("error"), "login_required");
      const home = await signed.browser.get(`${host.issuer}/`);
      assert.equal(home.query("#signed-in"), null, "the host's pages see no session either");
      await app.fetch(new Request(`${host.issuer}/admin/api/users/${heidi.sub}`, { method: "PATCH", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ disabled: false }) }));
      assert.equal((await promptNone(host, signed.browser)).get("error"), "login_required", "the cookie stays dead after re-enabling");
    } finally {
      await host.close();
    }
  });

  it("20 argon2id rehash: after passwordHashing changes, the next sign-in replaces the stored hash", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-rehash-"));
    const common = { ...accountsConfig("http://127.0.0.1:9/bc"), store: { kind: "sqlite" as const, path: join(dir, "tessera.db") }, dataKey: "A".repeat(43) };
    try {
      const first = await createTestHost({ ...common, accounts: { passwordHashing: { memoryCost: 1024, timeCost: 1 } } });
      const mallory = await first.users.create({ username: "mallory", password: "mallory-password" }, "admin");
      assert.match((await first.users.store!.findBySubject(mallory.sub))!.passwordHash!, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
      await first.close();
      const second = await createTestHost({ ...common, accounts: { passwordHashing: { memoryCost: 2048, timeCost: 2 } } });
      try {
        assert.equal((await signIn(second, "mallory", "wrong-password")).sid, undefined);
        assert.match((await second.users.store!.findBySubject(mallory.sub))!.passwordHash!, /m=1024,t=1/, "a failed sign-in changes nothing");
        assert.ok((await signIn(second, "mallory", "mallory-password")).sid);
        assert.match((await second.users.store!.findBySubject(mallory.sub))!.passwordHash!, /^\$argon2id\$v=19\$m=2048,t=2,p=1\$/);
        assert.ok((await signIn(second, "mallory", "mallory-password")).sid, "the new hash verifies");
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const kind of ["memory", "sqlite", "postgres"] as const) {
    const skip = kind === "postgres" && !postgres ? "PostgreSQL is not installed (set CI=true to make this a failure)" : false;
    it(`20 admin pages (${kind} store): list, search, a user's page, disable/enable, reset second factors, revoke a session; admins only, with CSRF`, { skip }, async () => {
      const dir = mkdtempSync(join(tmpdir(), "tessera-accounts-"));
      const bc = await receiver();
      const store = kind === "memory" ? { kind: "memory" as const } : kind === "sqlite" ? { kind: "sqlite" as const, path: join(dir, "tessera.db") } : { kind: "postgres" as const, url: await postgres!.createDatabase() };
      const host = await createTestHost({ ...accountsConfig(bc.url), store });
      try {
        const adminToken = (await token(host, "admin-cli", { grant_type: "client_credentials" })).access_token!;
        const post = (body: unknown) =>
          host.fetch(new Request(`${host.issuer}/admin/api/users`, { method: "POST", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify(body) }));
        const ivan = (await (await post({ username: "ivan", email: "ivan@example.com", name: "Ivan Petrov", password: "ivan-password" })).json()) as UserJson;
        await post({ username: "judy", name: "Judy", password: "judy-password" });
        // Bad input reaches this store as 400/404, never a 5xx.
        for (const body of [{ username: "nul\u0000" }, { username: "lone\uD800" }, { username: "x".repeat(101) }, { username: "ok1", claims: { name: "\u0000" } }, { username: "ok2", email: `${"e".repeat(250)}@example.com` }, { username: "\uFDFA".repeat(50) }]) {
          assert.equal((await post(body)).status, 400, JSON.stringify(body));
        }
        const get = (path: string) => host.fetch(new Request(`${host.issuer}/admin/api/users${path}`, { headers: { authorization: `Bearer ${adminToken}` } }));
        for (const path of [`/${encodeURIComponent("\u0000")}`, `/${"s".repeat(300)}`, "/%ED%A0%80", "/%FF"]) assert.ok([400, 404].includes((await get(path)).status), path);
        for (const query of ["%00", "%ED%B0%80", "%FF", "%25_!", "x".repeat(200)]) assert.ok([200, 400].includes((await get(`?query=${query}`)).status), query);
        const ivanSession = await signIn(host, "ivan", "ivan-password");
        const admin = await signIn(host, "alice", "alice");
        const home = await admin.browser.get(`${host.issuer}/`);
        assert.ok(home.query(`#admin-links a[href="/admin/users"]`), "the home page links admins to the users page");
        const list = await admin.browser.get(`${host.issuer}/admin/users`);
        assert.equal(list.status, 200);
        assert.match(list.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
        assert.ok(list.query(`tr[data-sub="${ivan.sub}"]`));
        assert.ok(list.query(`tr[data-sub="1"] .source`)?.textContent?.includes("config"));
        const searched = await admin.browser.submitForm(list, { form: "#search", fields: { query: "petrov" } });
        assert.deepEqual([...searched.document.querySelectorAll("#users tbody tr")].map((r) => r.getAttribute("data-sub")), [ivan.sub]);
        const page = await admin.browser.get(`${host.issuer}/admin/users/${ivan.sub}`);
        assert.equal(page.text("#status"), "active");
        assert.match(page.text("#claims"), /Ivan Petrov/);
        assert.ok(page.query(`tr[data-session-id="${ivanSession.sid}"]`), "his session is listed");
        // Second factors (as the mfa feature stores them) are reset from the page.
        const store = host.users.store!;
        await store.addCredential({ id: `cred-${ivan.sub}`, subject: ivan.sub, type: "passkey", secret: "pk", counter: 0, createdAt: 1 });
        await store.addCredential({ id: `totp-${ivan.sub}`, subject: ivan.sub, type: "totp", secret: "jwe", counter: 0, createdAt: 1 });
        const withFactors = await admin.browser.get(`${host.issuer}/admin/users/${ivan.sub}`);
        assert.equal(withFactors.text("#second-factors"), "2");
        const reset = await admin.browser.submitForm(withFactors, { form: "form:has(button[value=reset-second-factors])", button: "button[value=reset-second-factors]" });
        assert.equal(reset.text("#second-factors"), "0");
        assert.deepEqual(await store.listCredentials(ivan.sub), []);
        // Revoke his session from his page: back-channel logout, refresh token dead.
        const revoked = await admin.browser.submitForm(reset, { form: `tr[data-session-id="${ivanSession.sid}"] form`, button: "button[name=revoke]" });
        assert.equal(revoked.query(`tr[data-session-id="${ivanSession.sid}"]`), null);
        await until(() => bc.sids.includes(ivanSession.sid!), "the back-channel logout");
        assert.equal((await token(host, "web", { grant_type: "refresh_token", refresh_token: ivanSession.tokens!.refresh_token! })).error, "invalid_grant");
        // Disable from the page: his new session ends, sign-in refused; enable again.
        const again = await signIn(host, "ivan", "ivan-password");
        const before = await admin.browser.get(`${host.issuer}/admin/users/${ivan.sub}`);
        const disabled = await admin.browser.submitForm(before, { form: "form:has(button[value=disable])", button: "button[value=disable]" });
        assert.equal(disabled.text("#status"), "disabled");
        await until(() => bc.sids.includes(again.sid!), "the back-channel logout on disable");
        assert.equal((await promptNone(host, again.browser)).get("error"), "login_required");
        assert.ok((await signIn(host, "ivan", "ivan-password")).refused);
        const enabled = await admin.browser.submitForm(disabled, { form: "form:has(button[value=enable])", button: "button[value=enable]" });
        assert.equal(enabled.text("#status"), "active");
        assert.ok((await signIn(host, "ivan", "ivan-password")).sid);
        // Config users: read-only page, no buttons.
        const alicePage = await admin.browser.get(`${host.issuer}/admin/users/1`);
        assert.equal(alicePage.query("button[value=disable]"), null);
        assert.equal((await admin.browser.post(`${host.issuer}/admin/users/1`, { action: "disable", csrf: alicePage.query("input[name=csrf]")!.getAttribute("value")! })).status, 409);
        assert.equal((await admin.browser.get(`${host.issuer}/admin/users/${encodeURIComponent("no such\u0000")}`)).status, 404);
        // Not for others: a signed-in non-admin gets 403, a forged post 400, anonymous the login page.
        const judy = await signIn(host, "judy", "judy-password");
        assert.equal((await judy.browser.get(`${host.issuer}/admin/users`)).status, 403);
        assert.equal((await judy.browser.get(`${host.issuer}/admin/users/${ivan.sub}`)).status, 403);
        assert.equal((await judy.browser.post(`${host.issuer}/admin/users/${ivan.sub}`, { action: "disable", csrf: "forged" })).status, 400);
        assert.equal((await admin.browser.post(`${host.issuer}/admin/users/${ivan.sub}`, { action: "disable" })).status, 400, "no CSRF token");
        const anonymous = await browserFor(host).get(`${host.issuer}/admin/users`);
        assert.ok(anonymous.query("input[name=password]"));
      } finally {
        await host.close();
        await bc.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
