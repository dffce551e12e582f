import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { Flow, RP, REDIRECT, baseConfig, pkce } from "./support/fixtures.ts";

type Json = Record<string, unknown>;

async function register(flow: Flow, body: unknown): Promise<{ status: number; body: Json; headers: Headers }> {
  const response = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/register`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) }));
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Json, headers: response.headers };
}

function authorizeUrl(flow: Flow, clientId: string, extra: Record<string, string> = {}, redirectUri = REDIRECT) {
  const { verifier, challenge } = pkce();
  const url = new URL(`${flow.host.issuer}/connect/authorize`);
  const params = { client_id: clientId, redirect_uri: redirectUri, response_type: "code", scope: "openid profile offline_access", state: "s", nonce: "n", code_challenge: challenge, code_challenge_method: "S256", ...extra };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url, verifier };
}

const stopAtRp = (u: URL) => u.origin === RP || u.protocol === "com.example.app:" || u.hostname === "127.0.0.1";

describe("19 review of clients at run time", () => {
  let flow: Flow;
  before(async () => {
    flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, allowedScopes: ["openid", "profile", "offline_access"], rateLimit: { window: 600, max: 1000 } } });
    await flow.signIn();
  });
  after(() => flow.close());

  it("19.d1 a registered client never gets a signed-in user's code without a consent page; prompt=none is consent_required", async () => {
    const reg = await register(flow, { client_name: "Web", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access" });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const clientId = String(reg.body.client_id);
    const silent = await flow.browser.get(authorizeUrl(flow, clientId, { prompt: "none" }).url, { stopAt: stopAtRp });
    assert.equal(new URL(silent.location!).searchParams.get("error"), "consent_required");
    const first = authorizeUrl(flow, clientId);
    const page = await flow.browser.get(first.url, { stopAt: stopAtRp });
    assert.ok(page.query("button[name=decision][value=allow]"), `consent page expected, got ${page.status} ${page.location ?? page.url}`);
    assert.match(page.body, /Unverified application/);
    assert.match(page.body, /rp\.test/, "the redirect host is shown");
    const back = await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]", stopAt: stopAtRp });
    const code = Flow.response(back).get("code")!;
    const secret = String(reg.body.client_secret);
    const tokens = (await (await flow.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: first.verifier }, { id: clientId, secret })).json()) as Json;
    assert.ok(tokens.refresh_token, "offline_access after a consent screen");
    // A confidential client with an https redirect keeps the remembered consent, but offline_access then needs prompt=consent.
    const again = authorizeUrl(flow, clientId);
    const remembered = await flow.browser.get(again.url, { stopAt: stopAtRp });
    const code2 = Flow.response(remembered).get("code")!;
    const tokens2 = (await (await flow.token({ grant_type: "authorization_code", code: code2, redirect_uri: REDIRECT, code_verifier: again.verifier }, { id: clientId, secret })).json()) as Json;
    assert.ok(tokens2.access_token);
    assert.equal(tokens2.refresh_token, undefined, "no offline_access without a consent screen (OIDC Core §11)");
    assert.equal(String(tokens2.scope).split(" ").includes("offline_access"), false);
  });

  it("19.d1 a registered public client with a loopback redirect is asked every time, even after a remembered consent", async () => {
    const redirect = "http://127.0.0.1:4711/cb";
    const reg = await register(flow, { redirect_uris: [redirect], token_endpoint_auth_method: "none", scope: "openid profile" });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const clientId = String(reg.body.client_id);
    for (let i = 0; i < 2; i++) {
      const page = await flow.browser.get(authorizeUrl(flow, clientId, { scope: "openid profile" }, redirect).url, { stopAt: stopAtRp });
      assert.ok(page.query("button[name=decision][value=allow]"), `round ${i}: consent asked`);
      const back = await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]", stopAt: stopAtRp });
      assert.ok(new URL(back.location!).searchParams.get("code"));
    }
  });

  it("19.d2 registrants cannot set Tessera's policy fields, and URLs must be https", async () => {
    const base = { redirect_uris: [REDIRECT] };
    for (const extra of [{ require_consent: false }, { access_token_lifetime: 3153600000 }, { token_exchange_allow_impersonation: true }, { refresh_token_sliding_lifetime: 0 }, { coordinate_lifetime_with_user_session: false }, { access_token_format: "reference" }]) {
      const reg = await register(flow, { ...base, ...extra });
      assert.equal(reg.status, 400, JSON.stringify(extra));
      assert.equal(reg.body.error, "invalid_client_metadata", JSON.stringify(extra));
    }
    for (const extra of [{ logo_uri: "javascript:alert(1)" }, { client_uri: "data:text/html,x" }, { policy_uri: "http://evil.example/p" }, { frontchannel_logout_uri: "javascript:alert(1)" }, { backchannel_logout_uri: "http://127.0.0.1/bc" }, { jwks_uri: "http://169.254.169.254/latest" }, { tos_uri: "ftp://x.example/t" }]) {
      const reg = await register(flow, { ...base, ...extra });
      assert.equal(reg.body.error, "invalid_client_metadata", JSON.stringify(extra));
    }
    const ok = await register(flow, { ...base, logo_uri: "https://rp.test/logo.png", made_up_field: 1 });
    assert.equal(ok.status, 201, "unknown metadata is still ignored (RFC 7591 §2)");
    assert.equal(ok.body.made_up_field, undefined);
  });

  it("19.d2 the url kind refuses non-http(s) schemes for every source (config and admin too)", async () => {
    const { clientMetadataShapeProblems } = await import("@tessera/server");
    for (const bad of ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd"]) {
      assert.ok(clientMetadataShapeProblems({ client_id: "x", logo_uri: bad }, { redirectUris: "absolute" }).some((p) => p.path[0] === "logo_uri"), bad);
    }
    assert.deepEqual(clientMetadataShapeProblems({ client_id: "x", logo_uri: "http://rp.test/l.png" }, { redirectUris: "absolute" }), []);
  });

  it("19.d3 redirect URI lists and strings are capped for every source", async () => {
    const uris = Array.from({ length: 21 }, (_, i) => `https://a${i}.rp.test/cb`);
    const reg = await register(flow, { redirect_uris: uris });
    assert.equal(reg.status, 400);
    assert.equal(reg.body.error, "invalid_redirect_uri");
    assert.equal((await register(flow, { redirect_uris: [REDIRECT], client_name: "x".repeat(5000) })).body.error, "invalid_client_metadata");
    assert.equal((await register(flow, { redirect_uris: [`${REDIRECT}?${"x".repeat(3000)}`] })).body.error, "invalid_redirect_uri");
    const { clientMetadataShapeProblems } = await import("@tessera/server");
    assert.ok(clientMetadataShapeProblems({ client_id: "x", post_logout_redirect_uris: uris }, { redirectUris: "absolute" }).length > 0, "config clients too");
  });

  it("19.d3 check-session: the base iframe lists config origins only; ?client_id= adds that stored client's origins", async () => {
    const ancestors = async (query = "") => {
      const response = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/checksession${query}`));
      return /frame-ancestors ([^;]+)/.exec(response.headers.get("content-security-policy") ?? "")?.[1]?.split(" ") ?? [];
    };
    const before = await ancestors();
    const reg = await register(flow, { redirect_uris: Array.from({ length: 20 }, (_, i) => `https://a${i}.other.test/cb`) });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.deepEqual(await ancestors(), before, "a registration does not grow the shared iframe's CSP");
    assert.deepEqual(before, [RP]);
    const own = await ancestors(`?client_id=${encodeURIComponent(String(reg.body.client_id))}`);
    assert.equal(own.length, 21);
    assert.ok(own.includes("https://a7.other.test"));
    assert.deepEqual(await ancestors("?client_id=nobody"), [RP]);
    assert.deepEqual(await ancestors(`?client_id=${"x".repeat(5000)}`), [RP]);
    const framed = async (referer: string) => {
      const response = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/checksession`, { headers: { referer } }));
      return /frame-ancestors ([^;]+)/.exec(response.headers.get("content-security-policy") ?? "")?.[1]?.split(" ") ?? [];
    };
    assert.deepEqual(await framed("https://a3.other.test/app/page"), [RP, "https://a3.other.test"], "the framing page's origin, when a stored client's");
    assert.deepEqual(await framed("https://unknown.test/"), [RP]);
    assert.deepEqual(await framed("not a url"), [RP]);
  });

  it("19.d4 deeply nested metadata is invalid_client_metadata, never a 500", async () => {
    for (const field of ["redirect_uris", "jwks", "constructor", "client_name", "made_up"]) {
      const nested = "[".repeat(30000) + "]".repeat(30000);
      const body = field === "redirect_uris" ? `{"redirect_uris":${nested}}` : `{"redirect_uris":["${REDIRECT}"],"${field}":${nested}}`;
      const response = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/register`, { method: "POST", headers: { "content-type": "application/json" }, body }));
      assert.ok(response.status === 400 || response.status === 201, `${field}: ${response.status}`);
      if (field !== "made_up" && field !== "constructor") assert.equal(response.status, 400, field);
    }
    const { clientMetadataShapeProblems } = await import("@tessera/server");
    let deep: unknown = [];
    for (let i = 0; i < 20000; i++) deep = [deep];
    assert.ok(clientMetadataShapeProblems({ client_id: "x", jwks: { keys: deep } }, { redirectUris: "absolute" }).length > 0);
    assert.ok(clientMetadataShapeProblems({ client_id: "x", unknown_thing: deep }, { redirectUris: "absolute" }).length > 0);
    // The admin API's path (the registry) and the config loader's.
    await assert.rejects(flow.host.provider.clients.create({ redirect_uris: [REDIRECT], jwks: { keys: deep } }), (e: { code?: string }) => e.code === "invalid_client_metadata");
    const { parseConfig } = await import("@tessera/host");
    const config = { ...baseConfig(), issuer: "https://idp.test" } as unknown as { clients: Record<string, unknown>[] };
    config.clients = [{ ...config.clients[0], jwks: { keys: deep } }];
    assert.throws(() => parseConfig(config), /clients\[0\]\.jwks: is nested deeper than 16 levels/);
  });

  it("19.d5 prototype-named keys are not client metadata fields", async () => {
    const body = `{"redirect_uris":["${REDIRECT}"],"constructor":{"blob":"x"},"toString":"not a function","hasOwnProperty":42,"valueOf":[1],"__proto__":{"require_consent":false}}`;
    const reg = await register(flow, body);
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    for (const key of ["constructor", "toString", "hasOwnProperty", "valueOf"]) assert.equal(Object.hasOwn(reg.body, key), false, key);
    const { clientMetadataShapeProblems } = await import("@tessera/server");
    const problems = clientMetadataShapeProblems(JSON.parse(`{"client_id":"x","constructor":1,"toString":"y","__proto__":2}`), { redirectUris: "absolute" });
    assert.match(problems[0]?.message ?? "", /unknown keys "constructor", "toString", "__proto__"/);
  });
});

