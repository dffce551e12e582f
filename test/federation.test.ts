import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { serve } from "@hono/node-server";
import { TestBrowser, createTestHost, type TestHost, type TestPage } from "@tessera/testing";
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from "jose";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RP, REDIRECT, pkce } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

/** Receives Tessera's own back-channel logout tokens. */
async function receiver() {
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      tokens.push(new URLSearchParams(body).get("logout_token") ?? "");
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bc`, tokens, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A relay in front of an upstream, acting as an issuer of its own: its discovery points at the upstream's
 * authorization and userinfo endpoints, its token endpoint relays to the upstream's and re-signs the ID token
 * as itself, with its own key (`mode` "own", published at its jwks_uri) or a key it never published ("foreign").
 */
async function relay(upstream: () => string) {
  const own = await generateKeyPair("RS256");
  const foreign = await generateKeyPair("RS256");
  const state = { mode: "own" as "own" | "foreign", url: "" };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", async () => {
      const send = (status: number, json: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
      if (req.url === "/.well-known/openid-configuration") {
        const meta = (await (await fetch(`${upstream()}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
        delete meta.authorization_response_iss_parameter_supported;
        return send(200, { ...meta, issuer: state.url, token_endpoint: `${state.url}/token`, jwks_uri: `${state.url}/jwks`, end_session_endpoint: undefined });
      }
      if (req.url === "/jwks") return send(200, { keys: [{ ...(await exportJWK(own.publicKey)), kid: "own", alg: "RS256", use: "sig" }] });
      if (req.url === "/token") {
        const meta = (await (await fetch(`${upstream()}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
        const answer = await fetch(meta.token_endpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: req.headers.authorization ?? "" }, body });
        const tokens = (await answer.json()) as Record<string, unknown>;
        if (typeof tokens.id_token === "string") {
          const claims = decodeJwt(tokens.id_token);
          const key = state.mode === "own" ? own.privateKey : foreign.privateKey;
          tokens.id_token = await new SignJWT({ ...claims, iss: state.url }).setProtectedHeader({ alg: "RS256", kid: "own" }).sign(key);
        }
        return send(answer.status, tokens);
      }
      send(404, {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { state, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

/** Relays the upstream's back-channel logout POSTs to the local server, keeping each token. */
async function tap(target: () => string) {
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", async () => {
      tokens.push(new URLSearchParams(body).get("logout_token") ?? "");
      const answer = await fetch(target(), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
      res.writeHead(answer.status).end(await answer.text());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tap`, tokens, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

/** An upstream Tessera whose client `tessera` is the local server. */
function upstreamConfig(local: string, id: string, users: { sub: string; username: string; password: string; claims: Record<string, unknown> }[], backchannel = `${local}/federation/${id}/backchannel`) {
  return {
    users,
    // Long enough for the test that moves the local clock forward.
    tokens: { idTokenLifetime: 3600 },
    clients: [
      {
        client_id: "tessera",
        client_secret: "tessera-secret",
        redirect_uris: [`${local}/federation/${id}/callback`, `${local}/federation/relayed/callback`, `${local}/federation/stored/callback`, `${local}/federation/plain/callback`, `${local}/federation/forced/callback`],
        post_logout_redirect_uris: [`${local}/federation/${id}/signed-out`],
        backchannel_logout_uri: backchannel,
        scope: "openid profile email",
      },
    ],
  };
}

describe("21 external identity providers", () => {
  let local: TestHost;
  let up: TestHost;
  let two: TestHost;
  let front: ReturnType<typeof serve>;
  let rp: Awaited<ReturnType<typeof receiver>>;
  let localIssuer: string;
  let relayed: Awaited<ReturnType<typeof relay>>;
  let tapped: Awaited<ReturnType<typeof tap>>;
  /** Milliseconds the local server's clock runs ahead. */
  let skew = 0;

  before(async () => {
    rp = await receiver();
    relayed = await relay(() => up.issuer);
    // The local server listens first (its URL goes into the upstreams' client registrations).
    let handler: ((request: Request) => Promise<Response>) | undefined;
    front = await new Promise((resolve) => {
      const s = serve({ fetch: (request: Request) => (handler ? handler(request) : Promise.resolve(new Response("starting", { status: 503 }))), port: 0, hostname: "127.0.0.2" }, () => resolve(s));
    });
    // Another loopback address than the upstreams' (127.0.0.1): cookies are per host, not per port.
    localIssuer = `http://127.0.0.2:${(front.address() as AddressInfo).port}`;
    tapped = await tap(() => `${localIssuer}/federation/up/backchannel`);
    up = await createTestHost(
      upstreamConfig(localIssuer, "up", [
        { sub: "u-carol", username: "carol", password: "carol", claims: { name: "Carol", email: "carol@example.com", email_verified: true } },
        { sub: "u-dave", username: "dave", password: "dave", claims: { name: "Dave", email: "dave@example.com", email_verified: true } },
      ], tapped.url),
      { listen: true },
    );
    two = await createTestHost(
      upstreamConfig(localIssuer, "two", [
        { sub: "t-carol", username: "carol", password: "carol", claims: { name: "Carol Two", email: "carol@example.com", email_verified: true } },
        { sub: "t-dave", username: "dave", password: "dave", claims: { name: "Dave Two", email: "dave@example.com", email_verified: false } },
      ]),
      { listen: true },
    );
    local = await createTestHost({
      issuer: localIssuer,
      serverSideSessions: { enabled: true },
      admin: { role: "admin" },
      users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice" } }],
      clients: [{ client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], post_logout_redirect_uris: [`${RP}/out`], scope: "openid profile email", backchannel_logout_uri: rp.url },
        { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" },
      ],
      externalProviders: [
        // trustEmail: the emails of accounts "up" creates count as verified, so "two" may link to them.
        { id: "up", displayName: "Upstream SSO", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret", federatedSignOut: true, trustEmail: true },
        { id: "plain", displayName: "Plain OAuth", authorization_endpoint: `${up.issuer}/connect/authorize`, token_endpoint: `${up.issuer}/connect/token`, userinfo_endpoint: `${up.issuer}/connect/userinfo`, client_id: "tessera", client_secret: "tessera-secret", scope: "openid profile", claims: { sub: "sub", name: "name" } },
        { id: "forced", displayName: "Forced sync", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret", syncMode: "force", claims: { name: "email" }, trustAmr: true },
        { id: "relayed", issuer: relayed.state.url, client_id: "tessera", client_secret: "tessera-secret" },
        { id: "two", displayName: "Second SSO", issuer: two.issuer, client_id: "tessera", client_secret: "tessera-secret", linking: "verified-email", response_mode: "form_post" },
      ],
    }, { clock: () => Date.now() + skew, logger: { info() {}, warn() {}, error: (obj: object) => process.env.FED_DEBUG && console.error(obj) } });
    handler = local.fetch;
  });

  after(async () => {
    await local.close();
    await up.close();
    await two.close();
    await new Promise<void>((r) => front.close(() => r()));
    await rp.close();
    await relayed.close();
    await tapped.close();
  });

  const authorizeUrl = (params: Record<string, string> = {}) => {
    const url = new URL(`${localIssuer}/connect/authorize`);
    const { challenge, verifier } = pkce();
    for (const [k, v] of Object.entries({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile email", state: "s1", nonce: "n1", code_challenge: challenge, code_challenge_method: "S256", ...params })) url.searchParams.set(k, v);
    return { url, verifier };
  };
  const atRp = (u: URL) => u.origin === RP;
  const atCallback = (u: URL) => u.pathname.includes("/federation/") && u.pathname.endsWith("/callback");

  /** Local authorize -> login page -> provider button -> upstream login -> back at the RP. */
  async function signIn(browser: TestBrowser, provider: string, username: string, params: Record<string, string> = {}): Promise<{ page: TestPage; verifier: string }> {
    const { url, verifier } = authorizeUrl(params);
    let page = await browser.get(url, { stopAt: atRp });
    if (page.query(`button[name=provider][value=${provider}]`)) page = await browser.submitForm(page, { form: "form.external-providers", button: `button[name=provider][value=${provider}]`, stopAt: atRp });
    assert.ok(page.query("input[name=password]"), `expected the upstream login page, got ${page.url}`);
    page = await browser.submitForm(page, { fields: { username, password: username }, stopAt: atRp });
    // A form_post upstream answers with a self-submitting form (the browser here runs no script).
    if (page.status === 200 && page.query("form")?.getAttribute("action")?.startsWith(`${localIssuer}/federation/`)) page = await browser.submitForm(page, { stopAt: atRp });
    return { page: await resume(browser, page), verifier };
  }

  /** The callback's page continues by itself (meta refresh); the test browser follows its link. */
  async function resume(browser: TestBrowser, page: TestPage): Promise<TestPage> {
    const next = page.status === 200 ? page.query("a#continue")?.getAttribute("href") : undefined;
    return next ? browser.get(next, { stopAt: atRp }) : page;
  }

  async function idToken(page: TestPage, verifier: string): Promise<Record<string, unknown>> {
    assert.ok(page.location, `not at the RP: ${page.status} ${page.url} ${page.body.slice(0, 300)}`);
    const code = new URL(page.location).searchParams.get("code")!;
    const response = await local.fetch(
      new Request(`${localIssuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
      }),
    );
    assert.equal(response.status, 200);
    const body = (await response.json()) as { id_token: string; access_token: string };
    return { ...decodeJwt(body.id_token), raw: body.id_token, access_token: body.access_token };
  }

  it("21 the login page shows a button per provider with its display name", async () => {
    const browser = new TestBrowser();
    const page = await browser.get(authorizeUrl().url, { stopAt: atRp });
    assert.equal(page.query("button[name=provider][value=up]")?.textContent.trim(), "Upstream SSO");
    assert.equal(page.query("button[name=provider][value=two]")?.textContent.trim(), "Second SSO");
    assert.ok(page.query("input[name=username]"));
  });

  let carolSub = "";
  it("21 the first sign-in provisions a local account, the second finds the same sub; idp in the ID token", async () => {
    const first = await signIn(new TestBrowser(), "up", "carol");
    const claims = await idToken(first.page, first.verifier);
    assert.equal(claims.idp, "up");
    assert.notEqual(claims.sub, "u-carol");
    assert.deepEqual(claims.amr, ["external"]);
    carolSub = String(claims.sub);
    const second = await signIn(new TestBrowser(), "up", "carol");
    assert.equal((await idToken(second.page, second.verifier)).sub, carolSub);
  });

  it("21 a plain OAuth 2.0 provider (userinfo and claim mapping) signs in and links by its user id", async () => {
    const first = await signIn(new TestBrowser(), "plain", "carol");
    const claims = await idToken(first.page, first.verifier);
    assert.equal(claims.idp, "plain");
    const second = await signIn(new TestBrowser(), "plain", "carol");
    assert.equal((await idToken(second.page, second.verifier)).sub, claims.sub);
    // Linked under its own issuer: not the account the same upstream user has through OpenID Connect.
    if (carolSub) assert.notEqual(claims.sub, carolSub);
  });

  it("21 acr_values=idp:{id} skips the login page", async () => {
    const browser = new TestBrowser();
    const page = await browser.get(authorizeUrl({ acr_values: "idp:up" }).url, { stopAt: (u) => u.origin === up.issuer || atRp(u) });
    assert.equal(page.location && new URL(page.location).origin, up.issuer);
    assert.match(page.location!, /\/connect\/authorize\?/);
  });

  it("21 a tampered state, a replayed callback and a wrong iss are refused", async () => {
    const browser = new TestBrowser();
    let page = await browser.get(authorizeUrl({ acr_values: "idp:up" }).url, { stopAt: atRp });
    page = await browser.submitForm(page, { fields: { username: "carol", password: "carol" }, stopAt: atCallback });
    const callback = new URL(page.location!);
    assert.ok(callback.searchParams.get("iss"), "the upstream sends RFC 9207 iss");
    const tampered = new URL(callback);
    tampered.searchParams.set("state", callback.searchParams.get("state")! + "x");
    const bad = await browser.get(tampered, { stopAt: atRp });
    assert.equal(bad.status, 400);
    assert.equal(bad.query("#error")?.textContent, "invalid_request");
    const good = await resume(browser, await browser.get(callback, { stopAt: atRp }));
    assert.ok(good.location?.startsWith(REDIRECT), `signed in: ${good.status} ${good.body.slice(0, 200)}`);
    const replay = await new TestBrowser().get(callback, { stopAt: atRp });
    assert.equal(replay.status, 400);

    const other = new TestBrowser();
    let again = await other.get(authorizeUrl({ acr_values: "idp:up" }).url, { stopAt: atRp });
    again = await other.submitForm(again, { fields: { username: "carol", password: "carol" }, stopAt: atCallback });
    const wrongIss = new URL(again.location!);
    wrongIss.searchParams.set("iss", "https://evil.example");
    const refused = await other.get(wrongIss, { stopAt: atRp });
    assert.equal(refused.status, 400);
    assert.equal(refused.query("#error")?.textContent, "invalid_response");
    assert.ok(refused.query("a#back"), "a way back to the login page");
  });

  it("21 a foreign ID token (signed with a key the issuer never published) is refused", async () => {
    const through = async (mode: "own" | "foreign") => {
      relayed.state.mode = mode;
      const browser = new TestBrowser();
      let page = await browser.get(authorizeUrl({ acr_values: "idp:relayed" }).url, { stopAt: atRp });
      page = await browser.submitForm(page, { fields: { username: "carol", password: "carol" }, stopAt: atCallback });
      // The upstream names itself in iss; the relay is the issuer here, and says nothing of RFC 9207.
      const callback = new URL(page.location!);
      callback.searchParams.delete("iss");
      return resume(browser, await browser.get(callback, { stopAt: atRp }));
    };
    const accepted = await through("own");
    assert.ok(accepted.location?.startsWith(REDIRECT), `an ID token signed with the issuer's key is accepted: ${accepted.status} ${accepted.body.slice(0, 200)}`);
    const refused = await through("foreign");
    assert.equal(refused.status, 400);
    assert.equal(refused.query("#error")?.textContent, "invalid_response");
  });

  it("21 an upstream error (access_denied) ends on the error page with a way back", async () => {
    const browser = new TestBrowser();
    let page = await browser.get(authorizeUrl({ acr_values: "idp:up" }).url, { stopAt: atRp });
    page = await browser.submitForm(page, { fields: { username: "carol", password: "carol" }, stopAt: atCallback });
    const denied = new URL(page.location!);
    const state = denied.searchParams.get("state")!;
    denied.search = new URLSearchParams({ error: "access_denied", state }).toString();
    const shown = await browser.get(denied, { stopAt: atRp });
    assert.equal(shown.status, 400);
    assert.equal(shown.query("#error")?.textContent, "access_denied");
    assert.match(shown.query("a#back")?.getAttribute("href") ?? "", /\/login\?returnUrl=/);
  });

  it("21 verified-email linking links a verified email and refuses an unverified one", async () => {
    if (!carolSub) {
      const first = await signIn(new TestBrowser(), "up", "carol");
      carolSub = String((await idToken(first.page, first.verifier)).sub);
    }
    // form_post upstream: the callback arrives as a POST.
    const linked = await signIn(new TestBrowser(), "two", "carol");
    const claims = await idToken(linked.page, linked.verifier);
    assert.equal(claims.sub, carolSub);
    assert.equal(claims.idp, "two");

    await signIn(new TestBrowser(), "up", "dave");
    const refused = await signIn(new TestBrowser(), "two", "dave");
    assert.equal(refused.page.status, 400);
    assert.equal(refused.page.query("#error")?.textContent, "access_denied");
  });

  it("21 federated sign-out ends the upstream session and returns to Tessera's signed-out page", async () => {
    const browser = new TestBrowser();
    const { page, verifier } = await signIn(browser, "up", "carol");
    const claims = await idToken(page, verifier);
    const end = new URL(`${localIssuer}/connect/endsession`);
    end.searchParams.set("id_token_hint", String(claims.raw));
    const out = await browser.get(end, { stopAt: (u) => u.origin === up.issuer });
    const upstreamLogout = new URL(out.location!);
    assert.equal(upstreamLogout.origin, up.issuer);
    assert.ok(upstreamLogout.searchParams.get("id_token_hint"));
    const signedOut = await browser.get(upstreamLogout, { stopAt: atRp });
    const back = signedOut.query("a#continue")?.getAttribute("href");
    assert.ok(back?.startsWith(`${localIssuer}/federation/up/signed-out`), `continues to Tessera: ${signedOut.body.slice(0, 300)}`);
    const finalPage = await browser.get(back!, { stopAt: atRp });
    assert.equal(finalPage.status, 200);
    assert.match(finalPage.url, /\/signedout/);
    // The upstream session is gone: prompt=none there needs a login.
    const check = new URL(`${up.issuer}/connect/authorize`);
    for (const [k, v] of Object.entries({ client_id: "tessera", redirect_uri: `${localIssuer}/federation/up/callback`, response_type: "code", scope: "openid", prompt: "none", code_challenge: pkce().challenge, code_challenge_method: "S256" })) check.searchParams.set(k, v);
    const none = await browser.get(check, { stopAt: (u) => u.origin === localIssuer });
    assert.equal(new URL(none.location!).searchParams.get("error"), "login_required");
  });

  it("21 an upstream back-channel logout ends the local session and Tessera's clients get their own logout tokens", async () => {
    const browser = new TestBrowser();
    const { page, verifier } = await signIn(browser, "up", "dave");
    const claims = await idToken(page, verifier);
    const before = rp.tokens.length;
    // Sign out at the upstream itself (its logout prompt).
    const prompt = await browser.get(`${up.issuer}/logout`, { stopAt: atRp });
    await browser.submitForm(prompt, { button: "button[name=decision][value=logout]", stopAt: (u) => u.origin === localIssuer || atRp(u) });
    await until(() => rp.tokens.length > before, "Tessera's logout token to its client");
    const token = decodeJwt(rp.tokens.at(-1)!);
    assert.equal(token.iss, localIssuer);
    assert.equal(token.sid, claims.sid);
    // The local session ended: prompt=none needs a login.
    const none = await browser.get(authorizeUrl({ prompt: "none" }).url, { stopAt: atRp });
    assert.equal(new URL(none.location!).searchParams.get("error"), "login_required");
    // The same logout token again (jti seen): refused.
    const upstreamToken = tapped.tokens.at(-1)!;
    assert.ok(upstreamToken);
    const replay = await local.fetch(new Request(`${localIssuer}/federation/up/backchannel`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ logout_token: upstreamToken }).toString() }));
    assert.equal(replay.status, 400);
    assert.match(((await replay.json()) as { error_description: string }).error_description, /already used/);
  });

  it("21 admin API: providers are added, listed without secrets, used for sign-in and removed; config ones are read-only", async () => {
    const tokenResponse = await local.fetch(
      new Request(`${localIssuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("admin-cli:cli-secret").toString("base64")}` },
        body: "grant_type=client_credentials&scope=tessera.admin",
      }),
    );
    const { access_token } = (await tokenResponse.json()) as { access_token: string };
    const api = (method: string, path: string, body?: unknown) =>
      local.fetch(new Request(`${localIssuer}/admin/api${path}`, { method, headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" }, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) }));
    const entry = { displayName: "Stored SSO", issuer: two.issuer, client_id: "tessera", client_secret: "tessera-secret" };
    assert.equal((await api("PUT", "/providers/up", entry)).status, 409);
    assert.equal((await api("DELETE", "/providers/up")).status, 409);
    assert.equal((await api("PUT", "/providers/stored", { displayName: "No client" })).status, 400);
    assert.equal((await api("PUT", "/providers/stored", "{not json")).status, 400);
    assert.equal((await api("PUT", "/providers/stored", { ...entry, id: "other" })).status, 400);
    assert.equal((await api("PUT", "/providers/bad%20id", entry)).status, 400);
    const saved = await api("PUT", "/providers/stored", entry);
    assert.equal(saved.status, 200);
    const savedText = await saved.text();
    assert.doesNotMatch(savedText, /tessera-secret/);
    const listed = await api("GET", "/providers");
    const listText = await listed.text();
    assert.doesNotMatch(listText, /tessera-secret/);
    const providers = (JSON.parse(listText) as { providers: { id: string; fixed: boolean }[] }).providers;
    assert.deepEqual(providers.map((p) => [p.id, p.fixed]), [["up", true], ["plain", true], ["forced", true], ["relayed", true], ["two", true], ["stored", false]]);

    const browser = new TestBrowser();
    const login = await browser.get(authorizeUrl().url, { stopAt: atRp });
    assert.equal(login.query("button[name=provider][value=stored]")?.textContent.trim(), "Stored SSO");
    const { page, verifier } = await signIn(browser, "stored", "carol");
    assert.equal((await idToken(page, verifier)).idp, "stored");

    assert.equal((await api("DELETE", "/providers/stored")).status, 204);
    assert.equal((await api("DELETE", "/providers/stored")).status, 404);
    const gone = await new TestBrowser().get(authorizeUrl().url, { stopAt: atRp });
    assert.equal(gone.query("button[name=provider][value=stored]"), null);
  });

  it("21 users link and unlink providers on the account page, after a recent authentication", async () => {
    const browser = new TestBrowser();
    // Dave's account has one link (his verified-email link through "two" was refused).
    const { page } = await signIn(browser, "up", "dave");
    assert.ok(page.location?.startsWith(REDIRECT));
    const accountPage = `${localIssuer}/account/providers`;
    let shown = await browser.get(accountPage, { stopAt: atRp });
    assert.equal(shown.queryAll("#links li").length, 1);
    assert.equal(shown.query("#links li strong")?.textContent, "Upstream SSO");
    // Link the plain OAuth 2.0 provider (the upstream session answers at once).
    shown = await browser.submitForm(shown, { form: "form#link", button: "button[name=link][value=plain]", stopAt: atRp });
    shown = await resume(browser, shown);
    assert.deepEqual(shown.queryAll("#links li").map((li) => li.getAttribute("data-provider")), ["up", "plain"]);

    try {
      // Five minutes later a change needs a fresh authentication first.
      skew = 400_000;
      const plain = shown.queryAll("#links li").find((li) => li.getAttribute("data-provider") === "plain")!;
      const unlinkForm = `li[data-provider=plain] form`;
      assert.ok(plain);
      let refused = await browser.submitForm(shown, { form: unlinkForm, button: "button[name=unlink]", stopAt: atRp });
      assert.equal(refused.status, 403);
      assert.ok(refused.query("#reauthenticate"));
      assert.equal(refused.queryAll("#links li").length, 2, "nothing changed");
      const again = await resume(browser, await browser.submitForm(refused, { form: "#reauthenticate form", button: "button[name=reauth][value=up]", stopAt: atRp }));
      assert.equal(again.status, 200, again.body.slice(0, 300));
      const unlinked = await browser.submitForm(again, { form: unlinkForm, button: "button[name=unlink]", stopAt: atRp });
      assert.equal(unlinked.status, 200);
      assert.deepEqual(unlinked.queryAll("#links li").map((li) => li.getAttribute("data-provider")), ["up"]);
      // The last way to sign in (no password) stays.
      const last = await browser.submitForm(unlinked, { form: "li[data-provider=up] form", button: "button[name=unlink]", stopAt: atRp });
      assert.equal(last.status, 409);
      assert.equal(last.queryAll("#links li").length, 1);
      refused = await browser.post(accountPage, { csrf: "forged", link: "plain" }, { stopAt: atRp });
      assert.equal(refused.status, 400);
    } finally {
      skew = 0;
    }
  });

  it("21 claim mapping: import copies claims once, force updates them at every sign-in; trustAmr takes the upstream amr", async () => {
    const userinfo = async (accessToken: unknown) => (await (await local.fetch(new Request(`${localIssuer}/connect/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } }))).json()) as Record<string, unknown>;
    const first = await signIn(new TestBrowser(), "up", "carol");
    const imported = await idToken(first.page, first.verifier);
    const before = (await userinfo(imported.access_token)).name;
    assert.ok(before === "Carol" || before === "carol@example.com");
    const forced = await signIn(new TestBrowser(), "forced", "carol");
    const updated = await idToken(forced.page, forced.verifier);
    assert.equal(updated.sub, imported.sub, "one upstream issuer: the same link");
    assert.equal((await userinfo(updated.access_token)).name, "carol@example.com");
    assert.deepEqual(updated.amr, ["pwd"], "the upstream's amr");
    const again = await signIn(new TestBrowser(), "up", "carol");
    const kept = await idToken(again.page, again.verifier);
    assert.equal((await userinfo(kept.access_token)).name, "carol@example.com", "import never overwrites");
    assert.deepEqual(kept.amr, ["external"]);
  });

  it("21 a forged or replayed logout token is refused", async () => {
    const post = (token: string) => local.fetch(new Request(`${localIssuer}/federation/up/backchannel`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ logout_token: token }).toString() }));
    const forged = await post("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.");
    assert.equal(forged.status, 400);
    assert.equal(((await forged.json()) as { error: string }).error, "invalid_request");
    assert.equal((await post("")).status, 400);
    assert.equal((await local.fetch(new Request(`${localIssuer}/federation/nope/backchannel`, { method: "POST" }))).status, 404);
  });
});

const postgres = process.env.CI === "true" || process.env.TESSERA_TEST_PG_URL ? await startTestPostgres() : undefined;
after(() => postgres?.close());

/** The same flows with the local server on SQLite and on PostgreSQL (accounts, links, pending requests, stored providers). */
for (const kind of ["sqlite", "postgres"] as const) {
  describe(`21 external identity providers on ${kind}`, { skip: kind === "postgres" && !postgres ? "PostgreSQL is not available (set CI=true)" : false }, () => {
    let local: TestHost;
    let up: TestHost;
    let front: ReturnType<typeof serve>;
    let localIssuer: string;
    let dir: string;
    let rp: Awaited<ReturnType<typeof receiver>>;

    before(async () => {
      rp = await receiver();
      let handler: ((request: Request) => Promise<Response>) | undefined;
      front = await new Promise((resolve) => {
        const s = serve({ fetch: (request: Request) => (handler ? handler(request) : Promise.resolve(new Response("starting", { status: 503 }))), port: 0, hostname: "127.0.0.2" }, () => resolve(s));
      });
      localIssuer = `http://127.0.0.2:${(front.address() as AddressInfo).port}`;
      up = await createTestHost(upstreamConfig(localIssuer, "up", [{ sub: "u-erin", username: "erin", password: "erin", claims: { name: "Erin", email: "erin@example.com", email_verified: true } }]), { listen: true });
      dir = mkdtempSync(join(tmpdir(), "tessera-fed-"));
      const store = kind === "sqlite" ? { kind: "sqlite" as const, path: join(dir, "tessera.db") } : { kind: "postgres" as const, url: await postgres!.createDatabase() };
      local = await createTestHost({
        issuer: localIssuer,
        store,
        serverSideSessions: { enabled: true },
        admin: { role: "admin" },
        clients: [
          { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], scope: "openid profile email", backchannel_logout_uri: rp.url },
          { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" },
        ],
        externalProviders: [
          { id: "up", displayName: "Upstream SSO", issuer: up.issuer, client_id: "tessera", client_secret: "tessera-secret" },
          // Nothing listens there.
          { id: "dead", displayName: "Gone SSO", issuer: "http://127.0.0.1:1", client_id: "tessera", client_secret: "tessera-secret" },
        ],
      });
      handler = local.fetch;
    });
    after(async () => {
      await local?.close();
      await up?.close();
      await new Promise<void>((r) => (front ? front.close(() => r()) : r()));
      await rp?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const flow = async (browser: TestBrowser, stopAt: (u: URL) => boolean) => {
      const url = new URL(`${localIssuer}/connect/authorize`);
      const { challenge, verifier } = pkce();
      for (const [k, v] of Object.entries({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile email", state: "s", nonce: "n", code_challenge: challenge, code_challenge_method: "S256", acr_values: "idp:up" })) url.searchParams.set(k, v);
      const login = await browser.get(url, { stopAt: (u) => u.origin === RP });
      return { page: await browser.submitForm(login, { fields: { username: "erin", password: "erin" }, stopAt }), verifier };
    };
    const subOf = async (page: TestPage, verifier: string) => {
      const code = new URL(page.location!).searchParams.get("code")!;
      const response = await local.fetch(new Request(`${localIssuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` }, body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString() }));
      return decodeJwt(((await response.json()) as { id_token: string }).id_token);
    };
    const follow = async (browser: TestBrowser, page: TestPage) => {
      const next = page.status === 200 ? page.query("a#continue")?.getAttribute("href") : undefined;
      return next ? browser.get(next, { stopAt: (u) => u.origin === RP }) : page;
    };

    it(`21 ${kind}: first sign-in provisions, the second finds the same sub; a replayed callback is refused; back-channel logout ends the session`, async () => {
      const browser = new TestBrowser();
      const first = await flow(browser, (u) => u.pathname.endsWith("/callback"));
      const callback = new URL(first.page.location!);
      const signedIn = await follow(browser, await browser.get(callback, { stopAt: (u) => u.origin === RP }));
      const a = await subOf(signedIn, first.verifier);
      assert.equal(a.idp, "up");
      assert.equal((await new TestBrowser().get(callback, { stopAt: (u) => u.origin === RP })).status, 400);
      const other = new TestBrowser();
      const second = await flow(other, (u) => u.origin === RP);
      assert.equal((await subOf(await follow(other, second.page), second.verifier)).sub, a.sub);
      const before = rp.tokens.length;
      const prompt = await other.get(`${up.issuer}/logout`, { stopAt: (u) => u.origin === RP });
      await other.submitForm(prompt, { button: "button[name=decision][value=logout]", stopAt: (u) => u.origin === localIssuer || u.origin === RP });
      await until(() => rp.tokens.length > before, "the client's logout token");
      assert.equal(decodeJwt(rp.tokens.at(-1)!).sub, a.sub);
    });

    it(`21 ${kind}: an unreachable provider: the client gets temporarily_unavailable, the login button a page, never a 5xx crash`, async () => {
      const browser = new TestBrowser();
      const url = new URL(`${localIssuer}/connect/authorize`);
      for (const [k, v] of Object.entries({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid", state: "s", code_challenge: pkce().challenge, code_challenge_method: "S256" })) url.searchParams.set(k, v);
      const routed = new URL(url);
      routed.searchParams.set("acr_values", "idp:dead");
      const refused = await browser.get(routed, { stopAt: (u) => u.origin === RP });
      assert.equal(new URL(refused.location!).searchParams.get("error"), "temporarily_unavailable");
      const login = await browser.get(url, { stopAt: (u) => u.origin === RP });
      const page = await browser.submitForm(login, { form: "form.external-providers", button: "button[name=provider][value=dead]", stopAt: (u) => u.origin === RP });
      assert.equal(page.status, 503);
      assert.match(page.text(), /Gone SSO/);
    });

    it(`21 ${kind}: stored providers through the admin API; bad input is a 4xx, never a 5xx`, async () => {
      const tokenResponse = await local.fetch(new Request(`${localIssuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("admin-cli:cli-secret").toString("base64")}` }, body: "grant_type=client_credentials&scope=tessera.admin" }));
      const { access_token } = (await tokenResponse.json()) as { access_token: string };
      const api = (method: string, path: string, body?: string) => local.fetch(new Request(`${localIssuer}/admin/api${path}`, { method, headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" }, ...(body === undefined ? {} : { body }) }));
      const entry = { displayName: "Stored", issuer: up.issuer, client_id: "tessera", client_secret: "s3cret-value" };
      assert.equal((await api("PUT", "/providers/stored", JSON.stringify(entry))).status, 200);
      assert.doesNotMatch(await (await api("GET", "/providers")).text(), /s3cret-value/);
      for (const bad of [{ ...entry, displayName: "a\u0000b" }, { ...entry, client_id: "x".repeat(5000) }, { ...entry, issuer: "not a url" }, { ...entry, claims: { name: 5 } }, { ...entry, linking: "email" }, { ...entry, displayName: "\ud800" }]) {
        const status = (await api("PUT", "/providers/stored", JSON.stringify(bad))).status;
        assert.ok(status >= 400 && status < 500, `${JSON.stringify(bad).slice(0, 80)}: ${status}`);
      }
      assert.equal((await api("PUT", `/providers/${"x".repeat(300)}`, JSON.stringify(entry))).status, 400);
      assert.equal((await api("PUT", "/providers/stored", "x".repeat(20_000))).status, 413);
      const state = "x".repeat(600);
      assert.equal((await local.fetch(new Request(`${localIssuer}/federation/up/callback?state=${state}&code=1`))).status, 400);
      assert.equal((await local.fetch(new Request(`${localIssuer}/federation/up/callback?state=a%00b&code=1`))).status, 400);
      assert.equal((await local.fetch(new Request(`${localIssuer}/federation/stored/callback?state=abc`))).status, 400);
      assert.equal((await api("DELETE", "/providers/stored")).status, 204);
      assert.equal((await local.fetch(new Request(`${localIssuer}/federation/stored/callback?state=abc`))).status, 404);
    });
  });
}
