import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestPage } from "@tessera/testing";
import { mtlsFetch } from "@tessera/client";
import { sha256Base64url } from "@tessera/protocol";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { FailureThrottle, createMemoryStore, createPostgresStore, createProvider, createSqliteStore, type Store } from "@tessera/server";
import { Flow, baseConfig } from "./support/fixtures.ts";
import { makePki, type TestPki } from "./support/certs.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

describe("client assertion audience (RFC 7523 §3)", () => {
  let host: TestHost;
  let key: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    key = pair.privateKey;
    const c = baseConfig();
    c.clients = [{ client_id: "pkjwt", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1" }] }, grant_types: ["client_credentials"], scope: "api1.read" }];
    host = await createTestHost(c);
  });
  after(() => host.close());

  const assertion = (aud: string) =>
    new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer("pkjwt").setSubject("pkjwt").setAudience(aud).setIssuedAt().setExpirationTime("60s").sign(key);
  const send = async (url: string, aud: string, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: await assertion(aud) });
    const response = await host.fetch(new Request(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: body.toString() }));
    return { status: response.status, error: ((await response.json()) as { error?: string }).error };
  };

  test("1.1 client assertion aud: the issuer and the configured token endpoint are accepted", async () => {
    assert.equal((await send(`${host.issuer}/connect/token`, host.issuer)).status, 200);
    assert.equal((await send(`${host.issuer}/connect/token`, `${host.issuer}/connect/token`)).status, 200);
  });

  test("1.2 client assertion aud: a token endpoint URL derived from the request (another origin) is refused", async () => {
    // An assertion minted for another server whose token endpoint has the same path.
    assert.deepEqual(await send("http://evil.example/connect/token", "http://evil.example/connect/token"), { status: 401, error: "invalid_client" });
    assert.deepEqual(await send(`${host.issuer}/connect/token`, "http://evil.example/connect/token", { host: "evil.example" }), { status: 401, error: "invalid_client" });
  });
});

