// Regression tests for the attacker review of token exchange, extension grants and the device flow (issue 18).
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createMemoryStore, createProvider, type ExtensionGrant, type Provider, type Store } from "@tessera/server";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK } from "jose";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";

const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS = "urn:ietf:params:oauth:token-type:access_token";
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const DOWNSTREAM = "https://downstream.test";
const basic = (id: string) => `Basic ${Buffer.from(`${id}:${id}-secret`).toString("base64")}`;

describe("18.r review: token exchange over a host", () => {
  let host: TestHost;
  let spaToken: string;
  let spaKeys: CryptoKeyPair;
  let alice: string;
  let bob: string;
  before(async () => {
    const c = baseConfig();
    c.apiScopes = [{ name: "api1.read" }, { name: "downstream.read" }, { name: "other.read" }];
    c.apiResources = [
      { name: "urn:api1", scopes: ["api1.read"], secret: "api1-secret" },
      { name: DOWNSTREAM, scopes: ["downstream.read"], secret: "downstream-secret" },
      { name: "urn:other", scopes: ["other.read"], secret: "other-secret" },
    ];
    c.clients = [
      { client_id: "spa", token_endpoint_auth_method: "none", redirect_uris: [CALLBACK], grant_types: ["authorization_code"], scope: "openid api1.read downstream.read", dpop_bound_access_tokens: true },
      { client_id: "app", client_secret: "app-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code"], scope: "openid api1.read downstream.read" },
      { client_id: "gateway", client_secret: "gateway-secret", grant_types: [GRANT, "client_credentials"], scope: "api1.read downstream.read" },
      { client_id: "stranger", client_secret: "stranger-secret", grant_types: [GRANT, "client_credentials"], scope: "other.read", token_exchange_allow_impersonation: true },
    ];
    host = await createTestHost(c, { listen: true });
    spaKeys = await oidc.randomDPoPKeyPair();
    const spa = await discover(host, "spa");
    spaToken = (await codeFlow(spa, { scope: "openid api1.read downstream.read", dpop: oidc.getDPoPHandle(spa, spaKeys) })).access_token;
    const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
    alice = (await codeFlow(app, { scope: "openid api1.read downstream.read" })).access_token;
    bob = (await codeFlow(app, { scope: "openid api1.read", username: "bob", password: "bob-password" })).access_token;
  });
  after(() => host?.close());

  const post = async (fields: Record<string, string>, client: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${host.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client), ...headers }, body: new URLSearchParams(fields).toString() });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  const cc = async (client: string) => (await post({ grant_type: "client_credentials" }, client)).body.access_token!;
  const proof = async (keys: CryptoKeyPair) =>
    new SignJWT({ htm: "POST", htu: `${host.issuer}/connect/token`, jti: randomUUID() }).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(keys.publicKey) }).setIssuedAt().sign(keys.privateKey);

  it("18.r1 a DPoP-bound subject token needs a proof of its key, and the exchanged token stays bound to it", async () => {
    const fields = { grant_type: GRANT, subject_token: spaToken, subject_token_type: ACCESS, actor_token: await cc("gateway"), actor_token_type: ACCESS, audience: DOWNSTREAM };
    const bare = await post(fields, "gateway");
    assert.equal(bare.status, 400);
    assert.equal(bare.body.error, "invalid_request");
    const otherKey = await post(fields, "gateway", { dpop: await proof(await oidc.randomDPoPKeyPair()) });
    assert.equal(otherKey.body.error, "invalid_request", "a proof of another key");
    const proven = await post(fields, "gateway", { dpop: await proof(spaKeys) });
    assert.equal(proven.status, 200, JSON.stringify(proven.body));
    assert.equal(proven.body.token_type, "DPoP");
    assert.deepEqual(decodeJwt(proven.body.access_token!).cnf, { jkt: await calculateJwkThumbprint(await exportJWK(spaKeys.publicKey)) });
  });

  it("18.r1 the subject token must be meant for the exchanging client (its client, its aud, or an API it may call)", async () => {
    const refused = await post({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS }, "stranger");
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, "invalid_request");
    assert.match(refused.body.error_description!, /not issued to this client/);
    // The gateway may ask for api1.read and downstream.read: alice's token (aud urn:api1 + downstream) is meant for it.
    assert.equal((await post({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: await cc("gateway"), actor_token_type: ACCESS }, "gateway")).status, 200);
  });

  it("18.r4 the actor token must be the exchanging client's own; the subject as its own actor is impersonation", async () => {
    const framed = await post({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: bob, actor_token_type: ACCESS }, "gateway");
    assert.equal(framed.body.error, "invalid_request", "bob's token (issued to app) cannot be the gateway's actor");
    const self = await post({ grant_type: GRANT, subject_token: alice, subject_token_type: ACCESS, actor_token: alice, actor_token_type: ACCESS }, "gateway");
    assert.equal(self.body.error, "invalid_request");
    const own = await cc("gateway");
    const sameToken = await post({ grant_type: GRANT, subject_token: own, subject_token_type: ACCESS, actor_token: own, actor_token_type: ACCESS }, "gateway");
    assert.equal(sameToken.body.error, "invalid_request");
    assert.match(sameToken.body.error_description!, /may not impersonate/);
  });
});

