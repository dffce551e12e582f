import assert from "node:assert/strict";
import { X509Certificate, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { parseConfig, ConfigError } from "@tessera/host";
import { mtlsFetch } from "@tessera/client";
import { certificateThumbprint } from "@tessera/protocol";
import { createMemoryStore, createProvider } from "@tessera/server";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig } from "@tessera/testing";
import * as oidc from "openid-client";
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { makePki, type TestPki } from "./support/certs.ts";
import { baseConfig, pkce } from "./support/fixtures.ts";

const CB = "http://127.0.0.1/cb";
const stopAt = (u: URL) => u.href.startsWith(CB);
const insecure = { execute: [oidc.allowInsecureRequests] };

/** Logs in through the authorize URL; the final redirect to the client. */
async function signIn(url: string | URL): Promise<URL> {
  const browser = new TestBrowser();
  const page = await browser.get(url.toString(), { stopAt });
  if (page.location) return new URL(page.location);
  const back = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
  return new URL(back.location!);
}

const form = (body: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(body).toString(),
});

describe("17 FAPI 2.0 Security Profile (security_profile: fapi2)", () => {
  let pki: TestPki;
  let host: TestHost;
  let offset = 0;
  let clientKey: CryptoKey;
  let rsaKey: CryptoKey;
  let tlsCert: { cert: string; key: string };

  before(async () => {
    pki = makePki();
    tlsCert = pki.client("a");
    const pair = await generateKeyPair("ES256", { extractable: true });
    clientKey = pair.privateKey;
    const rsa = await generateKeyPair("RS256", { extractable: true });
    rsaKey = rsa.privateKey;
    const config: TestHostConfig = {
      ...baseConfig(),
      keys: { algorithms: ["RS256", "ES256"] },
      tokens: { authorizationCodeLifetime: 300 },
      mtls: { enabled: true, cert: pki.paths.serverCert, key: pki.paths.serverKey, clientCa: pki.paths.ca },
      clients: [
        {
          client_id: "fapi",
          security_profile: "fapi2",
          token_endpoint_auth_method: "private_key_jwt",
          jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "es" }, { ...(await exportJWK(rsa.publicKey)), kid: "rs" }] },
          id_token_signed_response_alg: "ES256",
          redirect_uris: [CB, "https://rp.test/cb"],
          grant_types: ["authorization_code", "refresh_token"],
          scope: "openid profile offline_access api1.read",
        },
        {
          client_id: "fapi-tls",
          security_profile: "fapi2",
          token_endpoint_auth_method: "tls_client_auth",
          tls_client_auth_san_dns: "client-a.test",
          id_token_signed_response_alg: "ES256",
          redirect_uris: [CB],
          scope: "openid api1.read",
        },
        { client_id: "plain", client_secret: "plain-secret", token_endpoint_auth_method: "client_secret_post", redirect_uris: [CB], scope: "openid" },
      ],
    };
    host = await createTestHost(config, { listen: true, clock: () => Date.now() + offset });
  });
  after(async () => {
    await host.close();
    pki.cleanup();
  });

  const discover = (auth: oidc.ClientAuth = oidc.PrivateKeyJwt(clientKey, { kid: "es" })) => oidc.discovery(new URL(host.issuer), "fapi", undefined, auth, insecure);
  const parUrl = () => `${host.issuer}/connect/par`;

  /** A private_key_jwt client assertion for the fapi client. */
  async function assertion(options: { aud?: string | string[]; alg?: "ES256" | "RS256" } = {}): Promise<Record<string, string>> {
    const alg = options.alg ?? "ES256";
    const jwt = await new SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg, kid: alg === "ES256" ? "es" : "rs" })
      .setIssuer("fapi")
      .setSubject("fapi")
      .setAudience(options.aud ?? host.issuer)
      .setIssuedAt()
      .setExpirationTime("60s")
      .sign(alg === "ES256" ? clientKey : rsaKey);
    return { client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: jwt };
  }

  function authorizeParams(extra: Record<string, string> = {}): Record<string, string> {
    return { response_type: "code", redirect_uri: CB, scope: "openid", code_challenge: pkce().challenge, code_challenge_method: "S256", state: "s1", ...extra };
  }

  async function push(fields: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
    const response = await fetch(parUrl(), form({ ...fields, ...(await assertion()) }));
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  it("17 FAPI2: PAR + code + PKCE S256 + private_key_jwt + DPoP end to end (openid-client), refresh with the same key, not rotated", async () => {
    const config = await discover();
    const keyPair = await oidc.randomDPoPKeyPair("ES256");
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid offline_access api1.read", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state }, { DPoP });
    const callback = await signIn(url);
    // RFC 9207 / FAPI 2.0 SP §5.3.2.2.
    assert.equal(callback.searchParams.get("iss"), host.issuer);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true }, undefined, { DPoP });
    assert.equal(tokens.token_type, "dpop");
    const jkt = await calculateJwkThumbprint((await crypto.subtle.exportKey("jwk", keyPair.publicKey)) as JWK);
    assert.equal((decodeJwt(tokens.access_token).cnf as { jkt?: string }).jkt, jkt);
    // §5.4.1: the client's algorithm signs its ID and access tokens, not the server's first (RS256).
    assert.equal(decodeProtectedHeader(tokens.id_token!).alg, "ES256");
    assert.equal(decodeProtectedHeader(tokens.access_token).alg, "ES256");
    assert.ok(tokens.refresh_token);

    // The refresh token is bound to the DPoP key: another key, or none, cannot use it.
    const other = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: other }), (error: Error & { error?: string }) => error.error === "invalid_grant");
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), (error: Error & { error?: string }) => error.error === "invalid_request");
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    assert.equal(refreshed.token_type, "dpop");
    assert.equal((decodeJwt(refreshed.access_token).cnf as { jkt?: string }).jkt, jkt);
    // §5.3.2.1-9: no rotation; the same refresh token is answered and keeps working.
    assert.equal(refreshed.refresh_token, tokens.refresh_token);
    const again = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    assert.equal(again.refresh_token, tokens.refresh_token);
    assert.notEqual(again.access_token, refreshed.access_token);
  });

  it("17 FAPI2: mTLS: a tls_client_auth client pushes and redeems on the mTLS endpoints; tokens are bound to its certificate", async () => {
    const config = await oidc.discovery(new URL(host.issuer), "fapi-tls", { use_mtls_endpoint_aliases: true }, oidc.TlsClientAuth(), insecure);
    config[oidc.customFetch] = mtlsFetch({ ...tlsCert, ca: pki.ca }) as never;
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid api1.read", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url), { pkceCodeVerifier: verifier });
    assert.equal(tokens.token_type, "bearer");
    const thumbprint = certificateThumbprint(new X509Certificate(tlsCert.cert));
    assert.equal((decodeJwt(tokens.access_token).cnf as Record<string, string>)["x5t#S256"], thumbprint);
  });

  it("17 FAPI2: a token request with neither a DPoP proof nor a client certificate (Bearer) is refused with invalid_request, as is an RS256 proof; the code survives", async () => {
    const config = await discover();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const callback = await signIn(url);
    await assert.rejects(oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }), (error: Error & { error?: string; status?: number }) => error.error === "invalid_request" && error.status === 400);
    // Nothing was consumed by the refused request: the same code, now with a proof, redeems.
    // §5.4.1: nor with a proof signed RS256.
    const rs256 = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("RS256"));
    await assert.rejects(oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }, undefined, { DPoP: rs256 }), (error: Error & { error?: string }) => error.error === "invalid_dpop_proof");
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }, undefined, { DPoP });
    assert.equal(tokens.token_type, "dpop");
  });

  it("17 FAPI2: client_secret_basic and other secrets are refused (invalid_client), as are RS256 assertions", async () => {
    const basic = `Basic ${Buffer.from("fapi:guess").toString("base64")}`;
    const atPar = await fetch(parUrl(), form(authorizeParams(), { authorization: basic }));
    assert.equal(atPar.status, 401);
    assert.equal(((await atPar.json()) as { error: string }).error, "invalid_client");
    const atToken = await fetch(`${host.issuer}/connect/token`, form({ grant_type: "authorization_code", code: "x", redirect_uri: CB, client_id: "fapi", client_secret: "guess" }));
    assert.equal(((await atToken.json()) as { error: string }).error, "invalid_client");
    // FAPI 2.0 SP §5.4.1 (conformance: ensure-signed-client-assertion-with-RS256-fails expects invalid_client).
    const rs256 = await fetch(parUrl(), form({ ...authorizeParams(), ...(await assertion({ alg: "RS256" })) }));
    assert.equal(rs256.status, 401);
    assert.equal(((await rs256.json()) as { error: string }).error, "invalid_client");
  });

  it("17 FAPI2: client assertion aud is the issuer as a string only (token or PAR endpoint URL, or an array, are refused)", async () => {
    for (const aud of [`${host.issuer}/connect/token`, parUrl(), [host.issuer], [parUrl()]]) {
      const response = await fetch(parUrl(), form({ ...authorizeParams(), ...(await assertion({ aud })) }));
      assert.equal(response.status, 401, JSON.stringify(aud));
      assert.equal(((await response.json()) as { error: string }).error, "invalid_client");
    }
    assert.equal((await push(authorizeParams())).status, 201);
  });

  it("17 FAPI2: PKCE: plain and missing code_challenge are refused with invalid_request", async () => {
    const plain = await push(authorizeParams({ code_challenge: "a".repeat(43), code_challenge_method: "plain" }));
    assert.deepEqual([plain.status, plain.body.error], [400, "invalid_request"]);
    const { code_challenge: _c, code_challenge_method: _m, ...withoutPkce } = authorizeParams();
    const missing = await push(withoutPkce);
    assert.deepEqual([missing.status, missing.body.error], [400, "invalid_request"]);
  });

  it("17 FAPI2: an authorization request without PAR is refused with invalid_request (redirected with iss)", async () => {
    const url = new URL(`${host.issuer}/connect/authorize`);
    for (const [k, v] of Object.entries({ client_id: "fapi", ...authorizeParams() })) url.searchParams.set(k, v);
    const response = await fetch(url, { redirect: "manual" });
    assert.equal(response.status, 302);
    const location = new URL(response.headers.get("location")!);
    assert.equal(location.origin + location.pathname, CB);
    assert.equal(location.searchParams.get("error"), "invalid_request");
    assert.equal(location.searchParams.get("state"), "s1");
    assert.equal(location.searchParams.get("iss"), host.issuer);
  });

  it("17 FAPI2: a response_type other than code is refused with invalid_request", async () => {
    for (const responseType of ["token", "code id_token", "id_token"]) {
      const result = await push(authorizeParams({ response_type: responseType }));
      assert.deepEqual([result.status, result.body.error], [400, "invalid_request"], responseType);
    }
    // Other clients keep RFC 6749's code.
    const other = await fetch(parUrl(), form({ ...authorizeParams({ response_type: "token" }), client_id: "plain", client_secret: "plain-secret" }));
    assert.equal(other.status, 400);
    assert.equal(((await other.json()) as { error: string }).error, "unsupported_response_type");
  });

  it("17 FAPI2: a code older than 60 s is refused, though the server's code lifetime is 300 s", async () => {
    const config = await discover();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: CB, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const callback = await signIn(url);
    offset = 61_000;
    try {
      // The client's clock runs with the server's (assertion and proof minted 61 s later).
      const skewed = await oidc.discovery(new URL(host.issuer), "fapi", undefined, oidc.PrivateKeyJwt(clientKey, { kid: "es" }), insecure);
      skewed[oidc.clockSkew] = 61;
      const skewedDPoP = oidc.getDPoPHandle(skewed, await oidc.randomDPoPKeyPair("ES256"));
      await assert.rejects(oidc.authorizationCodeGrant(skewed, callback, { pkceCodeVerifier: verifier }, undefined, { DPoP: skewedDPoP }), (error: Error & { error?: string; error_description?: string }) => error.error === "invalid_grant" && /expired/.test(error.error_description ?? ""));
    } finally {
      offset = 0;
    }
  });

  it("17 FAPI2: no open redirector: a missing or unregistered redirect_uri is never redirected to", async () => {
    const unregistered = await push(authorizeParams({ redirect_uri: "https://attacker.test/cb" }));
    assert.deepEqual([unregistered.status, unregistered.body.error], [400, "invalid_request"]);
    const { redirect_uri: _r, ...withoutRedirect } = authorizeParams();
    // FAPI 2.0 SP §5.3.2.2: redirect_uri is required in the pushed request.
    const missing = await push(withoutRedirect);
    assert.deepEqual([missing.status, missing.body.error], [400, "invalid_request"]);
    const direct = new URL(`${host.issuer}/connect/authorize`);
    for (const [k, v] of Object.entries({ client_id: "fapi", ...authorizeParams({ redirect_uri: "https://attacker.test/cb" }) })) direct.searchParams.set(k, v);
    const page = await fetch(direct, { redirect: "manual" });
    assert.equal(page.status, 400);
    assert.equal(page.headers.get("location"), null);
    const bogusUri = await fetch(`${host.issuer}/connect/authorize?client_id=fapi&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Anope&redirect_uri=${encodeURIComponent("https://attacker.test/cb")}`, { redirect: "manual" });
    assert.equal(bogusUri.status, 400);
    assert.equal(bogusUri.headers.get("location"), null);
  });

  it("17 FAPI2: a pushed request object is accepted signed with ES256 and refused with RS256 (§5.4.1), though the client's jwks holds both", async () => {
    const object = (alg: "ES256" | "RS256") =>
      new SignJWT({ client_id: "fapi", ...authorizeParams() })
        .setProtectedHeader({ alg, kid: alg === "ES256" ? "es" : "rs", typ: "oauth-authz-req+jwt" })
        .setIssuer("fapi")
        .setAudience(host.issuer)
        .setIssuedAt()
        .setNotBefore("0s")
        .setExpirationTime("60s")
        .sign(alg === "ES256" ? clientKey : rsaKey);
    const good = await push({ client_id: "fapi", request: await object("ES256") });
    assert.equal(good.status, 201, JSON.stringify(good.body));
    assert.match(good.body.request_uri!, /^urn:ietf:params:oauth:request_uri:/);
    const bad = await push({ client_id: "fapi", request: await object("RS256") });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, "invalid_request_object");
  });

  it("17 FAPI2: config: a fapi2 client with incompatible metadata fails parseConfig, with paths; the library refuses it too", () => {
    const problems = (client: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      try {
        parseConfig({ issuer: "https://id.example", keys: { algorithms: ["PS256"] }, ...extra, clients: [{ client_id: "f", security_profile: "fapi2", redirect_uris: ["https://rp.example/cb"], ...client }] });
        return [];
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    const jwks = { keys: [{ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pOyStikYjKIWI5a0" }] };
    assert.deepEqual(problems({ token_endpoint_auth_method: "private_key_jwt", jwks }), []);
    assert.ok(problems({ client_secret: "s", token_endpoint_auth_method: "client_secret_basic" }).some((p) => p.startsWith("clients[0].token_endpoint_auth_method: FAPI 2.0")));
    assert.ok(problems({ client_secret: "s" }).some((p) => p.startsWith("clients[0].token_endpoint_auth_method: FAPI 2.0")), "client_secret_basic by default");
    assert.ok(problems({ token_endpoint_auth_method: "none" }).some((p) => p.startsWith("clients[0].token_endpoint_auth_method: FAPI 2.0")));
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt" }).some((p) => p.startsWith("clients[0].jwks")), "no jwks");
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, response_types: ["token"] }).some((p) => p.startsWith("clients[0].response_types")));
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, require_pkce: false }).some((p) => p.startsWith("clients[0].require_pkce: FAPI 2.0")));
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, require_pushed_authorization_requests: false }).some((p) => p.startsWith("clients[0].require_pushed_authorization_requests: FAPI 2.0")));
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, redirect_uris: ["https://rp.example/cb", "http://rp.example/cb"] }).some((p) => p.startsWith("clients[0].redirect_uris[1]: FAPI 2.0")));
    assert.deepEqual(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, redirect_uris: ["http://127.0.0.1/cb", "http://[::1]:8080/cb"] }), [], "loopback redirects of native apps");
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, token_endpoint_auth_signing_alg: "RS256" }).some((p) => p.startsWith("clients[0].token_endpoint_auth_signing_alg: FAPI 2.0")));
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks }, { keys: { algorithms: ["RS256"] } }).some((p) => p.startsWith("clients[0].id_token_signed_response_alg: FAPI 2.0")));
    assert.deepEqual(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, id_token_signed_response_alg: "ES256" }, { keys: { algorithms: ["RS256", "ES256"] } }), []);
    assert.ok(problems({ token_endpoint_auth_method: "private_key_jwt", jwks, security_profile: "fapi1" }).some((p) => p.startsWith("clients[0].security_profile")));
    // createProvider's client store applies the same rules for library users.
    assert.throws(
      () => createProvider({ issuer: "https://id.example", store: createMemoryStore(), dataKey: randomBytes(32), clients: [{ client_id: "f", security_profile: "fapi2", client_secret: "s", redirect_uris: ["https://rp.example/cb"] }] }),
      /token_endpoint_auth_method: FAPI 2.0/,
    );
  });
});