describe("authorization code replay (RFC 6749 §4.1.3)", () => {
  let flow: Flow;
  before(async () => {
    flow = await Flow.create();
  });
  after(() => flow.close());

  const userinfo = async (accessToken: string) => (await flow.host.fetch(new Request(`${flow.host.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } }))).status;
  const errorOf = async (response: Response) => ((await response.json()) as { error?: string }).error;

  test("3.1 code replay: another client or a wrong verifier gets invalid_grant and revokes nothing; the owner's replay revokes", async () => {
    const { code, verifier } = await flow.signIn();
    const first = await flow.redeem(code, verifier);
    assert.equal(first.status, 200);
    const { access_token } = (await first.json()) as { access_token: string };
    assert.equal(await userinfo(access_token), 200);

    // Another client, with the right verifier: the code is not its own.
    const other = await flow.token({ grant_type: "authorization_code", code, redirect_uri: "https://rp.test/signin-oidc", code_verifier: verifier, client_id: "post", client_secret: "post-secret" });
    assert.equal(other.status, 400);
    assert.equal(await errorOf(other), "invalid_grant");
    assert.equal(await userinfo(access_token), 200, "another client's replay revoked the owner's tokens");

    // Its own client without the right verifier: not proven to be the code's holder.
    const wrongVerifier = await flow.redeem(code, "x".repeat(43));
    assert.equal(await errorOf(wrongVerifier), "invalid_grant");
    assert.equal(await userinfo(access_token), 200, "a replay without the verifier revoked the owner's tokens");

    // The legitimate client replaying it: the code leaked, the family goes.
    const replay = await flow.redeem(code, verifier);
    assert.equal(await errorOf(replay), "invalid_grant");
    assert.equal(await userinfo(access_token), 401);
  });
});

describe("failure counts above 100 (throttle)", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-review-throttle-"));
  let postgres: TestPostgres | undefined;
  before(async () => {
    postgres = await startTestPostgres();
  });
  after(async () => {
    await postgres?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const stores: [string, () => Promise<Store>][] = [
    ["memory", async () => createMemoryStore()],
    ["sqlite", () => createSqliteStore(join(dir, "throttle.db"))],
    ["postgres", async () => (postgres ? createPostgresStore(await postgres.createDatabase()) : Promise.reject(new Error("no PostgreSQL")))],
  ];
  for (const [name, open] of stores) {
    test(`14.${name} throttle limit 150: the 151st failure is refused, the 150th is not`, async (t) => {
      if (name === "postgres" && !postgres) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
      const store = await open();
      try {
        const now = 1_000_000;
        const throttle = new FailureThrottle(store.grants, () => now);
        const limit = { window: 900, max: 150 };
        // Expired failures of the same subject must not count (nor hide live ones).
        const hashed = `throttle:${sha256Base64url("client:c1")}`;
        for (let i = 0; i < 5; i++) await store.grants.put({ key: `old-${i}`, kind: "throttle", clientId: "", subject: hashed, data: "{}", createdAt: now - 2000, expiresAt: now - 1000 });
        for (let i = 0; i < 149; i++) await throttle.record("client:c1", limit);
        assert.equal(await throttle.blocked("client:c1", limit), false, "149 failures stay under a limit of 150");
        assert.equal(await throttle.record("client:c1", limit), 150);
        assert.equal(await throttle.blocked("client:c1", limit), true, "150 failures refuse the next attempt");
        assert.equal(await store.grants.count({ subject: hashed, kind: "throttle" }, now), 150, "count: live rows only");
        assert.equal(await store.grants.count({ subject: hashed, kind: "throttle" }, now - 1500), 155);
      } finally {
        await store.close();
      }
    });
  }
});

describe("client authentication throttling behind a shared address (NAT)", () => {
  test("18.1 client auth throttle: one client's wrong secrets from a shared address do not lock out 20 healthy clients", async () => {
    const clients = [{ client_id: "attacker", client_secret: "attacker-secret", grant_types: ["client_credentials"], scope: "api1.read" }];
    for (let i = 0; i < 20; i++) clients.push({ client_id: `svc${i}`, client_secret: `svc${i}-secret`, grant_types: ["client_credentials"], scope: "api1.read" });
    const provider = createProvider({ issuer: "https://idp.test", store: createMemoryStore(), dataKey: Buffer.alloc(32, 9).toString("base64url"), clients, apiScopes: [{ name: "api1.read" }], clientAuthThrottling: { window: 900, maxPerClient: 10, maxPerAddress: 10 } });
    const send = (id: string, secret: string, address = "192.0.2.7") =>
      provider.fetch(
        new Request("https://idp.test/connect/token", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}` },
          body: "grant_type=client_credentials",
        }),
        { clientAddress: address },
      );
    try {
      // The one attacking client id alone uses up the address's failures too.
      let refused = 0;
      for (let i = 0; i < 60; i++) if ((await send("attacker", `guess-${i}`)).status === 429) refused++;
      assert.equal(refused, 50, "the attacking client id is throttled after its 10 failures");
      for (let i = 0; i < 20; i++) assert.equal((await send(`svc${i}`, `svc${i}-secret`)).status, 200, `svc${i} shares the address and must still get tokens`);
      assert.equal((await send("attacker", "attacker-secret")).status, 429, "the attacking client id stays throttled from that address");
      // The address is over its limit: a wrong secret for any other client id from there is refused too.
      for (let i = 0; i < 3; i++) assert.equal((await send("svc0", "wrong")).status, 429, "failures from a locked address are answered 429");
      assert.equal((await send("svc0", "svc0-secret")).status, 429, "a client id that failed from the locked address is refused outright");
      assert.equal((await send("svc1", "svc1-secret")).status, 200);
      assert.equal((await send("attacker", "attacker-secret", "198.51.100.1")).status, 200, "another address is not affected");
    } finally {
      await provider.close();
    }
  });
});