describe("18.r review: extension grants, may_act and client tokens", () => {
  const ISSUER = "https://exchange.test";
  let provider: Provider;
  let store: Store;
  const dataKey = randomBytes(32);
  const mint: ExtensionGrant<{ claims: Record<string, unknown>; subject?: string; mayAct?: { sub: string } }> = {
    async validate(request) {
      const raw = request.params.get("claims");
      const mayAct = request.params.get("may_act_sub");
      return { claims: raw ? (JSON.parse(raw) as Record<string, unknown>) : {}, subject: request.params.get("subject"), ...(mayAct ? { mayAct: { sub: mayAct } } : {}) };
    },
    issue: (v, request) => request.issueTokens({ subject: v.subject ?? "batch-user", scopes: ["downstream.read"], claims: v.claims, ...(v.mayAct ? { mayAct: v.mayAct } : {}) }),
  };
  const clients = [
    { client_id: "minter", client_secret: "minter-secret", grant_types: ["urn:test:mint"], scope: "downstream.read" },
    { client_id: "gateway", client_secret: "gateway-secret", grant_types: [GRANT, "client_credentials", "urn:test:mint"], scope: "downstream.read" },
    { client_id: "service", client_secret: "service-secret", grant_types: [GRANT, "client_credentials"], scope: "downstream.read" },
    { client_id: "gone", client_secret: "gone-secret", grant_types: ["client_credentials"], scope: "downstream.read" },
  ];
  const create = (list: typeof clients) =>
    createProvider({ issuer: ISSUER, store, dataKey, apiScopes: [{ name: "downstream.read" }], apiResources: [{ name: DOWNSTREAM, scopes: ["downstream.read"] }], clients: list, grants: { "urn:test:mint": mint } });
  before(() => {
    store = createMemoryStore();
    provider = create(clients);
  });
  after(() => provider.close());
  const call = async (path: string, fields: Record<string, string>, client: string, on = provider) => {
    const response = await on.fetch(new Request(`${ISSUER}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client) }, body: new URLSearchParams(fields).toString() }));
    return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, string> };
  };
  const token = (fields: Record<string, string>, client: string) => call("/connect/token", fields, client);

  it("18.r5 may_act is carried into the exchanged token, so a chained exchange by an actor it excludes is refused", async () => {
    const subject = (await token({ grant_type: "urn:test:mint", may_act_sub: "gateway" }, "minter")).body.access_token!;
    const first = await token({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, actor_token: (await token({ grant_type: "client_credentials" }, "gateway")).body.access_token!, actor_token_type: ACCESS }, "gateway");
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(decodeJwt(first.body.access_token!).may_act, { sub: "gateway" });
    const service = (await token({ grant_type: "client_credentials" }, "service")).body.access_token!;
    const second = await token({ grant_type: GRANT, subject_token: first.body.access_token!, subject_token_type: ACCESS, actor_token: service, actor_token_type: ACCESS }, "service");
    assert.equal(second.status, 400, JSON.stringify(second.body));
    assert.equal(second.body.error, "invalid_request");
  });

  it("18.r7 extension-grant claims cannot set acr, azp, nonce, act or may_act", async () => {
    const minted = await token({ grant_type: "urn:test:mint", claims: JSON.stringify({ acr: "urn:mfa", azp: "someone-else", nonce: "n", act: { sub: "forged" }, may_act: { sub: "x" }, department: "sales" }) }, "minter");
    assert.equal(minted.status, 200);
    const claims = decodeJwt(minted.body.access_token!);
    for (const name of ["acr", "azp", "nonce", "act", "may_act"]) assert.equal(claims[name], undefined, name);
    assert.equal(claims.department, "sales", "other claims still pass");
  });

  it("18.r6 an extension grant cannot name the client itself as subject; a delegated client token keeps a record and is revocable", async () => {
    const refused = await token({ grant_type: "urn:test:mint", subject: "minter" }, "minter");
    assert.equal(refused.status, 500, "a programming error of the grant, refused before any token exists");
    assert.equal(refused.body.access_token, undefined);
    // The gateway's own token as subject, a user token it holds as actor: sub = client_id, with act.
    const own = (await token({ grant_type: "client_credentials" }, "gateway")).body.access_token!;
    const user = (await token({ grant_type: "urn:test:mint" }, "gateway")).body.access_token!;
    const delegated = await token({ grant_type: GRANT, subject_token: own, subject_token_type: ACCESS, actor_token: user, actor_token_type: ACCESS }, "gateway");
    assert.equal(delegated.status, 200, JSON.stringify(delegated.body));
    const claims = decodeJwt(delegated.body.access_token!);
    assert.equal(claims.sub, "gateway");
    assert.deepEqual(claims.act, { sub: "batch-user" });
    assert.equal((await call("/connect/revocation", { token: delegated.body.access_token!, token_type_hint: "access_token" }, "gateway")).status, 200);
    // Another client's token whose subject names the gateway: exchanged into the gateway's own, never a 5xx.
    const naming = (await token({ grant_type: "urn:test:mint", subject: "gateway" }, "minter")).body.access_token!;
    const renamed = await token({ grant_type: GRANT, subject_token: naming, subject_token_type: ACCESS, actor_token: user, actor_token_type: ACCESS }, "gateway");
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.equal(decodeJwt(renamed.body.access_token!).sub, "gateway");
    assert.equal(await provider.validateAccessToken(delegated.body.access_token!), undefined, "revoked");
  });

  it("18.r6 a client's self-contained token stops validating once the client no longer exists", async () => {
    const own = (await token({ grant_type: "client_credentials" }, "gone")).body.access_token!;
    assert.ok(await provider.validateAccessToken(own));
    const without = create(clients.filter((c) => c.client_id !== "gone"));
    try {
      assert.equal(await without.validateAccessToken(own), undefined);
    } finally {
      await without.close();
    }
  });
});

function deviceConfig(): TestHostConfig {
  const config = baseConfig();
  config.identityResources = ["openid", "profile", "email", "offline_access"];
  config.deviceFlow = { lifetime: 600, interval: 5, userCodeLength: 8 };
  config.serverSideSessions = { enabled: true };
  config.clients = [
    { client_id: "tv", client_name: "Living Room TV", token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT, "refresh_token"], scope: "openid profile offline_access api1.read" },
    { client_id: "console", client_secret: "console-secret", grant_types: [DEVICE_GRANT], scope: "openid" },
    ...config.clients!,
  ];
  return config;
}

for (const kind of ["memory", "sqlite"] as const) describe(`18.r review: device flow (${kind} store)`, () => {
  let host: TestHost;
  let now = Date.now();
  let dir: string | undefined;
  before(async () => {
    const config = deviceConfig();
    if (kind === "sqlite") {
      dir = mkdtempSync(join(tmpdir(), "tessera-review-grants-"));
      config.store = { kind: "sqlite", path: join(dir, "t.db") };
    }
    host = await createTestHost(config, { clock: () => now });
  });
  after(async () => {
    await host?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const post = async (path: string, fields: Record<string, string>, headers: Record<string, string> = {}, clientAddress?: string) => {
    const response = await host.provider.fetch(new Request(`${host.issuer}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(fields).toString() }), clientAddress ? { clientAddress } : undefined);
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  const start = async () => (await post("/connect/deviceauthorization", { client_id: "tv", scope: "openid offline_access api1.read" })).body;
  const poll = (deviceCode: string) => post("/connect/token", { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: "tv" });
  const approve = async (browser: TestBrowser, uri: string) => {
    let page = await browser.get(uri);
    if (page.query("input[name=user_code]") && !page.query("button[name=decision]")) page = await browser.submitForm(page);
    if (page.query("input[name=username]")) page = await browser.submitForm(page, { fields: { username: "alice", password: "alice" } });
    page = await browser.submitForm(page, { button: "button[name=decision][value=allow]" });
    assert.match(page.text(), /device may continue/);
  };
  const fresh = () => {
    now += 1000 * 1000; // past every earlier throttle window
  };

  it("18.r2 wrong user codes count per IPv6 /48 too, not only per /64", async () => {
    fresh();
    const started = await start();
    const p = host.provider;
    for (let n = 0; n < 3; n++) for (let i = 0; i < 10; i++) assert.equal((await p.getDeviceRequest("BBBB-BBBB", { clientAddress: `2001:db8:aa:${n + 1}::1` })).status, "invalid");
    assert.equal((await p.getDeviceRequest(started.user_code!, { clientAddress: "2001:db8:aa:99::1" })).status, "throttled", "another /64 of the same /48");
    assert.equal((await p.getDeviceRequest(started.user_code!, { clientAddress: "2001:db8:bb:1::1" })).status, "found", "another /48");
  });

  it("18.r2 wrong user codes count against a total budget over every address", { skip: kind === "sqlite" ? "1000 lookups: the memory store run covers the rule" : false }, async () => {
    fresh();
    const started = await start();
    for (let i = 0; i < 1000; i++) await host.provider.getDeviceRequest("CCCC-CCCC", { clientAddress: `198.51.${i >> 8}.${i & 255}` });
    assert.equal((await host.provider.getDeviceRequest(started.user_code!, { clientAddress: "203.0.113.9" })).status, "throttled");
  });

  it("18.r2 the user code is at least 8 letters", async () => {
    const provider = createProvider({ issuer: "https://idp.test", store: createMemoryStore(), dataKey: randomBytes(32), deviceFlow: { userCodeLength: 6 }, clients: [{ client_id: "tv", token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT], scope: "openid" }] });
    try {
      const response = await provider.fetch(new Request("https://idp.test/connect/deviceauthorization", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "client_id=tv" }));
      assert.match(((await response.json()) as { user_code: string }).user_code, /^[A-Z]{4}-[A-Z]{4}$/);
    } finally {
      await provider.close();
    }
  });

  it("18.r3 without a client address lookups share a large budget, not ten guesses for everyone", async () => {
    fresh();
    const started = await start();
    for (let i = 0; i < 20; i++) assert.equal((await host.provider.getDeviceRequest("DDDD-DDDD")).status, "invalid");
    assert.equal((await host.provider.getDeviceRequest(started.user_code!)).status, "found");
  });

  it("18.r3 a cross-site GET /device?user_code= (an <img>, another site's link) only pre-fills the form and spends no budget; a top-level visit looks the code up", async () => {
    fresh();
    const started = await start();
    const browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => now });
    const crossSite = [
      { "sec-fetch-site": "cross-site", "sec-fetch-dest": "image", "sec-fetch-mode": "no-cors" },
      { "sec-fetch-site": "cross-site", "sec-fetch-dest": "document", "sec-fetch-mode": "navigate" },
      { "sec-fetch-site": "same-origin", "sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate" },
    ];
    for (let i = 0; i < 12; i++) {
      // A made-up lookup ticket (the login page's way back after a POST lookup) does not count either.
      const page = await browser.get(`${host.issuer}/device?user_code=FFFF-FFFF${i % 2 ? `&lookup=9999999999.${"a".repeat(43)}` : ""}`, { headers: crossSite[i % 3]! });
      assert.equal(page.status, 200);
      assert.equal(page.query("input[name=user_code]")?.getAttribute("value"), "FFFF-FFFF");
    }
    const form = await browser.get(started.verification_uri_complete!, { headers: crossSite[1]! });
    assert.equal(form.query("input[name=user_code]")?.getAttribute("value"), started.user_code);
    assert.equal(form.query("button[name=decision]"), null, "no lookup on a cross-site GET");
    assert.equal((await host.provider.getDeviceRequest(started.user_code!)).status, "found");
    // Typed, scanned or followed on this site: the lookup happens at once (the login page comes next).
    const direct = await browser.get(started.verification_uri_complete!, { headers: { "sec-fetch-site": "none", "sec-fetch-dest": "document", "sec-fetch-mode": "navigate" } });
    assert.ok(direct.query("input[name=username]"), "the login page");
    await approve(browser, started.verification_uri_complete!);
  });

  it("18.r3 the login page's way back (a lookup ticket) works only in the browser whose POST found the code", async () => {
    fresh();
    const started = await start();
    const mine = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => now });
    let page = await mine.get(`${host.issuer}/device`);
    page = await mine.submitForm(page, { fields: { user_code: started.user_code! } });
    assert.ok(page.query("input[name=username]"), "the login page");
    const back = new URL(page.url).searchParams.get("returnUrl")!;
    assert.match(back, /^\/device\?user_code=[A-Z-]+&lookup=\d+\.[A-Za-z0-9_-]{43}$/);
    const other = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => now });
    await other.get(`${host.issuer}/device`); // its own CSRF cookie
    // Cross-site (the ticket is the only way past the pre-filled form there), the ticket is this browser's only.
    const replayed = await other.get(`${host.issuer}${back}`, { headers: { "sec-fetch-site": "cross-site", "sec-fetch-dest": "document", "sec-fetch-mode": "navigate" } });
    assert.equal(replayed.status, 200);
    assert.ok(replayed.query("input[name=user_code]"), "another browser only gets the pre-filled form");
    assert.equal(replayed.query("input[name=username]"), null);
    page = await mine.submitForm(page, { fields: { username: "alice", password: "alice" } });
    assert.ok(page.query("button[name=decision][value=allow]"), "sign-in leads straight to the confirmation");
  });

  it("18.r8 an approved device code is refused once the approving session was removed", async () => {
    fresh();
    const started = await start();
    const browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => now });
    await approve(browser, started.verification_uri_complete!);
    const { sessions } = await host.provider.querySessions({ subject: "1", count: 50 });
    assert.equal(await host.provider.removeSessions({ sessionId: sessions.at(-1)!.sessionId }), 1);
    now += 6000;
    const redeemed = await poll(started.device_code!);
    assert.equal(redeemed.status, 400, JSON.stringify(redeemed.body));
    assert.equal(redeemed.body.error, "invalid_grant");
  });

  it("18.r8 revokeGrants removes an approved, unredeemed device code", async () => {
    fresh();
    const started = await start();
    const browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => now });
    await approve(browser, started.verification_uri_complete!);
    await host.provider.revokeGrants("1", "tv");
    now += 6000;
    assert.equal((await poll(started.device_code!)).body.error, "invalid_grant");
    // Without the revocation the same steps redeem.
    const other = await start();
    await approve(browser, other.verification_uri_complete!);
    now += 6000;
    assert.equal((await poll(other.device_code!)).status, 200);
  });

  it("18.r9 same-second device authorizations are evicted oldest first; a confidential client counts in its own bucket", async () => {
    fresh();
    const address = "100.64.1.1";
    const first = (await post("/connect/deviceauthorization", { client_id: "tv" }, {}, address)).body;
    const later: string[] = [];
    for (let i = 0; i < 99; i++) later.push((await post("/connect/deviceauthorization", { client_id: "tv" }, {}, address)).body.device_code!);
    // The 101st from the address evicts exactly the oldest (the first), all within one second.
    await post("/connect/deviceauthorization", { client_id: "tv" }, {}, address);
    assert.equal((await poll(first.device_code!)).body.error, "invalid_grant", "the oldest went");
    assert.equal((await poll(later[0]!)).body.error, "authorization_pending", "the second oldest stays");
    // The confidential console is not counted against the address: its code survives 100 more anonymous ones.
    const consoleAuth = { authorization: `Basic ${Buffer.from("console:console-secret").toString("base64")}` };
    const mine = (await post("/connect/deviceauthorization", { scope: "openid" }, consoleAuth, address)).body;
    for (let i = 0; i < 100; i++) await post("/connect/deviceauthorization", { client_id: "tv" }, {}, address);
    const polled = await post("/connect/token", { grant_type: DEVICE_GRANT, device_code: mine.device_code! }, consoleAuth);
    assert.equal(polled.body.error, "authorization_pending");
  });
});

