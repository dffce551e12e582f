import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTokenValidator } from "@tessera/api";
import { createClientCredentialsFetch } from "@tessera/client";
import { accessTokenHash } from "@tessera/protocol";
import { createTestHost, type TestHost } from "@tessera/testing";
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";

function dpopConfig(requireNonce: boolean) {
  const c = baseConfig();
  c.dpop = { requireNonce, proofLifetime: 60 };
  c.clients = [
    { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read", dpop_bound_access_tokens: true },
    { client_id: "plain", client_secret: "plain-secret", grant_types: ["client_credentials"], scope: "api1.read" },
    { client_id: "spa", token_endpoint_auth_method: "none", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access api1.read" },
  ];
  return c;
}

/** An API that accepts only DPoP-bound tokens, with its own nonces. */
async function dpopApi(issuer: string): Promise<{ url: string; server: Server }> {
  const validator = createTokenValidator({ issuer, audience: "urn:api1", requiredScopes: ["api1.read"], dpop: { required: true, requireNonce: true } });
  const server = createServer(async (req, res) => {
    const url = `http://${req.headers.host}${req.url}`;
    const result = await validator.validate(new Request(url, { method: req.method, headers: req.headers as Record<string, string> }));
    if (!result.ok) {
      res.writeHead(result.status, { "www-authenticate": result.wwwAuthenticate, ...(result.dpopNonce ? { "dpop-nonce": result.dpopNonce } : {}) });
      return res.end(JSON.stringify({ error: result.error }));
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ sub: result.claims.sub, tokenType: result.tokenType }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/data`, server };
}

describe("DPoP end to end", () => {
  let host: TestHost;
  let api: { url: string; server: Server };
  before(async () => {
    host = await createTestHost(dpopConfig(true), { listen: true });
    api = await dpopApi(host.issuer);
  });
  after(async () => {
    api.server.close();
    await host.close();
  });

  it("advertises DPoP", async () => {
    const metadata = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string[]>;
    assert.ok(metadata.dpop_signing_alg_values_supported?.includes("ES256"));
  });

  it("@tessera/client gets a bound token through the server's nonce challenge and calls the API through its own", async () => {
    let tokenRequests = 0;
    const counting: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith("/connect/token")) tokenRequests++;
      return fetch(input, init);
    };
    const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "worker", clientSecret: "worker-secret", dpop: true, fetch: counting });
    const response = await apiFetch(api.url);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { sub: "worker", tokenType: "DPoP" });
    assert.equal(tokenRequests, 2, "one use_dpop_nonce answer, one retry");
    const token = await apiFetch.getToken();
    assert.ok((decodeJwt(token).cnf as { jkt: string }).jkt);
    assert.equal((await apiFetch(api.url)).status, 200, "the next call reuses token and nonce");
  });

  it("openid-client gets bound tokens by client credentials and by the code flow, and calls userinfo and the API", async () => {
    const keyPair = await oidc.randomDPoPKeyPair("ES256");
    const worker = await discover(host, "worker", oidc.ClientSecretBasic("worker-secret"));
    const DPoP = oidc.getDPoPHandle(worker, keyPair);
    const retryOnNonce = async <T>(call: () => Promise<T>): Promise<T> => {
      try {
        return await call();
      } catch (error) {
        if (oidc.isDPoPNonceError?.(error) || (error as { error?: string }).error === "use_dpop_nonce" || (error as { cause?: { error?: string }[] }).cause?.[0]?.error === "use_dpop_nonce") return call();
        throw error;
      }
    };
    const cc = await retryOnNonce(() => oidc.clientCredentialsGrant(worker, {}, { DPoP }));
    assert.equal(cc.token_type, "dpop");
    const called = await retryOnNonce(() => oidc.fetchProtectedResource(worker, cc.access_token, new URL(api.url), "GET", undefined, undefined, { DPoP }));
    assert.equal(called.status, 200);

    const spaKeys = await oidc.randomDPoPKeyPair("ES256");
    const spa = await discover(host, "spa");
    const spaDPoP = oidc.getDPoPHandle(spa, spaKeys);
    const thumbprint = await calculateJwkThumbprint(await exportJWK(spaKeys.publicKey));
    const tokens = await retryOnNonce(() => codeFlow(spa, { scope: "openid profile offline_access api1.read", extra: { dpop_jkt: thumbprint }, dpop: spaDPoP }));
    assert.equal(tokens.token_type, "dpop");
    assert.equal((decodeJwt(tokens.access_token).cnf as { jkt: string }).jkt, thumbprint);
    const info = await retryOnNonce(() => oidc.fetchUserInfo(spa, tokens.access_token, "1", { DPoP: spaDPoP }));
    assert.equal(info.name, "Alice Smith");
    const refreshed = await retryOnNonce(() => oidc.refreshTokenGrant(spa, tokens.refresh_token!, undefined, { DPoP: spaDPoP }));
    assert.equal(refreshed.token_type, "dpop");
  });
});

describe("DPoP: the bad-proof list at the provider", () => {
  let host: TestHost;
  let nonceHost: TestHost;
  let key: CryptoKey;
  let jwk: JWK;
  before(async () => {
    host = await createTestHost(dpopConfig(false), { listen: true });
    nonceHost = await createTestHost(dpopConfig(true), { listen: true });
    const pair = await generateKeyPair("ES256", { extractable: true });
    key = pair.privateKey;
    jwk = await exportJWK(pair.publicKey);
  });
  after(async () => {
    await host.close();
    await nonceHost.close();
  });

  type ProofOptions = { htm?: string; htu?: string; iat?: number; jti?: string; ath?: string; nonce?: string; alg?: string; signingKey?: CryptoKey | Uint8Array; jwk?: JWK };
  const proof = (url: string, o: ProofOptions = {}) =>
    new SignJWT({ htm: o.htm ?? "POST", htu: o.htu ?? url, jti: o.jti ?? randomUUID(), ...(o.ath ? { ath: o.ath } : {}), ...(o.nonce ? { nonce: o.nonce } : {}) })
      .setProtectedHeader({ alg: o.alg ?? "ES256", typ: "dpop+jwt", jwk: o.jwk ?? jwk })
      .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
      .sign((o.signingKey ?? key) as CryptoKey);
  const tokenRequest = (on: TestHost, dpop: string | undefined, client = "worker", body: Record<string, string> = { grant_type: "client_credentials" }) =>
    fetch(`${on.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString("base64")}`, ...(dpop ? { dpop } : {}) },
      body: new URLSearchParams(body).toString(),
    });
  const errorOf = async (response: Response) => ({ status: response.status, error: ((await response.json()) as { error: string }).error, nonce: response.headers.get("dpop-nonce") });

  it("accepts a good proof, binds the token, and refuses its replay", async () => {
    const url = `${host.issuer}/connect/token`;
    const good = await proof(url);
    const ok = await tokenRequest(host, good);
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { token_type: string; access_token: string };
    assert.equal(body.token_type, "DPoP");
    assert.equal((decodeJwt(body.access_token).cnf as { jkt: string }).jkt, await calculateJwkThumbprint(jwk));
    assert.deepEqual(await errorOf(await tokenRequest(host, good)), { status: 400, error: "invalid_dpop_proof", nonce: null });
  });

  it("refuses wrong htm, wrong htu, stale iat, alg none, HS256, a private jwk, and no proof for a DPoP-bound client", async () => {
    const url = `${host.issuer}/connect/token`;
    const now = Math.floor(Date.now() / 1000);
    const privateJwk = await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk })).toString("base64url")}.${Buffer.from(JSON.stringify({ htm: "POST", htu: url, jti: randomUUID(), iat: now })).toString("base64url")}.`;
    const cases: [string, string | undefined][] = [
      ["wrong htm", await proof(url, { htm: "GET" })],
      ["wrong htu", await proof(url, { htu: `${host.issuer}/connect/other` })],
      ["stale iat", await proof(url, { iat: now - 600 })],
      ["alg none", none],
      ["HS256", await proof(url, { alg: "HS256", signingKey: new TextEncoder().encode("k".repeat(32)) })],
      ["private key material in jwk", await proof(url, { jwk: privateJwk })],
      ["no proof at all", undefined],
    ];
    for (const [name, value] of cases) assert.deepEqual(await errorOf(await tokenRequest(host, value)), { status: 400, error: "invalid_dpop_proof", nonce: null }, name);
  });

  it("asks for a nonce (use_dpop_nonce with DPoP-Nonce), refuses a stale one, accepts a fresh one", async () => {
    const url = `${nonceHost.issuer}/connect/token`;
    const missing = await errorOf(await tokenRequest(nonceHost, await proof(url)));
    assert.equal(missing.status, 400);
    assert.equal(missing.error, "use_dpop_nonce");
    assert.ok(missing.nonce);
    const stale = await errorOf(await tokenRequest(nonceHost, await proof(url, { nonce: `${(Math.floor(Date.now() / 1000) - 3600).toString(36)}.forged` })));
    assert.equal(stale.error, "use_dpop_nonce");
    const ok = await tokenRequest(nonceHost, await proof(url, { nonce: missing.nonce! }));
    assert.equal(ok.status, 200);
    assert.ok(ok.headers.get("dpop-nonce"), "a fresh nonce comes with the response");
  });

  it("at userinfo: refuses a proof for another token's ath, a bound token as Bearer, and a proof by another key", async () => {
    const verifier = "v".repeat(43);
    const thumbprint = await calculateJwkThumbprint(jwk);
    const browser = new (await import("@tessera/testing")).TestBrowser();
    const authorize = new URL(`${host.issuer}/connect/authorize`);
    authorize.search = new URLSearchParams({ client_id: "spa", redirect_uri: CALLBACK, response_type: "code", scope: "openid offline_access", code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", dpop_jkt: thumbprint }).toString();
    const stopAt = (u: URL) => u.href.startsWith(CALLBACK);
    const back = await browser.submitForm(await browser.get(authorize, { stopAt }), { fields: { username: "alice", password: "alice" }, stopAt });
    const code = new URL(back.location!).searchParams.get("code")!;
    const tokenUrl = `${host.issuer}/connect/token`;
    const redeem = (dpop: string) =>
      fetch(tokenUrl, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", dpop }, body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: verifier, client_id: "spa" }).toString() });
    const other = await generateKeyPair("ES256", { extractable: true });
    const otherJwk = await exportJWK(other.publicKey);
    // The code is bound by dpop_jkt: another key cannot redeem it (this also consumes it, so redeem with the right key first in a real flow).
    const tokens = (await (await redeem(await proof(tokenUrl))).json()) as { access_token: string; refresh_token: string };
    const userinfo = `${host.issuer}/connect/userinfo`;
    const call = (scheme: string, dpop?: string) => fetch(userinfo, { headers: { authorization: `${scheme} ${tokens.access_token}`, ...(dpop ? { dpop } : {}) } });
    assert.equal((await call("DPoP", await proof(userinfo, { htm: "GET", ath: accessTokenHash(tokens.access_token) }))).status, 200);
    const wrongAth = await call("DPoP", await proof(userinfo, { htm: "GET", ath: accessTokenHash("another token") }));
    assert.equal(wrongAth.status, 401);
    assert.match(wrongAth.headers.get("www-authenticate")!, /DPoP.*error="invalid_dpop_proof"/);
    const asBearer = await call("Bearer");
    assert.equal(asBearer.status, 401);
    assert.match(asBearer.headers.get("www-authenticate")!, /error="invalid_token"/);
    const otherKey = await call("DPoP", await proof(userinfo, { htm: "GET", ath: accessTokenHash(tokens.access_token), signingKey: other.privateKey, jwk: otherJwk }));
    assert.equal(otherKey.status, 401);

    // Refresh with another key: the public client's refresh token is bound to the first key.
    const refresh = (dpop: string) =>
      fetch(tokenUrl, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", dpop }, body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token, client_id: "spa" }).toString() });
    assert.deepEqual(await errorOf(await refresh(await proof(tokenUrl, { signingKey: other.privateKey, jwk: otherJwk }))), { status: 400, error: "invalid_grant", nonce: null });
    assert.equal((await refresh(await proof(tokenUrl))).status, 200, "the bound key still refreshes (the token was not burned)");
  });

  it("refuses to redeem a dpop_jkt-bound code with another key", async () => {
    const verifier = "w".repeat(43);
    const browser = new (await import("@tessera/testing")).TestBrowser();
    const authorize = new URL(`${host.issuer}/connect/authorize`);
    authorize.search = new URLSearchParams({ client_id: "spa", redirect_uri: CALLBACK, response_type: "code", scope: "openid", code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", dpop_jkt: await calculateJwkThumbprint(jwk) }).toString();
    const stopAt = (u: URL) => u.href.startsWith(CALLBACK);
    const back = await browser.submitForm(await browser.get(authorize, { stopAt }), { fields: { username: "alice", password: "alice" }, stopAt });
    const other = await generateKeyPair("ES256", { extractable: true });
    const tokenUrl = `${host.issuer}/connect/token`;
    const response = await fetch(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", dpop: await proof(tokenUrl, { signingKey: other.privateKey, jwk: await exportJWK(other.publicKey) }) },
      body: new URLSearchParams({ grant_type: "authorization_code", code: new URL(back.location!).searchParams.get("code")!, redirect_uri: CALLBACK, code_verifier: verifier, client_id: "spa" }).toString(),
    });
    assert.deepEqual(await errorOf(response), { status: 400, error: "invalid_grant", nonce: null });
    const badJkt = new URL(authorize);
    badJkt.searchParams.set("dpop_jkt", "short");
    const page = await browser.get(badJkt, { stopAt });
    assert.equal(new URL(page.location!).searchParams.get("error"), "invalid_request");
  });

  it("issues Bearer tokens to clients that send no proof (when not required)", async () => {
    const response = await tokenRequest(host, undefined, "plain");
    assert.equal(((await response.json()) as { token_type: string }).token_type, "Bearer");
  });
});