describe("19.d1 pages", () => {
  it("19.d1 the login page marks a registered client unverified and names its redirect host; a configured one is not marked", async () => {
    const flow = await Flow.create({ ...baseConfig(), registration: { enabled: true } });
    try {
      const reg = await register(flow, { client_name: "Totally Legit Bank", redirect_uris: ["https://cb.attacker.test/cb"] });
      const login = await flow.browser.get(authorizeUrl(flow, String(reg.body.client_id), { scope: "openid" }, "https://cb.attacker.test/cb").url);
      assert.ok(login.query("input[name=password]"));
      assert.match(login.body, /Unverified application/);
      assert.match(login.body, /cb\.attacker\.test/);
      const own = await flow.go((await flow.authorizeUrl()).url);
      assert.ok(own.query("input[name=password]"));
      assert.doesNotMatch(own.body, /Unverified application/);
    } finally {
      await flow.close();
    }
  });
});

describe("19.d3 registration quota", () => {
  it("19.d3 a server-wide registration quota holds besides the per-address one; refused metadata is not counted", async () => {
    const flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, rateLimit: { window: 600, max: 10, networkMax: 10, totalMax: 2 } } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await register(flow, { redirect_uris: ["bad"] })).status, 400);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await register(flow, { redirect_uris: [REDIRECT] })).status);
      assert.deepEqual(statuses, [201, 201, 429]);
    } finally {
      await flow.close();
    }
  });
});

