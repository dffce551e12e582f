import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClientCredentialsFetch, createMemoryTokenCache } from "@tessera/client";
import { createTestHost, type TestHost } from "@tessera/testing";
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair } from "jose";

describe("review: @tessera/client token cache", () => {
  let host: TestHost;
  before(async () => {
    host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
        clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }],
      },
      { listen: true },
    );
  });
  after(() => host.close());

  test("17.d fetchers with different DPoP keys (or none) never share a cached token", async () => {
    const cache = createMemoryTokenCache();
    const options = { issuer: host.issuer, clientId: "worker", clientSecret: "worker-secret", scope: "api1.read", resource: "urn:api1", cache };
    const keys = [await generateKeyPair("ES256", { extractable: true }), await generateKeyPair("ES256", { extractable: true })];
    const first = createClientCredentialsFetch({ ...options, dpop: keys[0] });
    const second = createClientCredentialsFetch({ ...options, dpop: keys[1] });
    const bearer = createClientCredentialsFetch(options);
    const firstToken = await first.getToken();
    const secondToken = await second.getToken();
    const bearerToken = await bearer.getToken();
    assert.equal((decodeJwt(firstToken).cnf as { jkt: string }).jkt, await calculateJwkThumbprint(await exportJWK(keys[0]!.publicKey)));
    assert.equal((decodeJwt(secondToken).cnf as { jkt: string }).jkt, await calculateJwkThumbprint(await exportJWK(keys[1]!.publicKey)), "the second key's own token");
    assert.equal(decodeJwt(bearerToken).cnf, undefined, "a Bearer fetcher gets an unbound token");
    // Each keeps its own token in the shared cache.
    assert.equal(await first.getToken(), firstToken);
    assert.equal(await second.getToken(), secondToken);
    assert.equal(await createClientCredentialsFetch({ ...options, dpop: keys[0] }).getToken(), firstToken, "the same key shares the cached token");
  });

  test("17.i a failure while working out the cache key is not kept: the next call tries again", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    let failures = 1;
    // A key pair whose public key cannot be read once (as a key held by an unreachable key store would fail).
    const flaky = {
      privateKey: pair.privateKey,
      get publicKey() {
        if (failures-- > 0) throw new Error("the key store is unavailable");
        return pair.publicKey;
      },
    } as CryptoKeyPair;
    const fetcher = createClientCredentialsFetch({ issuer: host.issuer, clientId: "worker", clientSecret: "worker-secret", scope: "api1.read", resource: "urn:api1", dpop: flaky });
    await assert.rejects(fetcher.getToken(), /the key store is unavailable/);
    const token = await fetcher.getToken();
    assert.equal((decodeJwt(token).cnf as { jkt: string }).jkt, await calculateJwkThumbprint(await exportJWK(pair.publicKey)));
  });
});
