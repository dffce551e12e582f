import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { serve } from "@hono/node-server";
import { TestBrowser, createTestHost, type TestHost, type TestPage } from "@tessera/testing";
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from "jose";
import { ExternalProviderRegistry } from "../packages/server/src/federation/external-providers.ts";
import { FederationService, upstreamAmr } from "../packages/server/src/federation/federation-service.ts";
import type { AccountLink } from "../packages/server/src/stores/accounts.ts";
import { MemoryAccountStore } from "../packages/server/src/stores/memory/accounts.ts";
import { RP, REDIRECT, pkce } from "./support/fixtures.ts";

type User = { sub: string; username: string; password: string; claims: Record<string, unknown> };

function upstreamConfig(local: string, users: User[]) {
  return {
    users,
    tokens: { idTokenLifetime: 3600 },
    clients: [{ client_id: "tessera", client_secret: "tessera-secret", redirect_uris: ["up", "trusted", "plain", "two", "stored", "q", "fp"].flatMap((id) => [`${local}/federation/${id}/callback`, `https://tessera.test/federation/${id}/callback`]), scope: "openid profile email" }],
  };
}
const user = (sub: string, username: string, email: string, verified: boolean): User => ({ sub, username, password: username, claims: { name: username, email, email_verified: verified } });

