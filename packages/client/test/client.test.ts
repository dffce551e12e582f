import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTokenValidator } from "@tessera/api";
import { createClientCredentialsFetch, createUserTokenManager, TokenManagementError, type UserTokens } from "@tessera/client";
import { TestBrowser, createTestHost, type TestHost } from "@tessera/testing";
import { exportJWK, generateKeyPair } from "jose";

const REDIRECT = "https://app.test/cb";

describe("@tessera/client against a running Tessera", () => {
  let host: TestHost;
  let api: Server;
  let apiUrl: string;
  let tokenRequests = 0;
  let refuseNext = new Set<string>();
  const seenTokens: string[] = [];
  const counting: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith("/connect/token")) tokenRequests++;
    return fetch(input, init);
  };
  let pkKey: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    pkKey = pair.privateKey;
    host = await createTestHost(
      {
        tokens: { accessTokenLifetime: 300 },
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
        users: [{ sub: "1", username: "alice", password: "alice", claims: { name: "Alice" } }],
        clients: [
          { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" },
          { client_id: "pk", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kty: "EC", kid: "pk-1" }] }, grant_types: ["client_credentials"], scope: "api1.read" },
          { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access api1.read" },
        ],
      },
      { listen: true },
    );
    const validator = createTokenValidator({ issuer: host.issuer, audience: "urn:api1", requiredScopes: ["api1.read"] });
    // An API that accepts Tessera tokens, but refuses tokens listed in `refuseNext` (as if revoked).
    api = createServer(async (req, res) => {
      const request = new Request(`http://127.0.0.1${req.url}`, { headers: req.headers as Record<string, string> });
      const token = (req.headers.authorization ?? "").split(" ")[1] ?? "";
      seenTokens.push(token);
      const result = await validator.validate(request);
      if (!result.ok || refuseNext.has(token)) {
        res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"' });
        return res.end();
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ sub: result.claims.sub }));
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/data`;
  });
  after(async () => {
    api.close();
    await host.close();
  });

  it("makes one token request for many concurrent calls, and caches the token", async () => {
    const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "worker", clientSecret: "worker-secret", scope: "api1.read", fetch: counting });
    const start = tokenRequests;
    const responses = await Promise.all(Array.from({ length: 25 }, () => apiFetch(apiUrl)));
    assert.ok(responses.every((r) => r.status === 200));
    assert.equal(tokenRequests - start, 1);
    await apiFetch(apiUrl);
    assert.equal(tokenRequests - start, 1, "cached");
    assert.equal(await apiFetch.getToken(), await apiFetch.getToken());
  });

  it("renews shortly before expiry (fake clock)", async () => {
    let now = Date.now();
    const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "worker", clientSecret: "worker-secret", fetch: counting, clock: () => now, renewBefore: 30 });
    const first = await apiFetch.getToken();
    const start = tokenRequests;
    now += 260_000; // 40 s before expiry: still fine
    assert.equal(await apiFetch.getToken(), first);
    now += 20_000; // 20 s before expiry: within renewBefore
    const renewed = await apiFetch.getToken();
    assert.notEqual(renewed, first);
    assert.equal(tokenRequests - start, 1);
  });

  it("retries once with a new token on a 401, and only once", async () => {
    const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "worker", clientSecret: "worker-secret", fetch: counting });
    const stale = await apiFetch.getToken();
    refuseNext = new Set([stale]);
    const response = await apiFetch(apiUrl, { method: "POST", body: "payload" });
    assert.equal(response.status, 200);
    assert.notEqual(await apiFetch.getToken(), stale);
    // An API that refuses everything: one retry, then the 401 is returned.
    const before = seenTokens.length;
    refuseNext = { has: () => true } as unknown as Set<string>;
    const refused = await apiFetch(apiUrl);
    assert.equal(refused.status, 401);
    assert.equal(seenTokens.length - before, 2);
    refuseNext = new Set();
  });

  it("authenticates with private_key_jwt", async () => {
    const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "pk", privateKey: { key: pkKey, kid: "pk-1" } });
    assert.equal((await apiFetch(apiUrl)).status, 200);
  });

  it("fails with a clear error and no token in it", async () => {
    const apiFetch = createClientCredentialsFetch({ issuer: host.issuer, clientId: "worker", clientSecret: "wrong" });
    await assert.rejects(apiFetch.getToken(), (error: unknown) => {
      assert.ok(error instanceof TokenManagementError);
      assert.equal(error.code, "token_request_failed");
      assert.equal(error.oauthError, "invalid_client");
      return true;
    });
    const unreachable = createClientCredentialsFetch({ issuer: "http://127.0.0.1:9", clientId: "x", clientSecret: "y" });
    await assert.rejects(unreachable.getToken(), (error: unknown) => error instanceof TokenManagementError && error.code === "discovery_failed");
  });

  describe("user tokens", () => {
    async function signIn(): Promise<{ access_token: string; refresh_token: string; token_type: string; expires_in: number }> {
      const browser = new TestBrowser();
      const verifier = "v".repeat(43);
      const { createHash } = await import("node:crypto");
      const url = new URL(`${host.issuer}/connect/authorize`);
      url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid offline_access api1.read", code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256" }).toString();
      const stopAt = (u: URL) => u.origin === "https://app.test";
      const back = await browser.submitForm(await browser.get(url, { stopAt }), { fields: { username: "alice", password: "alice" }, stopAt });
      const response = await fetch(`${host.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "authorization_code", code: new URL(back.location!).searchParams.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
      });
      return (await response.json()) as { access_token: string; refresh_token: string; token_type: string; expires_in: number };
    }

    it("refreshes once for many racing requests, then revokes at sign-out", async () => {
      let now = Date.now();
      const sessions = new Map<string, UserTokens>();
      const manager = createUserTokenManager({ issuer: host.issuer, clientId: "web", clientSecret: "web-secret", store: { get: (k) => sessions.get(k), set: (k, t) => void sessions.set(k, t), delete: (k) => void sessions.delete(k) }, clock: () => now, fetch: counting });
      await manager.save("session-1", await signIn());
      const first = sessions.get("session-1")!;
      assert.equal(await manager.getAccessToken("session-1"), first.accessToken);
      now += 290_000; // within 30 s of expiry
      const start = tokenRequests;
      const tokens = await Promise.all(Array.from({ length: 20 }, () => manager.getAccessToken("session-1")));
      assert.equal(tokenRequests - start, 1, "one refresh");
      assert.equal(new Set(tokens).size, 1);
      assert.notEqual(tokens[0], first.accessToken);
      assert.notEqual(sessions.get("session-1")!.refreshToken, first.refreshToken, "the rotated refresh token was kept");
      const response = await manager.fetchFor("session-1")(apiUrl);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { sub: "1" });

      const refreshToken = sessions.get("session-1")!.refreshToken!;
      await manager.revoke("session-1");
      assert.equal(sessions.has("session-1"), false);
      const dead = await fetch(`${host.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }).toString(),
      });
      assert.equal(((await dead.json()) as { error: string }).error, "invalid_grant");
      await assert.rejects(manager.getAccessToken("session-1"), (e: unknown) => e instanceof TokenManagementError && e.code === "not_signed_in");
    });
  });
});
