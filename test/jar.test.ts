import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost } from "@tessera/testing";
import * as oidc from "openid-client";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { baseConfig, pkce } from "./support/fixtures.ts";
import { startTestPostgres } from "./support/postgres.ts";

const CB = "http://127.0.0.1/cb";
const stopAt = (u: URL) => u.href.startsWith(CB);
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
  alg: string;
  kid: string;
}

async function newKey(alg: "ES256" | "PS256", kid: string): Promise<Key> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" }, alg, kid };
}

/** Logs in through the authorize URL; the final redirect to the client. */
async function signIn(url: string | URL): Promise<URL> {
  const browser = new TestBrowser();
  const page = await browser.get(url.toString(), { stopAt });
  if (page.location) return new URL(page.location);
  const back = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
  return new URL(back.location!);
}

describe("17 JAR (RFC 9101)", () => {
  let host: TestHost;
  let ec: Key;
  let rsa: Key;
  let attacker: Key;
  let jwksHits = 0;
  let jwksServer: ReturnType<typeof createServer>;
  let jwksUri = "";

  before(async () => {
    ec = await newKey("ES256", "ec-1");
    rsa = await newKey("PS256", "rsa-1");
    attacker = await newKey("ES256", "ec-1");
    jwksServer = createServer((_req, res) => {
      jwksHits++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [ec.jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
    const config = baseConfig();
    const common = { redirect_uris: [CB], scope: "openid profile", token_endpoint_auth_method: "private_key_jwt" as const };
    config.clients = [
      { client_id: "jar", ...common, jwks: { keys: [ec.jwk] } },
      { client_id: "multi", ...common, redirect_uris: [CB, "http://127.0.0.1/other"], jwks: { keys: [ec.jwk] } },
      { client_id: "strict", ...common, jwks: { keys: [ec.jwk] }, require_signed_request_object: true },
      { client_id: "pinned", ...common, jwks: { keys: [ec.jwk, rsa.jwk] }, request_object_signing_alg: "PS256" },
      { client_id: "remote", ...common, jwks_uri: jwksUri },
      { client_id: "secret", client_secret: "secret-secret", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "client_secret_basic" },
    ];
    host = await createTestHost(config, { listen: true });
  });
  after(async () => {
    await host.close();
    jwksServer.close();
  });

  /** A request object for `client` with sensible defaults; `claims` override them (undefined drops one). */
  async function requestObject(clientId: string, claims: Record<string, unknown> = {}, options: { key?: Key; header?: Record<string, unknown> } = {}): Promise<string> {
    const key = options.key ?? ec;
    const now = Math.floor(Date.now() / 1000);
    const all: Record<string, unknown> = {
      iss: clientId, aud: host.issuer, client_id: clientId, iat: now, nbf: now, exp: now + 300, jti: randomUUID(),
      response_type: "code", redirect_uri: CB, scope: "openid", state: "obj-state", code_challenge: pkce().challenge, code_challenge_method: "S256",
      ...claims,
    };
    for (const [name, value] of Object.entries(all)) if (value === undefined) delete all[name];
    return new SignJWT(all as JWTPayload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "oauth-authz-req+jwt", ...options.header }).sign(key.privateKey);
  }

  function unsigned(claims: Record<string, unknown>): string {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    return `${encode({ alg: "none" })}.${encode(claims)}.`;
  }

  async function authorize(query: Record<string, string>): Promise<Response> {
    return fetch(`${host.issuer}/connect/authorize?${new URLSearchParams(query)}`, { redirect: "manual" });
  }

  /** The error an authorization response carries: from the redirect to the client, or from the error page. */
  async function authorizeErrorOf(response: Response): Promise<{ error: string | null; description: string | null; state: string | null; redirected: boolean }> {
    if (response.status === 302) {
      const location = new URL(response.headers.get("location")!);
      return { error: location.searchParams.get("error"), description: location.searchParams.get("error_description"), state: location.searchParams.get("state"), redirected: location.href.startsWith(CB) };
    }
    assert.equal(response.status, 400);
    const text = await response.text();
    return { error: /invalid_request_object|request_uri_not_supported|invalid_request_uri|invalid_request|invalid_client/.exec(text)?.[0] ?? null, description: text, state: null, redirected: false };
  }

  async function clientAssertion(clientId: string, key: Key = ec): Promise<string> {
    return new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: key.alg, kid: key.kid }).setIssuer(clientId).setSubject(clientId).setAudience(host.issuer).setIssuedAt().setExpirationTime("1m").sign(key.privateKey);
  }

  async function push(clientId: string, fields: Record<string, string>): Promise<Response> {
    return fetch(`${host.issuer}/connect/par`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: clientId, client_assertion_type: ASSERTION_TYPE, client_assertion: await clientAssertion(clientId), ...fields }).toString(),
    });
  }

  async function discover(clientId: string) {
    return oidc.discovery(new URL(host.issuer), clientId, undefined, oidc.PrivateKeyJwt({ key: ec.privateKey, kid: ec.kid }), { execute: [oidc.allowInsecureRequests] });
  }

  it("17.20 JAR: discovery advertises request objects by value, not request_uri, and the accepted algorithms", async () => {
    const metadata = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(metadata.request_parameter_supported, true);
    assert.equal(metadata.request_uri_parameter_supported, false);
    assert.equal(metadata.require_signed_request_object, false);
    assert.equal(metadata.require_pushed_authorization_requests, false);
    const algs = metadata.request_object_signing_alg_values_supported as string[];
    assert.ok(algs.includes("ES256") && algs.includes("PS256") && algs.includes("EdDSA"));
    assert.ok(!algs.includes("none") && !algs.some((a) => a.startsWith("HS")));
  });

  it("17.21 JAR: openid-client signs a request object (client_id + request only) and the code is redeemed (private_key_jwt)", async () => {
    const config = await discover("jar");
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = await oidc.buildAuthorizationUrlWithJAR(config, { redirect_uri: CB, scope: "openid profile", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state, nonce }, { key: ec.privateKey, kid: ec.kid });
    assert.deepEqual([...url.searchParams.keys()].sort(), ["client_id", "request"]);
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    assert.equal(tokens.claims()!.sub, "1");
    assert.equal(tokens.scope, "openid profile");
  });

  it("17.22 JAR: openid-client pushes a signed request object (PAR + JAR) and the code is redeemed", async () => {
    const config = await discover("strict");
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const jar = await oidc.buildAuthorizationUrlWithJAR(config, { redirect_uri: CB, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state }, { key: ec.privateKey, kid: ec.kid });
    const url = await oidc.buildAuthorizationUrlWithPAR(config, jar.searchParams);
    assert.match(url.searchParams.get("request_uri")!, /^urn:ietf:params:oauth:request_uri:/);
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url), { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true });
    assert.equal(tokens.claims()!.sub, "1");
  });

  it("17.23 JAR: parameters outside the request object are ignored, not merged (RFC 9101 §6.3)", async () => {
    const object = await requestObject("jar", { scope: "openid", state: "inside" });
    const url = `${host.issuer}/connect/authorize?${new URLSearchParams({
      client_id: "jar", request: object, scope: "openid profile", redirect_uri: "https://attacker.example/cb", state: "outside", prompt: "none", response_type: "token", nonce: "outer-nonce",
    })}`;
    // prompt=none outside would answer login_required at once; the login page shows that it did not count.
    const browser = new TestBrowser();
    const page = await browser.get(url, { stopAt });
    assert.ok(page.query("input[name=password]"), "the login page, not a prompt=none error");
    const back = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    const callback = new URL(back.location!);
    assert.equal(callback.origin + callback.pathname, CB);
    assert.equal(callback.searchParams.get("state"), "inside");
    assert.ok(callback.searchParams.get("code"));

    // A parameter only outside (here nonce) does not count either: the ID token has none.
    const config = await discover("jar");
    const verifier = oidc.randomPKCECodeVerifier();
    const second = await requestObject("jar", { scope: "openid", state: "s2", code_challenge: await oidc.calculatePKCECodeChallenge(verifier) });
    const url2 = `${host.issuer}/connect/authorize?${new URLSearchParams({ client_id: "jar", request: second, nonce: "outer-nonce", scope: "openid profile" })}`;
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url2), { pkceCodeVerifier: verifier, expectedState: "s2" });
    assert.equal(tokens.scope, "openid");
    assert.equal(tokens.claims()!.nonce, undefined);
  });

  it("17.24 JAR: wrong aud, wrong iss, alg none, bad signature, expired, long window, future nbf, foreign typ: invalid_request_object, state not echoed", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, RegExp][] = [
      ["wrong aud", await requestObject("jar", { aud: "https://other.example" }), /aud/],
      ["aud missing", await requestObject("jar", { aud: undefined }), /aud/],
      ["wrong iss", await requestObject("jar", { iss: "multi" }), /iss/],
      ["iss missing", await requestObject("jar", { iss: undefined }), /iss/],
      ["alg none", unsigned({ iss: "jar", aud: host.issuer, exp: now + 60, response_type: "code", redirect_uri: CB, scope: "openid", state: "obj-state" }), /alg none/],
      ["bad signature", await requestObject("jar", {}, { key: attacker }), /signature/],
      ["expired", await requestObject("jar", { iat: now - 600, nbf: now - 600, exp: now - 300 }), /expired/],
      ["exp missing", await requestObject("jar", { exp: undefined }), /exp/],
      ["window over 60 minutes", await requestObject("jar", { nbf: now, exp: now + 3601 }), /3600 seconds/],
      ["window over 60 minutes from iat", await requestObject("jar", { nbf: undefined, iat: now, exp: now + 3700 }), /3600 seconds/],
      ["future iat stretching the window", await requestObject("jar", { nbf: undefined, iat: now + 86_400, exp: now + 86_400 + 60 }), /3600 seconds/],
      ["nbf in the future", await requestObject("jar", { nbf: now + 600, exp: now + 900 }), /nbf/],
      ["foreign typ", await requestObject("jar", {}, { header: { typ: "dpop+jwt" } }), /typ/],
      ["HS256", await new SignJWT({ iss: "jar", aud: host.issuer, exp: now + 60 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("x".repeat(32))), /HS256/],
      ["client_id differs", await requestObject("jar", { client_id: "multi" }), /client_id/],
      ["nested request_uri", await requestObject("jar", { request_uri: "urn:ietf:params:oauth:request_uri:x" }), /request_uri/],
      ["scope not a string", await requestObject("jar", { scope: ["openid"] }), /scope/],
    ];
    for (const [name, object, reason] of cases) {
      const result = await authorizeErrorOf(await authorize({ client_id: "jar", request: object, redirect_uri: CB, state: "outer" }));
      assert.equal(result.error, "invalid_request_object", name);
      assert.match(result.description ?? "", reason, name);
      // Only the one registered redirect_uri gets the error; nothing from the rejected object (or outside it) is echoed.
      assert.ok(result.redirected, name);
      assert.equal(result.state, null, name);
    }
  });

  it("17.25 JAR: a rejected object of a client with several redirect_uris is an error page, never a redirect", async () => {
    const response = await authorize({ client_id: "multi", request: await requestObject("multi", { aud: "https://other.example" }), redirect_uri: CB });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /invalid_request_object/);
    const unknown = await authorize({ client_id: "ghost", request: await requestObject("ghost") });
    assert.equal(unknown.status, 400);
    const noClientId = await authorize({ request: await requestObject("jar") });
    assert.equal(noClientId.status, 400);
    assert.match(await noClientId.text(), /invalid_request/);
    // A client without registered keys cannot verify any object.
    const secret = await authorizeErrorOf(await authorize({ client_id: "secret", request: await requestObject("secret") }));
    assert.equal(secret.error, "invalid_request_object");
  });

  it("17.26 JAR: require_signed_request_object refuses unsigned requests at authorize and at PAR", async () => {
    const plain = { client_id: "strict", response_type: "code", redirect_uri: CB, scope: "openid", state: "plain", code_challenge: pkce().challenge, code_challenge_method: "S256" };
    const atAuthorize = await authorizeErrorOf(await authorize(plain));
    assert.equal(atAuthorize.error, "invalid_request_object");
    assert.equal(atAuthorize.state, "plain", "a plain request's validated redirect_uri and state carry the error");
    const none = await authorizeErrorOf(await authorize({ client_id: "strict", request: unsigned({ iss: "strict", aud: host.issuer, exp: Math.floor(Date.now() / 1000) + 60, ...plain }) }));
    assert.equal(none.error, "invalid_request_object");

    const { client_id: _, ...fields } = plain;
    const atPar = await push("strict", fields);
    assert.equal(atPar.status, 400);
    assert.equal(((await atPar.json()) as { error: string }).error, "invalid_request_object");
    const signedPush = await push("strict", { request: await requestObject("strict") });
    assert.equal(signedPush.status, 201);
    const signed = await authorize({ client_id: "strict", request: await requestObject("strict", { prompt: "none" }) });
    assert.equal(new URL(signed.headers.get("location")!).searchParams.get("error"), "login_required", "a signed request passes on to the usual checks");
  });

  it("17.27 JAR: request_object_signing_alg pins the algorithm", async () => {
    const wrong = await authorizeErrorOf(await authorize({ client_id: "pinned", request: await requestObject("pinned", { prompt: "none" }) }));
    assert.equal(wrong.error, "invalid_request_object");
    const right = await authorize({ client_id: "pinned", request: await requestObject("pinned", { prompt: "none" }, { key: rsa }) });
    assert.equal(new URL(right.headers.get("location")!).searchParams.get("error"), "login_required");
    const atPar = await push("pinned", { request: await requestObject("pinned") });
    assert.equal(atPar.status, 400);
    assert.equal(((await atPar.json()) as { error: string }).error, "invalid_request_object");
  });

  it("17.28 JAR: a request object's jti is used once", async () => {
    const object = await requestObject("jar", { prompt: "none" });
    const first = await authorize({ client_id: "jar", request: object });
    assert.equal(new URL(first.headers.get("location")!).searchParams.get("error"), "login_required");
    const again = await authorizeErrorOf(await authorize({ client_id: "jar", request: object }));
    assert.equal(again.error, "invalid_request_object");
  });

  it("17.29 JAR: a request_uri that is not PAR's is request_uri_not_supported; PAR-form ones stay invalid_request_uri; request + request_uri is invalid_request", async () => {
    for (const uri of ["https://client.example/request.jwt", "http://127.0.0.1/r", "urn:other:thing"]) {
      const result = await authorizeErrorOf(await authorize({ client_id: "jar", request_uri: uri }));
      assert.equal(result.error, "request_uri_not_supported", uri);
    }
    const redirected = await authorizeErrorOf(await authorize({ client_id: "jar", request_uri: "https://client.example/request.jwt", redirect_uri: CB, state: "st" }));
    assert.equal(redirected.error, "request_uri_not_supported");
    assert.ok(redirected.redirected);
    const unknownUrn = await authorizeErrorOf(await authorize({ client_id: "jar", request_uri: "urn:ietf:params:oauth:request_uri:nope" }));
    assert.equal(unknownUrn.error, "invalid_request_uri");
    const both = await authorize({ client_id: "jar", request: await requestObject("jar"), request_uri: "urn:ietf:params:oauth:request_uri:nope" });
    assert.equal(both.status, 400);
    assert.match(await both.text(), /invalid_request/);
  });

  it("17.30 JAR: keys at jwks_uri are fetched through the outbound rules", async () => {
    const before = jwksHits;
    const ok = await authorize({ client_id: "remote", request: await requestObject("remote", { prompt: "none" }) });
    assert.equal(new URL(ok.headers.get("location")!).searchParams.get("error"), "login_required");
    assert.ok(jwksHits > before, "the client's JWKS was fetched");
    // Without allowLoopback the same jwks_uri is never reached, and the object cannot be verified.
    const config = baseConfig();
    config.clients = [{ client_id: "remote", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "private_key_jwt", jwks_uri: jwksUri }];
    const closed = await createTestHost({ ...config, outbound: { allowLoopback: false } }, { listen: true });
    try {
      const hits = jwksHits;
      const now = Math.floor(Date.now() / 1000);
      const object = await new SignJWT({ iss: "remote", aud: closed.issuer, exp: now + 60, response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256" })
        .setProtectedHeader({ alg: "ES256", kid: ec.kid })
        .sign(ec.privateKey);
      const response = await fetch(`${closed.issuer}/connect/authorize?${new URLSearchParams({ client_id: "remote", request: object })}`, { redirect: "manual" });
      assert.equal(new URL(response.headers.get("location")!).searchParams.get("error"), "invalid_request_object");
      assert.equal(jwksHits, hits, "the loopback JWKS was never fetched");
    } finally {
      await closed.close();
    }
  });

  it("17.31 JAR: at the PAR endpoint bad objects are 400 JSON, and the form's other parameters are ignored", async () => {
    const bad = await push("jar", { request: await requestObject("jar", { aud: "https://other.example" }) });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error, "invalid_request_object");
    const foreign = await push("jar", { request: await requestObject("multi", { iss: "multi", client_id: "multi" }) });
    assert.equal(foreign.status, 400);
    assert.equal(((await foreign.json()) as { error: string }).error, "invalid_request_object");
    // The form's redirect_uri (unregistered) and scope would fail validation if they counted.
    const pushed = await push("jar", { request: await requestObject("jar", { prompt: "none", state: "pushed" }), redirect_uri: "https://attacker.example/cb", scope: "bogus" });
    assert.equal(pushed.status, 201);
    const { request_uri } = (await pushed.json()) as { request_uri: string };
    const response = await authorize({ client_id: "jar", request_uri });
    const location = new URL(response.headers.get("location")!);
    assert.equal(location.origin + location.pathname, CB);
    assert.equal(location.searchParams.get("error"), "login_required");
    assert.equal(location.searchParams.get("state"), "pushed");
  });

  it("17.32 JAR: malformed or oversized request objects are a 400, never a 5xx", async () => {
    const payloads = ["not-a-jwt", "a.b.c", "e30.e30.", "eyJhbGciOiJFUzI1NiJ9.bm90LWpzb24.c2ln", "a.b.c.d.e", `${Buffer.from('{"alg":"ES256","crit":["x"],"x":1}').toString("base64url")}.e30.c2ln`, "x".repeat(5000)];
    for (const request of payloads) {
      const response = await authorize({ client_id: "jar", request });
      assert.ok(response.status === 302 || response.status === 400, `${request.slice(0, 20)}: ${response.status}`);
      if (response.status === 302) assert.equal(new URL(response.headers.get("location")!).searchParams.get("error"), "invalid_request_object");
      const pushed = await push("jar", { request });
      assert.equal(pushed.status, 400, request.slice(0, 20));
    }
  });

  it("17.33 JAR: client metadata is checked at configuration", async () => {
    const { parseConfig, ConfigError } = await import("../packages/host/src/config.ts");
    const { normalizeClient } = await import("../packages/server/src/clients.ts");
    const base = { issuer: "https://idp.test", store: { kind: "memory" } };
    const client = { client_id: "c", client_secret: "s", redirect_uris: [CB] };
    assert.throws(() => parseConfig({ ...base, clients: [{ ...client, require_signed_request_object: true }] }), ConfigError);
    assert.throws(() => parseConfig({ ...base, clients: [{ ...client, request_object_signing_alg: "ES256" }] }), ConfigError);
    assert.throws(() => parseConfig({ ...base, clients: [{ ...client, jwks: { keys: [ec.jwk] }, request_object_signing_alg: "HS256" }] }), ConfigError);
    assert.throws(() => parseConfig({ ...base, clients: [{ ...client, jwks: { keys: [ec.jwk] }, request_object_signing_alg: "none" }] }), ConfigError);
    parseConfig({ ...base, clients: [{ ...client, jwks: { keys: [ec.jwk] }, request_object_signing_alg: "ES256", require_signed_request_object: true }] });
    assert.throws(() => normalizeClient({ ...client, require_signed_request_object: true }), /jwks/);
    assert.throws(() => normalizeClient({ ...client, jwks: { keys: [ec.jwk] }, request_object_signing_alg: "HS256" }), /asymmetric/);
  });
});

