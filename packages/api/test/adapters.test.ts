import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTokenValidator, type TokenValidator } from "@tessera/api";
import { requireToken } from "@tessera/api/express";
import { tokenValidation } from "@tessera/api/fastify";
import { tokenAuth, type TokenAuthVariables } from "@tessera/api/hono";
import { serve } from "@hono/node-server";
import { createTestHost, type TestHost } from "@tessera/testing";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";

describe("framework adapters", () => {
  let host: TestHost;
  let validator: TokenValidator;
  let token: string;

  before(async () => {
    host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read"] }],
        clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }],
      },
      { listen: true },
    );
    validator = createTokenValidator({ issuer: host.issuer, audience: "urn:api1", requiredScopes: ["api1.read"] });
    const response = await fetch(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` },
      body: "grant_type=client_credentials",
    });
    token = ((await response.json()) as { access_token: string }).access_token;
  });
  after(() => host.close());

  /** Calls `url` with and without the token; the protected route echoes the subject it saw. */
  async function check(url: string) {
    const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { sub: "worker", scopes: ["api1.read"] });
    const missing = await fetch(url);
    assert.equal(missing.status, 401);
    assert.match(missing.headers.get("www-authenticate")!, /^Bearer, DPoP algs="[^"]+"$/);
    const bad = await fetch(url, { headers: { authorization: "Bearer nope.nope.nope" } });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get("www-authenticate")!, /error="invalid_token"/);
    assert.equal(((await bad.json()) as { error: string }).error, "invalid_token");
  }

  it("Express: requireToken puts the token on req.auth", async () => {
    const app = express();
    app.get("/data", requireToken(validator), (req, res) => {
      res.json({ sub: req.auth!.claims.sub, scopes: req.auth!.scopes });
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      await check(`http://127.0.0.1:${(server.address() as AddressInfo).port}/data`);
    } finally {
      server.close();
    }
  });

  it("Fastify: the plugin protects its context and sets request.auth", async () => {
    const app = Fastify();
    await app.register(async (scope) => {
      await scope.register(tokenValidation, { validator });
      scope.get("/data", async (request) => ({ sub: request.auth!.claims.sub, scopes: request.auth!.scopes }));
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      await check(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/data`);
    } finally {
      await app.close();
    }
  });

  it("Hono: tokenAuth sets c.get('auth')", async () => {
    const app = new Hono<{ Variables: TokenAuthVariables }>();
    app.get("/data", tokenAuth(validator), (c) => c.json({ sub: c.get("auth").claims.sub, scopes: c.get("auth").scopes }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      await check(`http://127.0.0.1:${(server.address() as AddressInfo).port}/data`);
    } finally {
      server.close();
    }
  });
});