describe("19.d6 software statements", () => {
  it("19.d6 need exp, no future iat, and an aud naming this server when present", async () => {
    const trusted = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(trusted.publicKey)), kid: "trusted" };
    const flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, softwareStatement: { jwks: { keys: [jwk] } } } });
    const sign = (jwt: SignJWT) => jwt.setProtectedHeader({ alg: "ES256", kid: "trusted" }).sign(trusted.privateKey);
    const claims = { software_id: "app", redirect_uris: [REDIRECT] };
    try {
      const noExp = await sign(new SignJWT(claims).setIssuedAt());
      assert.equal((await register(flow, { software_statement: noExp })).body.error, "invalid_software_statement");
      const future = await sign(new SignJWT(claims).setIssuedAt(Math.floor(Date.now() / 1000) + 3600).setExpirationTime("2h"));
      assert.equal((await register(flow, { software_statement: future })).body.error, "invalid_software_statement");
      const otherAud = await sign(new SignJWT(claims).setIssuedAt().setExpirationTime("5m").setAudience("https://other.example"));
      assert.equal((await register(flow, { software_statement: otherAud })).body.error, "invalid_software_statement");
      const ours = await sign(new SignJWT(claims).setIssuedAt().setExpirationTime("5m").setAudience(flow.host.issuer));
      assert.equal((await register(flow, { software_statement: ours })).status, 201);
      const noAud = await sign(new SignJWT(claims).setIssuedAt().setExpirationTime("5m"));
      assert.equal((await register(flow, { software_statement: noAud })).status, 201);
    } finally {
      await flow.close();
    }
  });
});