describe("21 review of external identity providers", () => {
  let local: TestHost, up: TestHost, two: TestHost;
  let front: ReturnType<typeof serve>;
  let localIssuer = "";
  before(async () => {
    let handler: ((r: Request) => Promise<Response>) | undefined;
    front = await new Promise((resolve) => {
      const s = serve({ fetch: (r: Request) => (handler ? handler(r) : Promise.resolve(new Response("", { status: 503 }))), port: 0, hostname: "127.0.0.2" }, () => resolve(s));
    });
    localIssuer = `http://127.0.0.2:${(front.address() as AddressInfo).port}`;
    up = await createTestHost(upstreamConfig(localIssuer, [
      user("u-carol", "carol", "carol@example.com", true),
      user("u-dave", "dave", "dave@example.com", true),
      // Lets its users assert any "verified" email (a provider without trustEmail).
      user("u-mallory", "mallory", "frank@example.com", true),
      user("u-eve", "eve", "ceo@example.com", false),
      user("u-grace", "grace", "grace@example.com", true),
      user("u-henry", "henry", "henry@example.com", true),
    ]), { listen: true });
    two = await createTestHost(upstreamConfig(localIssuer, [
      user("t-frank", "frank", "frank@example.com", true),
      // Another mailbox, NFKC + lower case equal to carol@example.com.
      user("t-wide", "wide", "ＣＡＲＯＬ@example.com", true),
      // The same mailbox as grace's, the domain in capitals.
      user("t-grace", "grace", "grace@EXAMPLE.COM", true),
      // The address of a config user.
      user("t-alice", "alice", "alice@example.com", true),
      // An unverified address nobody here has.
      user("t-ivan", "ivan", "ivan@example.com", false),
    ]), { listen: true });
    local = await createTestHost({
      issuer: localIssuer,
      serverSideSessions: { enabled: true },
      admin: { role: "admin" },
      users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice", email: "Alice@example.com" } }],
      clients: [
        { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid profile email" },
        { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" },
      ],
      externalProviders: [
        { id: "up", displayName: "Upstream", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret" },
        { id: "trusted", displayName: "Trusted", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret", trustEmail: true },
        { id: "plain", authorization_endpoint: `${up.issuer}/connect/authorize`, token_endpoint: `${up.issuer}/connect/token`, userinfo_endpoint: `${up.issuer}/connect/userinfo`, client_id: "tessera", client_secret: "tessera-secret", scope: "openid profile", claims: { sub: "sub", name: "name" } },
        { id: "two", issuer: two.issuer, client_id: "tessera", client_secret: "tessera-secret", linking: "verified-email" },
      ],
    }, { logger: { info() {}, warn() {}, error: (o: object) => process.env.FED_DEBUG && console.error(o) } });
    handler = local.fetch;
  });
  after(async () => {
    await local.close();
    await up.close();
    await two.close();
    await new Promise<void>((r) => front.close(() => r()));
  });

  const authorizeUrl = (params: Record<string, string> = {}) => {
    const url = new URL(`${localIssuer}/connect/authorize`);
    const { challenge, verifier } = pkce();
    for (const [k, v] of Object.entries({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile email", state: "s1", nonce: "n1", code_challenge: challenge, code_challenge_method: "S256", ...params })) url.searchParams.set(k, v);
    return { url, verifier };
  };
  const atRp = (u: URL) => u.origin === RP;
  const atCallback = (u: URL) => u.pathname.includes("/federation/") && u.pathname.endsWith("/callback");
  async function resume(b: TestBrowser, page: TestPage): Promise<TestPage> {
    const next = page.status === 200 ? page.query("a#continue")?.getAttribute("href") : undefined;
    return next ? b.get(next, { stopAt: atRp }) : page;
  }
  async function signIn(b: TestBrowser, provider: string, username: string) {
    const { url, verifier } = authorizeUrl({ acr_values: `idp:${provider}` });
    let page = await b.get(url, { stopAt: atRp });
    if (page.query("input[name=password]")) page = await b.submitForm(page, { fields: { username, password: username }, stopAt: atRp });
    return { page: await resume(b, page), verifier };
  }
  async function claimsOf(page: TestPage, verifier: string): Promise<Record<string, unknown> & { userinfo: Record<string, unknown> }> {
    assert.ok(page.location?.startsWith(REDIRECT), `not at the RP: ${page.status} ${page.url} ${page.query("#error_description")?.textContent ?? page.body.slice(0, 300)}`);
    const code = new URL(page.location!).searchParams.get("code")!;
    const r = await local.fetch(new Request(`${localIssuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` }, body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString() }));
    const body = (await r.json()) as { id_token: string; access_token: string };
    const userinfo = (await (await local.fetch(new Request(`${localIssuer}/connect/userinfo`, { headers: { authorization: `Bearer ${body.access_token}` } }))).json()) as Record<string, unknown>;
    return { ...decodeJwt(body.id_token), userinfo };
  }
  async function subOf(provider: string, username: string): Promise<string> {
    const s = await signIn(new TestBrowser(), provider, username);
    return String((await claimsOf(s.page, s.verifier)).sub);
  }
  function refused(page: TestPage, code = "access_denied") {
    assert.equal(page.status, 400, `expected the error page: ${page.status} ${page.url}`);
    assert.equal(page.query("#error")?.textContent, code);
  }
  async function adminToken(): Promise<string> {
    const t = await local.fetch(new Request(`${localIssuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("admin-cli:cli-secret").toString("base64")}` }, body: "grant_type=client_credentials&scope=tessera.admin" }));
    return ((await t.json()) as { access_token: string }).access_token;
  }
  const putProvider = async (id: string, entry: Record<string, unknown>) =>
    local.fetch(new Request(`${localIssuer}/admin/api/providers/${id}`, { method: "PUT", headers: { authorization: `Bearer ${await adminToken()}`, "content-type": "application/json" }, body: JSON.stringify(entry) }));

  it("21.r1 login CSRF: a callback URL of another browser's sign-in is refused (correlation failed) and the victim stays signed in as herself", async () => {
    const victim = new TestBrowser();
    const v = await signIn(victim, "trusted", "carol");
    const carol = String((await claimsOf(v.page, v.verifier)).sub);
    const dave = await subOf("up", "dave");
    // The attacker authenticates upstream as dave and stops before the callback.
    const attacker = new TestBrowser();
    let page = await attacker.get(authorizeUrl({ acr_values: "idp:up" }).url, { stopAt: atRp });
    page = await attacker.submitForm(page, { fields: { username: "dave", password: "dave" }, stopAt: atCallback });
    const landed = await victim.get(page.location!, { stopAt: atRp });
    refused(landed, "correlation_failed");
    assert.match(landed.query("#error_description")?.textContent ?? "", /not started in this browser/);
    assert.ok(landed.query("a#back"), "a way back");
    const later = authorizeUrl({ prompt: "none" });
    const got = await claimsOf(await victim.get(later.url, { stopAt: atRp }), later.verifier);
    assert.equal(got.sub, carol);
    assert.notEqual(got.sub, dave);
    // The refused response was used up: not even the attacker's browser can complete it now.
    refused(await attacker.get(page.location!, { stopAt: atRp }), "invalid_request");
  });

  it("21.r1 the correlation cookie: HttpOnly, SameSite=Lax, Path=/federation on http; __Host-, Secure, Path=/ on https, SameSite=None for form_post", async () => {
    const start = await local.fetch(new Request(authorizeUrl({ acr_values: "idp:up" }).url));
    assert.equal(start.status, 302);
    const cookie = start.headers.getSetCookie().find((c) => c.startsWith("tessera.federation="));
    assert.ok(cookie, start.headers.getSetCookie().join(" | "));
    assert.match(cookie, /^tessera\.federation=[A-Za-z0-9_-]{43}; Path=\/federation; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    const https = await createTestHost({
      issuer: "https://tessera.test",
      clients: [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid profile email" }],
      externalProviders: [
        { id: "q", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret" },
        { id: "fp", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret", response_mode: "form_post" },
      ],
    });
    try {
      const at = (id: string) => { const u = authorizeUrl({ acr_values: `idp:${id}` }).url; return new URL(u.pathname + u.search, "https://tessera.test"); };
      const q = await https.fetch(new Request(at("q")));
      assert.match(q.headers.getSetCookie().find((c) => c.startsWith("__Host-tessera.federation="))!, /^__Host-tessera\.federation=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Lax$/);
      const fp = await https.fetch(new Request(at("fp")));
      assert.match(fp.headers.getSetCookie().find((c) => c.startsWith("__Host-tessera.federation.fp="))!, /; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=None$/);
    } finally {
      await https.close();
    }
  });

  it("21.r2 link CSRF: an account-page link trip completes only in the session that started it", async () => {
    const b = new TestBrowser();
    const d = await signIn(b, "up", "dave");
    assert.ok(d.page.location?.startsWith(REDIRECT));
    const shown = await b.get(`${localIssuer}/account/providers`, { stopAt: atRp });
    const toUpstream = await b.submitForm(shown, { form: "form#link", button: "button[name=link][value=plain]", stopAt: (u) => u.origin === up.issuer });
    // The same browser now holds another user's session (alice, a password sign-in).
    let login = await b.get(authorizeUrl({ prompt: "login" }).url, { stopAt: atRp });
    login = await b.submitForm(login, { fields: { username: "alice", password: "alice" }, stopAt: atRp });
    assert.ok(login.location?.startsWith(REDIRECT), `${login.status} ${login.url}`);
    const cb = await b.get(toUpstream.location!, { stopAt: atRp });
    refused(cb);
    // dave's "plain" identity (the upstream session's) was not linked to dave's account.
    const links = await local.provider.listExternalLinks(new Request(`${localIssuer}/account/providers`, { headers: { cookie: b.cookies.cookieHeader(new URL(`${localIssuer}/account/providers`)) ?? "" } }));
    assert.deepEqual(links, []);
  });

  it("21.r3 trustEmail: only a trustEmail provider's emails are verified here, and verified-email linking needs such an account", async () => {
    const m = await signIn(new TestBrowser(), "up", "mallory");
    const mallory = await claimsOf(m.page, m.verifier);
    assert.equal(mallory.userinfo.email, "frank@example.com");
    assert.equal(mallory.userinfo.email_verified, false);
    const frank = await subOf("two", "frank");
    assert.notEqual(frank, mallory.sub, "frank's identity must not join mallory's account");
    // A trustEmail provider's account is verified, and a verified-email provider links to it.
    const g = await signIn(new TestBrowser(), "trusted", "grace");
    const grace = await claimsOf(g.page, g.verifier);
    assert.equal(grace.userinfo.email_verified, true);
    assert.equal(await subOf("two", "grace"), grace.sub, "the same mailbox (the domain's case aside) links");
  });

  it("21.r3 a config user's email is never taken over by verified-email linking", async () => {
    const s = await signIn(new TestBrowser(), "two", "alice");
    refused(s.page);
  });

  it("21.r3 admin API: trustEmail is a boolean, stored and listed", async () => {
    assert.equal((await putProvider("stored", { issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret", trustEmail: "yes" })).status, 400);
    assert.equal((await putProvider("stored", { issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret", trustEmail: true })).status, 200);
    const list = (await (await local.fetch(new Request(`${localIssuer}/admin/api/providers`, { headers: { authorization: `Bearer ${await adminToken()}` } }))).json()) as { id: string; trustEmail?: boolean }[] | { providers: { id: string; trustEmail?: boolean }[] };
    const entries = Array.isArray(list) ? list : list.providers;
    assert.equal(entries.find((p) => p.id === "stored")?.trustEmail, true);
  });

  it("21.r4 verified-email linking compares the exact address: a fullwidth, upper-case look-alike of carol's is refused", async () => {
    const carol = await subOf("trusted", "carol");
    const w = await signIn(new TestBrowser(), "two", "wide");
    refused(w.page);
    assert.notEqual(w.page.location, carol);
  });

  it("21.r5 an unverified upstream email reaches clients with email_verified: false", async () => {
    const e = await signIn(new TestBrowser(), "up", "eve");
    const eve = await claimsOf(e.page, e.verifier);
    assert.equal(eve.userinfo.email, "ceo@example.com");
    assert.equal(eve.userinfo.email_verified, false);
    assert.equal(eve.email_verified ?? false, false);
  });

  it("21.r6 a stored provider switched to another issuer verifies with the new issuer's keys", async () => {
    assert.equal((await putProvider("stored", { issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret" })).status, 200);
    const s1 = await signIn(new TestBrowser(), "stored", "carol");
    assert.ok(s1.page.location?.startsWith(REDIRECT), "first issuer works");
    assert.equal((await putProvider("stored", { issuer: two.issuer, client_id: "tessera", client_secret: "tessera-secret" })).status, 200);
    const s2 = await signIn(new TestBrowser(), "stored", "frank");
    assert.ok(s2.page.location?.startsWith(REDIRECT), `after the switch: ${s2.page.status} ${s2.page.query("#error")?.textContent}`);
  });

  it("21.r7 logout tokens: exp required, typ absent or logout+jwt only, jti once", async () => {
    const key = await generateKeyPair("RS256");
    let base = "";
    const srv = createServer(async (req, res) => {
      const send = (j: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(j));
      if (req.url === "/.well-known/openid-configuration") return send({ issuer: base, authorization_endpoint: `${base}/a`, token_endpoint: `${base}/t`, jwks_uri: `${base}/jwks` });
      if (req.url === "/jwks") return send({ keys: [{ ...(await exportJWK(key.publicKey)), kid: "k", alg: "RS256", use: "sig" }] });
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      assert.equal((await putProvider("fake", { issuer: base, client_id: "tess", client_secret: "shared-secret" })).status, 200);
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: base, aud: "tess", iat: now, exp: now + 120, sub: "x", events: { "http://schemas.openid.net/event/backchannel-logout": {} } };
      const sign = (c: Record<string, unknown>, typ?: string) => new SignJWT(c).setProtectedHeader({ alg: "RS256", kid: "k", ...(typ ? { typ } : {}) }).sign(key.privateKey);
      const post = async (token: string) => (await local.fetch(new Request(`${localIssuer}/federation/fake/backchannel`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ logout_token: token }).toString() }))).status;
      const { exp: _exp, ...noExp } = claims;
      assert.equal(await post(await sign({ ...noExp, jti: "a1" })), 400, "no exp");
      assert.equal(await post(await sign({ ...claims, jti: "a2" }, "JWT")), 400, "typ JWT");
      assert.equal(await post(await sign({ ...claims, jti: "a3" }, "logout+jwt")), 200, "typ logout+jwt");
      assert.equal(await post(await sign({ ...claims, jti: "a4" })), 200, "no typ");
      // Two deliveries of one token at once: one is accepted.
      const token = await sign({ ...claims, jti: "a5" }, "logout+jwt");
      assert.deepEqual((await Promise.all([post(token), post(token)])).sort(), [200, 400]);
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });

  it("21.r8 verified-email linking refuses an unverified email only when an account has it", async () => {
    const ivan = await signIn(new TestBrowser(), "two", "ivan");
    const claims = await claimsOf(ivan.page, ivan.verifier);
    assert.equal(claims.userinfo.email, "ivan@example.com");
    assert.equal(claims.userinfo.email_verified, false);
  });

  it("21.r9 two concurrent unlinks never leave an account without a way to sign in", async () => {
    // A real memory store whose listLinks lets both unlinks read the two links before either removes one.
    let arrived = 0;
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    class RacingStore extends MemoryAccountStore {
      override async listLinks(subject: string): Promise<AccountLink[]> {
        const links = await super.listLinks(subject);
        if (arrived < 2) {
          if (++arrived === 2) release();
          await gate;
        }
        return links;
      }
    }
    const accounts = new RacingStore();
    await accounts.create({ sub: "s1", username: "henry", emailVerified: false, claims: {}, disabled: false, createdAt: 1, updatedAt: 1 });
    await accounts.addLink({ issuer: "https://a.example", externalSubject: "x", subject: "s1", createdAt: 1 });
    await accounts.addLink({ issuer: "https://b.example", externalSubject: "y", subject: "s1", createdAt: 1 });
    const federation = new FederationService(new ExternalProviderRegistry([], fetch, () => 0), { accounts } as unknown as ConstructorParameters<typeof FederationService>[1]);
    const results = await Promise.all([federation.unlink("s1", "https://a.example", "x"), federation.unlink("s1", "https://b.example", "y")]);
    assert.ok(results.includes("last_method"), results.join());
    assert.ok((await accounts.listLinks("s1")).length >= 1);
  });

  it("21.r10 trustAmr keeps only RFC 8176 values; without it an upstream mfa never counts", () => {
    assert.deepEqual(upstreamAmr(false, ["mfa", "hwk"]), ["external"]);
    assert.deepEqual(upstreamAmr(true, ["pwd", "mfa", "made-up", 3, "pwd"]), ["pwd", "mfa"]);
    assert.deepEqual(upstreamAmr(true, ["made-up"]), ["external"]);
    assert.deepEqual(upstreamAmr(true, "mfa"), ["external"]);
  });
});