describe("login throttling with device cookies (OWASP)", () => {
  test("18.2 login throttle: wrong passwords for an account do not lock out its owner's browser that signed in before; that browser has its own limit", async () => {
    const host = await createTestHost({ ...baseConfig(), loginThrottling: { window: 900, perAccount: 5, perAddress: 1000 } });
    const owner = new TestBrowser({ handlers: { [host.issuer]: host.fetch } });
    const attacker = new TestBrowser({ handlers: { [host.issuer]: host.fetch } });
    const attempt = async (browser: TestBrowser, username: string, password: string) => browser.submitForm(await browser.get(`${host.issuer}/login`), { fields: { username, password } });
    const signedIn = (page: TestPage) => page.status === 200 && new URL(page.url).pathname === "/" && !page.query("input[name=password]");
    try {
      assert.ok(signedIn(await attempt(owner, "alice", "alice")));
      assert.ok(owner.cookies.get("tessera.device", host.issuer), "a successful sign-in leaves a device cookie");
      owner.cookies.clear("tessera.session");

      for (let i = 0; i < 5; i++) assert.equal((await attempt(attacker, "alice", `guess-${i}`)).text("#login-error"), "Invalid username or password.");
      assert.equal((await attempt(attacker, "alice", "alice")).status, 429, "anonymous attempts for the account are locked");
      // A forged or copied-for-another-account device cookie is anonymous.
      attacker.cookies.set({ ...owner.cookies.get("tessera.device", host.issuer)!, value: `${owner.cookies.get("tessera.device", host.issuer)!.value.slice(0, -2)}xx` });
      assert.equal((await attempt(attacker, "alice", "alice")).status, 429, "a device cookie with a bad signature counts for nothing");

      assert.ok(signedIn(await attempt(owner, "alice", "alice")), "the owner's browser still signs in");
      owner.cookies.clear("tessera.session");
      // The device cookie names alice only: for bob it is an anonymous attempt.
      for (let i = 0; i < 5; i++) await attempt(attacker, "bob", "wrong");
      assert.equal((await attempt(owner, "bob", "bob-password")).status, 429);

      // The device cookie has a limit of its own.
      for (let i = 0; i < 5; i++) assert.equal((await attempt(owner, "alice", "wrong")).status, 200);
      assert.equal((await attempt(owner, "alice", "alice")).status, 429, "the device cookie's own failures lock it");
    } finally {
      await host.close();
    }
  });
});

describe("DPoP htu on the mTLS listener and the plain one (RFC 9449 §4.3, RFC 8705 §5)", () => {
  let pki: TestPki;
  let host: TestHost;
  let key: CryptoKey;
  let jwk: JWK;
  before(async () => {
    pki = makePki();
    const pair = await generateKeyPair("ES256", { extractable: true });
    key = pair.privateKey;
    jwk = await exportJWK(pair.publicKey);
    host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }],
        clients: [
          { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" },
          { client_id: "tls-dpop", token_endpoint_auth_method: "tls_client_auth", tls_client_auth_san_dns: "client-a.test", grant_types: ["client_credentials"], scope: "api1.read", dpop_bound_access_tokens: true, tls_client_certificate_bound_access_tokens: true },
        ],
        mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca },
      },
      { listen: true },
    );
  });
  after(async () => {
    await host.close();
    pki.cleanup();
  });

  const proof = (htu: string) =>
    new SignJWT({ htm: "POST", htu, jti: randomUUID() }).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk }).setIssuedAt().sign(key);
  const basic = { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` };
  const outcome = async (response: Response) => ({ status: response.status, error: ((await response.json()) as { error?: string }).error });
  const overMtls = async (htu: string) =>
    outcome(await mtlsFetch({ ...pki.client("a"), ca: pki.ca })(`${host.mtlsUrl}/connect/token`, { method: "POST", headers: { ...basic, dpop: await proof(htu) }, body: "grant_type=client_credentials" }));
  const overPlain = async (htu: string) => outcome(await fetch(`${host.issuer}/connect/token`, { method: "POST", headers: { ...basic, dpop: await proof(htu) }, body: "grant_type=client_credentials" }));

  test("7.1 DPoP htu: the mTLS alias is accepted on the mTLS listener and refused on the plain one", async () => {
    const alias = `${host.mtlsUrl}/connect/token`;
    const plain = `${host.issuer}/connect/token`;
    assert.deepEqual(await overMtls(alias), { status: 200, error: undefined });
    assert.deepEqual(await overPlain(alias), { status: 400, error: "invalid_dpop_proof" });
    assert.deepEqual(await overPlain(plain), { status: 200, error: undefined });
    assert.deepEqual(await overMtls(plain), { status: 400, error: "invalid_dpop_proof" }, "the URL used on the mTLS listener is the alias");
  });

  test("7.2 DPoP htu: a htu built from a spoofed Host (or request URL) is refused", async () => {
    const spoofed = "http://evil.example/connect/token";
    const response = await host.fetch(new Request(spoofed, { method: "POST", headers: { ...basic, dpop: await proof(spoofed) }, body: "grant_type=client_credentials" }));
    assert.deepEqual(await outcome(response), { status: 400, error: "invalid_dpop_proof" });
    const viaHost = await fetch(`${host.issuer}/connect/token`, { method: "POST", headers: { ...basic, host: "evil.example", dpop: await proof(spoofed) }, body: "grant_type=client_credentials" });
    assert.deepEqual(await outcome(viaHost), { status: 400, error: "invalid_dpop_proof" });
  });
});
