import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost } from "@tessera/testing";
import * as oidc from "openid-client";
import { calculateJwkThumbprint, type JWK } from "jose";
import { baseConfig, pkce } from "./support/fixtures.ts";

const CB = "http://127.0.0.1/cb";
const stopAt = (u: URL) => u.href.startsWith(CB);

function parConfig() {
  const config = baseConfig();
  config.clients = [
    { client_id: "conf", client_secret: "conf-secret", redirect_uris: [CB], scope: "openid profile", token_endpoint_auth_method: "client_secret_basic" },
    { client_id: "other", client_secret: "other-secret", redirect_uris: [CB], scope: "openid profile", token_endpoint_auth_method: "client_secret_basic" },
    { client_id: "public", token_endpoint_auth_method: "none", redirect_uris: [CB], scope: "openid profile" },
    { client_id: "strict", client_secret: "strict-secret", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "client_secret_basic", require_pushed_authorization_requests: true },
  ];
  return config;
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

async function push(host: TestHost, fields: Record<string, string>, auth?: string): Promise<Response> {
  return fetch(`${host.issuer}/connect/par`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(auth ? { authorization: auth } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
}

function authorizeParams(): Record<string, string> {
  return { response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", state: "s1" };
}

/** Logs in through the authorize URL; the final redirect to the client. */
async function signIn(url: string | URL): Promise<URL> {
  const browser = new TestBrowser();
  const page = await browser.get(url.toString(), { stopAt });
  if (page.location) return new URL(page.location);
  const back = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
  return new URL(back.location!);
}

describe("17 PAR (RFC 9126)", () => {
  let host: TestHost;
  let offset = 0;
  before(async () => {
    host = await createTestHost(parConfig(), { listen: true, clock: () => Date.now() + offset });
  });
  after(() => host.close());

  it("17.1 PAR: discovery advertises the endpoint and the global requirement", async () => {
    const metadata = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(metadata.pushed_authorization_request_endpoint, `${host.issuer}/connect/par`);
    assert.equal(metadata.require_pushed_authorization_requests, false);
  });

  it("17.2 PAR: openid-client pushes, signs in with the request_uri, and redeems the code (confidential client)", async () => {
    const config = await oidc.discovery(new URL(host.issuer), "conf", undefined, oidc.ClientSecretBasic("conf-secret"), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid profile", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state });
    assert.match(url.searchParams.get("request_uri")!, /^urn:ietf:params:oauth:request_uri:/);
    assert.equal(url.searchParams.get("scope"), null);
    const callback = await signIn(url);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true });
    assert.equal(tokens.claims()!.sub, "1");
    assert.equal(tokens.token_type, "bearer");
  });

  it("17.3 PAR: a public client pushes too (client_id only, RFC 9126 §2.1)", async () => {
    const config = await oidc.discovery(new URL(host.issuer), "public", undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url), { pkceCodeVerifier: verifier });
    assert.ok(tokens.access_token);
  });

  it("17.4 PAR: DPoP at the PAR endpoint binds the code to the key (dpop_jkt); another key cannot redeem it", async () => {
    const config = await oidc.discovery(new URL(host.issuer), "conf", undefined, oidc.ClientSecretBasic("conf-secret"), { execute: [oidc.allowInsecureRequests] });
    const keyPair = await oidc.randomDPoPKeyPair("ES256");
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const verifier = oidc.randomPKCECodeVerifier();
    const params = { redirect_uri: CB, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" };
    const url = await oidc.buildAuthorizationUrlWithPAR(config, params, { DPoP });
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url), { pkceCodeVerifier: verifier }, undefined, { DPoP });
    assert.equal(tokens.token_type, "dpop");
    const payload = JSON.parse(Buffer.from(tokens.access_token.split(".")[1]!, "base64url").toString()) as { cnf?: { jkt?: string } };
    const jwk = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
    assert.equal(payload.cnf?.jkt, await calculateJwkThumbprint(jwk as JWK, "sha256"));

    const verifier2 = oidc.randomPKCECodeVerifier();
    const url2 = await oidc.buildAuthorizationUrlWithPAR(config, { ...params, code_challenge: await oidc.calculatePKCECodeChallenge(verifier2) }, { DPoP });
    const callback2 = await signIn(url2);
    const otherDPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));
    await assert.rejects(oidc.authorizationCodeGrant(config, callback2, { pkceCodeVerifier: verifier2 }, undefined, { DPoP: otherDPoP }), (error: Error & { error?: string }) => error.error === "invalid_dpop_proof" || error.error === "invalid_grant");
  });

  it("17.5 PAR: a request_uri is one-time", async () => {
    const pushed = (await (await push(host, authorizeParams(), basic("conf", "conf-secret"))).json()) as { request_uri: string; expires_in: number };
    assert.equal(pushed.expires_in, 60);
    const url = `${host.issuer}/connect/authorize?client_id=conf&request_uri=${encodeURIComponent(pushed.request_uri)}`;
    const first = await fetch(url, { redirect: "manual" });
    assert.equal(first.status, 302);
    assert.match(first.headers.get("location")!, /\/account\/login|login/);
    const again = await fetch(url, { redirect: "manual" });
    assert.equal(again.status, 400);
    assert.match(await again.text(), /invalid_request_uri/);
  });

  it("17.6 PAR: an expired request_uri is refused (redirected to a registered redirect_uri with invalid_request_uri)", async () => {
    const pushed = (await (await push(host, authorizeParams(), basic("conf", "conf-secret"))).json()) as { request_uri: string };
    offset = 61_000;
    try {
      const response = await fetch(`${host.issuer}/connect/authorize?client_id=conf&redirect_uri=${encodeURIComponent(CB)}&state=x&request_uri=${encodeURIComponent(pushed.request_uri)}`, { redirect: "manual" });
      assert.equal(response.status, 302);
      const location = new URL(response.headers.get("location")!);
      assert.equal(location.origin + location.pathname, CB);
      assert.equal(location.searchParams.get("error"), "invalid_request_uri");
      assert.equal(location.searchParams.get("state"), "x");
    } finally {
      offset = 0;
    }
  });

  it("17.7 PAR: another client's, an unknown, and a foreign request_uri are refused; other parameters are ignored", async () => {
    const pushed = (await (await push(host, authorizeParams(), basic("conf", "conf-secret"))).json()) as { request_uri: string };
    const stolen = await fetch(`${host.issuer}/connect/authorize?client_id=other&request_uri=${encodeURIComponent(pushed.request_uri)}`, { redirect: "manual" });
    assert.equal(stolen.status, 400);
    assert.match(await stolen.text(), /invalid_request_uri/);
    for (const [uri, error] of [["urn:ietf:params:oauth:request_uri:nope", /invalid_request_uri/], ["https://attacker.example/request.jwt", /request_uri_not_supported/]] as const) {
      const response = await fetch(`${host.issuer}/connect/authorize?client_id=conf&request_uri=${encodeURIComponent(uri)}`, { redirect: "manual" });
      assert.equal(response.status, 400);
      assert.match(await response.text(), error);
    }
    const unknownClient = await fetch(`${host.issuer}/connect/authorize?client_id=ghost&redirect_uri=${encodeURIComponent(CB)}&request_uri=${encodeURIComponent(pushed.request_uri)}`, { redirect: "manual" });
    assert.equal(unknownClient.status, 400);
    // The pushed request still works for its own client; a scope in the URL does not count.
    const own = await fetch(`${host.issuer}/connect/authorize?client_id=conf&scope=bogus&prompt=none&request_uri=${encodeURIComponent(pushed.request_uri)}`, { redirect: "manual" });
    assert.equal(own.status, 302);
    assert.doesNotMatch(own.headers.get("location")!, /error=/);
  });

  it("17.8 PAR: bad client authentication is 401; invalid parameters are 400 JSON, never a redirect", async () => {
    const bad = await push(host, authorizeParams(), basic("conf", "wrong"));
    assert.equal(bad.status, 401);
    assert.equal(((await bad.json()) as { error: string }).error, "invalid_client");
    const invalid = await push(host, { ...authorizeParams(), response_type: "token" }, basic("conf", "conf-secret"));
    assert.equal(invalid.status, 400);
    assert.match(invalid.headers.get("content-type")!, /json/);
    assert.equal(((await invalid.json()) as { error: string }).error, "unsupported_response_type");
    const badRedirect = await push(host, { ...authorizeParams(), redirect_uri: "https://attacker.example/" }, basic("conf", "conf-secret"));
    assert.equal(badRedirect.status, 400);
    assert.equal(((await badRedirect.json()) as { error: string }).error, "invalid_request");
    const withUri = await push(host, { ...authorizeParams(), request_uri: "urn:x" }, basic("conf", "conf-secret"));
    assert.equal(withUri.status, 400);
  });

  it("17.9 PAR: a client with require_pushed_authorization_requests is refused at plain authorize, accepted with PAR", async () => {
    const q = new URLSearchParams({ ...authorizeParams(), client_id: "strict" });
    const plain = await fetch(`${host.issuer}/connect/authorize?${q}`, { redirect: "manual" });
    assert.equal(plain.status, 302);
    assert.equal(new URL(plain.headers.get("location")!).searchParams.get("error"), "invalid_request");
    const pushed = (await (await push(host, authorizeParams(), basic("strict", "strict-secret"))).json()) as { request_uri: string };
    const viaPar = await fetch(`${host.issuer}/connect/authorize?client_id=strict&request_uri=${encodeURIComponent(pushed.request_uri)}`, { redirect: "manual" });
    assert.equal(viaPar.status, 302);
    assert.doesNotMatch(viaPar.headers.get("location")!, /error=/);
  });

  it("17.10 PAR: par.required refuses every plain authorization request and is advertised", async () => {
    const strictHost = await createTestHost({ ...parConfig(), par: { required: true, requestUriLifetime: 30 } }, { listen: true });
    try {
      const metadata = (await (await fetch(`${strictHost.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      assert.equal(metadata.require_pushed_authorization_requests, true);
      const plain = await fetch(`${strictHost.issuer}/connect/authorize?${new URLSearchParams({ ...authorizeParams(), client_id: "conf" })}`, { redirect: "manual" });
      assert.equal(new URL(plain.headers.get("location")!).searchParams.get("error"), "invalid_request");
      const config = await oidc.discovery(new URL(strictHost.issuer), "public", undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
      const browser = new TestBrowser();
      const page = await browser.get(url.toString(), { stopAt });
      const back = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(back.location!), { pkceCodeVerifier: verifier });
      assert.ok(tokens.access_token);
    } finally {
      await strictHost.close();
    }
  });
});

describe("PAR review", () => {
  it("17.11 PAR: pushes count against the pending-request caps (a public client needs no credentials)", async () => {
    const { createMemoryStore, createProvider } = await import("@tessera/server");
    const store = createMemoryStore();
    const provider = createProvider({
      issuer: "https://idp.test",
      store,
      dataKey: Buffer.alloc(32, 3).toString("base64url"),
      clients: [{ client_id: "public", token_endpoint_auth_method: "none", redirect_uris: [CB], scope: "openid" }],
      interaction: { maxPending: 10, maxPendingPerAddress: 5 },
    });
    try {
      const pushFrom = (address: string) =>
        provider.fetch(new Request("https://idp.test/connect/par", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ client_id: "public", ...authorizeParams() }) }), { clientAddress: address });
      for (let i = 0; i < 20; i++) assert.equal((await pushFrom("203.0.113.9")).status, 201);
      assert.equal((await store.grants.findAll({ kind: "par" }, 1000)).length, 5, "one address keeps at most its bucket's share");
      for (let i = 0; i < 10; i++) await pushFrom(`198.51.100.${i}`);
      const flooded = await pushFrom("198.51.100.200");
      assert.ok((await store.grants.findAll({ kind: "par" }, 1000)).length <= 20, "bounded by twice the total");
      assert.ok(flooded.status === 201 || flooded.status === 429);
    } finally {
      await provider.close();
    }
  });

  it("17 PAR: a used request_uri leaves the per-address count, so it never pushes out another user's unused one", async () => {
    const { createMemoryStore, createProvider } = await import("@tessera/server");
    let now = 1_000_000_000_000;
    const provider = createProvider({
      issuer: "https://idp.test",
      store: createMemoryStore(),
      dataKey: Buffer.alloc(32, 4).toString("base64url"),
      clients: [{ client_id: "conf", client_secret: "conf-secret", redirect_uris: [CB], scope: "openid" }],
      interaction: { maxPendingPerAddress: 2 },
      clock: () => now,
    });
    // A confidential client's backend pushes for every user from one address.
    const backend = { clientAddress: "203.0.113.7" };
    const pushOne = async () => {
      const response = await provider.fetch(new Request("https://idp.test/connect/par", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("conf", "conf-secret") }, body: new URLSearchParams(authorizeParams()) }), backend);
      assert.equal(response.status, 201);
      return ((await response.json()) as { request_uri: string }).request_uri;
    };
    const authorize = async (requestUri: string) => {
      const response = await provider.fetch(new Request(`https://idp.test/connect/authorize?${new URLSearchParams({ client_id: "conf", request_uri: requestUri })}`), { clientAddress: "198.51.100.1" });
      assert.equal(response.status, 302);
      return response.headers.get("location")!;
    };
    try {
      const slow = await pushOne(); // this user's browser is still on its way
      now += 1000;
      assert.doesNotMatch(await authorize(await pushOne()), /error=/, "a second user signs in at once");
      now += 1000;
      await pushOne(); // a third user: the bucket now holds two unused pushes, within its cap of 2
      assert.doesNotMatch(await authorize(slow), /error=/, "the first user's push was not evicted for a used one");
    } finally {
      await provider.close();
    }
  });

  it("17.12 PAR: a push authorize would refuse as too large is refused at the PAR endpoint (400 JSON), nothing stored", async () => {
    const host = await createTestHost({ ...parConfig(), limits: { maxFormBytes: 65536 } }, { listen: true });
    try {
      const big = "x".repeat(3000);
      const response = await push(host, { client_id: "public", ...authorizeParams(), state: big, nonce: big, login_hint: big });
      assert.equal(response.status, 400);
      assert.deepEqual(((await response.json()) as { error: string }).error, "invalid_request");
    } finally {
      await host.close();
    }
  });

  it("17.13 PAR: a client assertion naming the PAR endpoint as its audience authenticates there (RFC 9126 §2)", async () => {
    const { assertionAudiences } = await import("../packages/server/src/client-auth/jwt-assertion.ts");
    const audiences = assertionAudiences({ options: { issuer: "https://idp.test", mtls: { endpointBaseUrl: "https://mtls.idp.test" } } } as never);
    assert.ok(audiences.includes("https://idp.test/connect/par"));
    assert.ok(audiences.includes("https://mtls.idp.test/connect/par"));
  });
});

describe("17 PAR: the endpoint's methods and CORS", () => {
  let host: TestHost;
  before(async () => {
    host = await createTestHost(parConfig(), { listen: true });
  });
  after(() => host.close());

  it("17 PAR: GET and every other method but POST answer 405 with Allow: POST, as a JSON error", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${host.issuer}/connect/par`, { method });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "POST", method);
      assert.equal(response.headers.get("cache-control"), "no-store");
      assert.equal(((await response.json()) as { error: string }).error, "invalid_request", method);
    }
    const head = await fetch(`${host.issuer}/connect/par`, { method: "HEAD" });
    assert.equal(head.status, 405);
    assert.equal(head.headers.get("allow"), "POST");
    // POST still pushes.
    assert.equal((await push(host, authorizeParams(), basic("conf", "conf-secret"))).status, 201);
  });

  it("17 PAR: CORS like the token endpoint: preflight and answers for a registered redirect origin only", async () => {
    const origin = new URL(CB).origin;
    const preflight = (from: string) => fetch(`${host.issuer}/connect/par`, { method: "OPTIONS", headers: { origin: from, "access-control-request-method": "POST", "access-control-request-headers": "content-type, dpop" } });
    const allowed = await preflight(origin);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), origin);
    assert.match(allowed.headers.get("access-control-allow-methods")!, /POST/);
    assert.match(allowed.headers.get("access-control-allow-headers")!, /dpop/);
    const refused = await preflight("https://evil.test");
    assert.equal(refused.headers.get("access-control-allow-origin"), null);

    const pushFrom = (from: string, fields: Record<string, string>) =>
      fetch(`${host.issuer}/connect/par`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: from }, body: new URLSearchParams(fields).toString() });
    const pushed = await pushFrom(origin, { ...authorizeParams(), client_id: "public" });
    assert.equal(pushed.status, 201);
    assert.equal(pushed.headers.get("access-control-allow-origin"), origin);
    assert.match(((await pushed.json()) as { request_uri: string }).request_uri, /^urn:ietf:params:oauth:request_uri:/);
    const bad = await pushFrom(origin, { ...authorizeParams(), client_id: "public", response_type: "token" });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("access-control-allow-origin"), origin, "errors are readable by the app too");
    const other = await pushFrom("https://evil.test", { ...authorizeParams(), client_id: "public" });
    assert.equal(other.status, 201);
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const get = await fetch(`${host.issuer}/connect/par`, { headers: { origin } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("access-control-allow-origin"), origin);
  });
});