describe("18.r review: the exchange policy can widen the subject-token rule", () => {
  it("18.r1 a subject token for another audience is refused unless the policy sets acceptSubject", async () => {
    const ISSUER = "https://policy.test";
    const partner: ExtensionGrant<null> = { validate: async () => null, issue: (_v, request) => request.issueTokens({ subject: "batch-user", scopes: ["downstream.read"], audience: "urn:partner" }) };
    const seen: boolean[] = [];
    const provider = createProvider({
      issuer: ISSUER,
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      apiScopes: [{ name: "downstream.read" }],
      apiResources: [{ name: DOWNSTREAM, scopes: ["downstream.read"] }],
      clients: [
        { client_id: "minter", client_secret: "minter-secret", grant_types: ["urn:test:partner"], scope: "downstream.read" },
        { client_id: "strict", client_secret: "strict-secret", grant_types: [GRANT], scope: "downstream.read", token_exchange_allow_impersonation: true },
        { client_id: "trusted", client_secret: "trusted-secret", grant_types: [GRANT], scope: "downstream.read", token_exchange_allow_impersonation: true },
      ],
      grants: { "urn:test:partner": partner },
      tokenExchange: {
        policy(context) {
          seen.push(context.subjectIntended);
          return context.client.clientId === "trusted" ? { acceptSubject: true } : undefined;
        },
      },
    });
    try {
      const call = async (fields: Record<string, string>, client: string) => {
        const response = await provider.fetch(new Request(`${ISSUER}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client) }, body: new URLSearchParams(fields).toString() }));
        return { status: response.status, body: (await response.json()) as Record<string, string> };
      };
      const subject = (await call({ grant_type: "urn:test:partner" }, "minter")).body.access_token!;
      assert.equal(decodeJwt(subject).aud, "urn:partner");
      const fields = { grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, audience: DOWNSTREAM };
      const strict = await call(fields, "strict");
      assert.equal(strict.body.error, "invalid_request", JSON.stringify(strict.body));
      const trusted = await call(fields, "trusted");
      assert.equal(trusted.status, 200, JSON.stringify(trusted.body));
      assert.deepEqual(seen, [false, false]);
    } finally {
      await provider.close();
    }
  });
});
