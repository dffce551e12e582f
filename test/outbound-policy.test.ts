import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { createTestHost } from "@tessera/testing";
import { SignJWT, exportJWK, generateKeyPair } from "jose";

describe("the provider's outbound policy", () => {
  it("without allowLoopback, never fetches a client's jwks_uri on loopback", async () => {
    let hits = 0;
    const pair = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k" };
    const server = createServer((req, res) => {
      hits++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const host = await createTestHost(
      {
        outbound: { allowLoopback: false },
        clients: [{ client_id: "pk", token_endpoint_auth_method: "private_key_jwt", jwks_uri: `${base}/jwks`, grant_types: ["client_credentials"], scope: "openid" }],
      },
      { listen: true },
    );
    try {
      const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: "ES256", kid: "k" }).setIssuer("pk").setSubject("pk").setAudience(host.issuer).setIssuedAt().setExpirationTime("1m").sign(pair.privateKey);
      const response = await fetch(`${host.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: assertion }).toString(),
      });
      assert.equal(response.status, 401);
      assert.equal(hits, 0, "the loopback JWKS was never fetched");
    } finally {
      await host.close();
      server.close();
    }
  });
});