const dir = mkdtempSync(join(tmpdir(), "tessera-jar-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const postgres = await startTestPostgres();
after(() => postgres?.close());

type StoreConfig = NonNullable<ReturnType<typeof baseConfig>["store"]>;
const stores: [string, () => Promise<StoreConfig>, string | false][] = [
  ["memory", async () => ({ kind: "memory" }), false],
  ["sqlite", async () => ({ kind: "sqlite", path: join(dir, "jar.db") }), false],
  ["postgres", async () => ({ kind: "postgres", url: await postgres!.createDatabase() }), postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)"],
];

for (const [storeName, store, skip] of stores) {
  it(`17.34 JAR: on the ${storeName} store a jti is used once, and odd jti values are never a 5xx`, { skip }, async () => {
    const key = await newKey("ES256", "k");
    const config = baseConfig();
    config.clients = [{ client_id: "jar", redirect_uris: [CB], scope: "openid", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [key.jwk] } }];
    const host = await createTestHost({ ...config, store: await store() }, { listen: true });
    try {
      const sign = (jti: unknown) => {
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ iss: "jar", aud: host.issuer, exp: now + 120, jti, response_type: "code", redirect_uri: CB, scope: "openid", prompt: "none", code_challenge: pkce().challenge, code_challenge_method: "S256" } as JWTPayload)
          .setProtectedHeader({ alg: "ES256", kid: "k" })
          .sign(key.privateKey);
      };
      const errorOf = async (object: string) => {
        const response = await fetch(`${host.issuer}/connect/authorize?${new URLSearchParams({ client_id: "jar", request: object })}`, { redirect: "manual" });
        assert.equal(response.status, 302);
        return new URL(response.headers.get("location")!).searchParams.get("error");
      };
      const object = await sign(randomUUID());
      assert.equal(await errorOf(object), "login_required");
      assert.equal(await errorOf(object), "invalid_request_object");
      for (const jti of ["\u0000nul", "x".repeat(2000), "\ud800", "ünïcødé"]) assert.equal(await errorOf(await sign(jti)), "login_required", JSON.stringify(jti.slice(0, 10)));
      for (const jti of [42, { a: 1 }, ""]) assert.equal(await errorOf(await sign(jti)), "invalid_request_object", JSON.stringify(jti));
    } finally {
      await host.close();
    }
  });
}
