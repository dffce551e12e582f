import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";

describe("client authentication with JWT assertions (RFC 7523)", () => {
  let host: TestHost;
  let jwksServer: Server;
  let jwksFetches = 0;
  let inlineKey: CryptoKey;
  let inlinePublic: JWK;
  let remoteKey: CryptoKey;
  let otherKey: CryptoKey;

  before(async () => {
    const inlinePair = await generateKeyPair("ES256", { extractable: true });
    inlineKey = inlinePair.privateKey;
    inlinePublic = { ...(await exportJWK(inlinePair.publicKey)), kid: "inline-1" };
    const remotePair = await generateKeyPair("RS256", { extractable: true });
    remoteKey = remotePair.privateKey;
    const remotePublic = { ...(await exportJWK(remotePair.publicKey)), kid: "remote-1", alg: "RS256" };
    ({ privateKey: otherKey } = await generateKeyPair("ES256"));
    jwksServer = createServer((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [remotePublic] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    const c = baseConfig();
    c.clients = [
      { client_id: "pkjwt", token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [inlinePublic] }, grant_types: ["client_credentials", "authorization_code"], redirect_uris: [CALLBACK], scope: "openid api1.read" },
      { client_id: "remote", token_endpoint_auth_method: "private_key_jwt", jwks_uri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`, grant_types: ["client_credentials"], scope: "api1.read" },
      { client_id: "hmac", client_secret: "a-long-shared-secret-of-at-least-32-bytes!", token_endpoint_auth_method: "client_secret_jwt", grant_types: ["client_credentials"], scope: "api1.read" },
    ];
    host = await createTestHost(c, { listen: true });
  });
  after(async () => {
    await host.close();
    jwksServer.close();
  });

  it("accepts private_key_jwt with inline jwks, for client credentials and the code flow", async () => {
    const config = await discover(host, "pkjwt", oidc.PrivateKeyJwt(inlineKey, { kid: "inline-1" }));
    assert.ok(config.serverMetadata().token_endpoint_auth_methods_supported?.includes("private_key_jwt"));
    assert.ok((await oidc.clientCredentialsGrant(config)).access_token);
    const tokens = await codeFlow(config, { scope: "openid api1.read" });
    assert.equal(tokens.claims()!.sub, "1");
  });

  it("accepts private_key_jwt with a jwks_uri, fetched once and cached", async () => {
    const config = await discover(host, "remote", oidc.PrivateKeyJwt(remoteKey, { kid: "remote-1" }));
    for (let i = 0; i < 3; i++) assert.ok((await oidc.clientCredentialsGrant(config)).access_token);
    assert.equal(jwksFetches, 1);
  });

  it("accepts client_secret_jwt", async () => {
    const config = await discover(host, "hmac", oidc.ClientSecretJwt("a-long-shared-secret-of-at-least-32-bytes!"));
    assert.ok((await oidc.clientCredentialsGrant(config)).access_token);
  });

  describe("bad assertions get 401 invalid_client", () => {
    const tokenEndpoint = () => `${host.issuer}/connect/token`;
    const send = async (assertion: string, extra: Record<string, string> = {}) => {
      const response = await fetch(tokenEndpoint(), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion, ...extra }).toString(),
      });
      return { status: response.status, error: ((await response.json()) as { error: string }).error };
    };
    const assertion = (claims: Record<string, unknown> = {}, options: { key?: CryptoKey | Uint8Array; alg?: string; iss?: string } = {}) =>
      new SignJWT({ jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: options.alg ?? "ES256", kid: "inline-1" })
        .setIssuer(options.iss ?? "pkjwt")
        .setSubject(options.iss ?? "pkjwt")
        .setAudience((claims.aud as string) ?? host.issuer)
        .setIssuedAt()
        .setExpirationTime((claims.exp as number) ?? "60s")
        .sign(options.key ?? inlineKey);

    it("accepts a good one once, and refuses its replay (jti)", async () => {
      const good = await assertion();
      assert.equal((await send(good)).status, 200);
      assert.deepEqual(await send(good), { status: 401, error: "invalid_client" });
    });

    it("accepts the token endpoint URL as audience, refuses another audience", async () => {
      assert.equal((await send(await assertion({ aud: tokenEndpoint() }))).status, 200);
      assert.deepEqual(await send(await assertion({ aud: "https://elsewhere.test" })), { status: 401, error: "invalid_client" });
    });

    it("refuses expired, long-lived, wrongly signed, none and HMAC-confused assertions", async () => {
      const now = Math.floor(Date.now() / 1000);
      assert.equal((await send(await assertion({ exp: now - 120 }))).status, 401, "expired");
      assert.equal((await send(await assertion({ exp: now + 3600 }))).status, 401, "too long");
      assert.equal((await send(await assertion({}, { key: otherKey }))).status, 401, "wrong key");
      const header = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
      const body = Buffer.from(JSON.stringify({ iss: "pkjwt", sub: "pkjwt", aud: host.issuer, exp: now + 60, jti: randomUUID() })).toString("base64url");
      assert.equal((await send(`${header}.${body}.`)).status, 401, "alg none");
      const confused = await assertion({}, { alg: "HS256", key: new TextEncoder().encode(JSON.stringify(inlinePublic)) });
      assert.equal((await send(confused)).status, 401, "HS256 with the public key as secret");
      assert.equal((await send(await assertion({}, { iss: "nobody" }))).status, 401, "unknown client");
      assert.equal((await send("not.a.jwt")).status, 401, "garbage");
    });

    it("refuses mixing methods and a client_id that disagrees with the assertion", async () => {
      const good = await assertion();
      assert.deepEqual(await send(good, { client_secret: "x" }), { status: 400, error: "invalid_request" });
      assert.deepEqual(await send(await assertion(), { client_id: "remote" }), { status: 400, error: "invalid_request" });
      const hmacAsKey = await assertion({}, { iss: "hmac", alg: "ES256" });
      assert.equal((await send(hmacAsKey)).status, 401, "client_secret_jwt client signing with a key");
    });
  });

  it("answers introspection and revocation for assertion-authenticated clients", async () => {
    const config = await discover(host, "pkjwt", oidc.PrivateKeyJwt(inlineKey, { kid: "inline-1" }));
    const tokens = await codeFlow(config, { scope: "openid api1.read" });
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, true);
    await oidc.tokenRevocation(config, tokens.access_token);
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
  });

  it("rejects a config whose private_key_jwt client has no keys", async () => {
    await assert.rejects(createTestHost({ clients: [{ client_id: "x", token_endpoint_auth_method: "private_key_jwt", grant_types: ["client_credentials"], scope: "openid" }] }), /jwks/);
  });
});