describe("19.d7 client records: compare-and-set updates on every store", async () => {
  const { createMemoryStore, createSqliteStore, createPostgresStore } = await import("@tessera/server");
  const { startTestPostgres } = await import("./support/postgres.ts");
  const postgres = await startTestPostgres();
  after(() => postgres?.close());
  const stores: [string, () => Promise<import("@tessera/server").Store>][] = [
    ["memory", async () => createMemoryStore()],
    ["sqlite", () => createSqliteStore(":memory:")],
    ...(postgres ? [["postgres", async () => createPostgresStore(await postgres.createDatabase())] as [string, () => Promise<import("@tessera/server").Store>]] : []),
  ];
  for (const [name, open] of stores) {
    it(`19.d7 ${name}: update with the record read before succeeds once; a stale one changes nothing`, async () => {
      const store = await open();
      try {
        const record = { clientId: "c1", metadata: '{"client_id":"c1"}', secrets: [{ id: "s1", hash: "h1", createdAt: 1 }], createdAt: 1, updatedAt: 1 };
        assert.equal(await store.clients.create(record), true);
        const read = (await store.clients.get("c1"))!;
        const first = { ...read, metadata: '{"client_id":"c1","client_name":"A"}' };
        const second = { ...read, secrets: [...read.secrets, { id: "s2", hash: "h2", createdAt: 1 }] };
        assert.equal(await store.clients.update(first, read), true);
        assert.equal(await store.clients.update(second, read), false, "the second writer read a state that is gone");
        const now = (await store.clients.get("c1"))!;
        assert.equal(now.metadata, first.metadata);
        assert.equal(now.secrets.length, 1);
        assert.equal(await store.clients.update({ ...now, updatedAt: 2 }, now), true, "a fresh read succeeds");
        assert.equal(await store.clients.update({ ...now, clientId: "nobody" }, { ...now, clientId: "nobody" }), false);
        assert.equal(await store.clients.update({ ...now, updatedAt: 3 }), true, "without expected: a plain replace");
      } finally {
        await store.close();
      }
    });
  }
});

describe("19.d7 admin secrets", () => {
  it("19.d7 chosen secrets need 32 characters; rotation stops at 10 live secrets; the last live secret stays", async () => {
    const flow = await Flow.create(baseConfig());
    try {
      const registry = flow.host.provider.clients;
      await assert.rejects(registry.create({ redirect_uris: [REDIRECT], client_secret: "short-secret" }), /32/);
      const made = await registry.create({ redirect_uris: [REDIRECT], client_secret: "x".repeat(32) });
      const id = made.client.client_id;
      for (let i = 0; i < 9; i++) await registry.rotateSecret(id);
      assert.equal((await registry.get(id))!.secrets!.length, 10);
      await assert.rejects(registry.rotateSecret(id), (e: { status?: number }) => e.status === 409);
      assert.equal((await registry.get(id))!.secrets!.length, 10, "no live secret was dropped");
      // Expiring the older ones at once makes room; then the new one is the last live secret.
      const secrets = (await registry.get(id))!.secrets!;
      assert.equal(await registry.removeSecret(id, secrets[0]!.id), "removed", "a live one may go while others live");
      const fresh = (await registry.rotateSecret(id, { oldSecretsExpireIn: 0 }))!;
      assert.equal(await registry.removeSecret(id, fresh.secretId), "last_secret", "the others expired: this is the last live one");
    } finally {
      await flow.close();
    }
  });
});
