import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createTestHost } from "@tessera/testing";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";

describe("signing key rotation (fake clock)", () => {
  it("announces, activates, retains and removes keys; old tokens verify through JWKS until they expire", async () => {
    let offset = 0;
    const config = baseConfig();
    config.keys = { algorithms: ["ES256"], rotationInterval: 1000, propagationTime: 100, retentionTime: 300 };
    config.tokens = { accessTokenLifetime: 200, idTokenLifetime: 200 };
    config.clients = [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }, { client_id: "app", token_endpoint_auth_method: "none", redirect_uris: [CALLBACK], scope: "openid profile" }];
    const host = await createTestHost(config, { listen: true, clock: () => Date.now() + offset });
    try {
      const worker = await discover(host, "worker", oidc.ClientSecretBasic("worker-secret"));
      const app = await discover(host, "app");
      const jwks = async () => (await (await fetch(worker.serverMetadata().jwks_uri!)).json()) as JSONWebKeySet;
      const kids = async () => (await jwks()).keys.map((k) => k.kid);
      const token = async () => (await oidc.clientCredentialsGrant(worker)).access_token;
      const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid;
      const verifies = async (jwt: string) => {
        try {
          await jwtVerify(jwt, createLocalJWKSet(await jwks()), { currentDate: new Date(Date.now() + offset) });
          return true;
        } catch {
          return false;
        }
      };
      const advance = (seconds: number) => {
        offset += seconds * 1000;
        // openid-client checks ID token times against its own clock: move it with the server's.
        app[oidc.clockSkew] = offset / 1000;
      };

      const first = await token();
      const k1 = kidOf(first);
      assert.deepEqual(await kids(), [k1]);
      const firstLogin = await codeFlow(app, { scope: "openid profile" });
      assert.equal(kidOf(firstLogin.id_token!), k1);

      advance(905); // past rotationInterval - propagationTime: the successor is announced, not yet used
      const announced = await kids();
      assert.equal(announced.length, 2);
      const k2 = announced.find((k) => k !== k1)!;
      const beforeActivation = await token();
      assert.equal(kidOf(beforeActivation), k1);

      advance(105); // propagation time over, but not the 65 s more (the longest reload interval of any process, 60 s, and 5 s for clock skew)
      assert.equal(kidOf(await token()), k1);
      advance(65); // now every process has published the new key for the propagation time: it signs, the old one is retained
      const after = await token();
      assert.equal(kidOf(after), k2);
      assert.deepEqual((await kids()).sort(), [k1, k2].sort());
      assert.equal(await verifies(beforeActivation), true, "a token signed by the old key still verifies");
      // openid-client cached the old JWKS; it must pick up the new key by kid.
      const secondLogin = await codeFlow(app, { scope: "openid profile" });
      assert.equal(kidOf(secondLogin.id_token!), k2);
      assert.equal(secondLogin.claims()!.sub, "1");

      advance(150); // the old key's last token has expired; the key is still within retention
      assert.ok((await kids()).includes(k1));
      advance(200); // past retention: the old key is gone
      assert.deepEqual(await kids(), [k2]);
      assert.equal(await verifies(after), false, "expired anyway");
    } finally {
      await host.close();
    }
  });

  it("rejects a propagation time not shorter than the rotation interval", async () => {
    await assert.rejects(createTestHost({ keys: { rotationInterval: 100, propagationTime: 100 } }), /propagationTime/);
  });
});
