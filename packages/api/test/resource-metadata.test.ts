import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTokenValidator, protectedResourceMetadata, protectedResourceMetadataUrl, toResponse } from "@tessera/api";
import { requireToken, serveResourceMetadata as expressMetadata } from "@tessera/api/express";
import { serveResourceMetadata as fastifyMetadata, tokenHook } from "@tessera/api/fastify";
import { serveResourceMetadata as honoMetadata, tokenAuth } from "@tessera/api/hono";
import { serve } from "@hono/node-server";
import { createTestHost, type TestHost } from "@tessera/testing";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";

describe("19 RFC 9728 protected resource metadata", () => {
  let host: TestHost;
  let token: string;

  before(async () => {
    host = await createTestHost(
      {
        apiScopes: [{ name: "api1.read" }, { name: "api1.write" }],
        apiResources: [{ name: "urn:api1", scopes: ["api1.read", "api1.write"] }],
        clients: [{ client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read" }],
      },
      { listen: true },
    );
    const response = await fetch(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` },
      body: "grant_type=client_credentials",
    });
    token = ((await response.json()) as { access_token: string }).access_token;
  });
  after(() => host.close());

  it("19 RFC 9728: the metadata URL inserts the well-known segment before the resource's path (§3.1)", () => {
    assert.equal(protectedResourceMetadataUrl("https://api.example.com"), "https://api.example.com/.well-known/oauth-protected-resource");
    assert.equal(protectedResourceMetadataUrl("https://api.example.com/"), "https://api.example.com/.well-known/oauth-protected-resource");
    assert.equal(protectedResourceMetadataUrl("https://api.example.com/mcp"), "https://api.example.com/.well-known/oauth-protected-resource/mcp");
    assert.throws(() => protectedResourceMetadata({ resource: "https://api.example.com/#x", authorizationServers: ["https://idp.example.com"] }), TypeError);
    assert.throws(() => protectedResourceMetadata({ resource: "urn:api1", authorizationServers: ["https://idp.example.com"] }), TypeError);
    assert.throws(() => protectedResourceMetadata({ resource: "https://api.example.com/", authorizationServers: [] }), TypeError);
  });

  it("19 RFC 9728: the handler serves the §2 document at its paths only", async () => {
    const metadata = protectedResourceMetadata({ resource: "https://api.example.com/mcp", authorizationServers: ["https://idp.example.com"], scopesSupported: ["api1.read"], resourceName: "Demo" });
    const compatible = protectedResourceMetadata({ resource: "https://api.example.com/mcp", authorizationServers: ["https://idp.example.com"], scopesSupported: ["api1.read"], resourceName: "Demo", serveAtOriginRoot: true });
    // RFC 9728 §3.3: the origin's path is the resource's own only without a path; else an explicit opt-in.
    assert.equal(metadata(new Request("https://api.example.com/.well-known/oauth-protected-resource")).status, 404);
    assert.deepEqual(metadata.paths, ["/.well-known/oauth-protected-resource/mcp"]);
    for (const [path, on] of [["/.well-known/oauth-protected-resource/mcp", metadata], ["/.well-known/oauth-protected-resource", compatible]] as const) {
      const response = on(new Request(`https://api.example.com${path}`));
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/json");
      assert.deepEqual(await response.json(), { resource: "https://api.example.com/mcp", authorization_servers: ["https://idp.example.com"], scopes_supported: ["api1.read"], bearer_methods_supported: ["header"], resource_name: "Demo" });
    }
    assert.equal(metadata(new Request("https://api.example.com/other")).status, 404);
    assert.equal(metadata(new Request("https://api.example.com/.well-known/oauth-protected-resource/mcp", { method: "POST" })).status, 405);
    const head = metadata(new Request("https://api.example.com/.well-known/oauth-protected-resource/mcp", { method: "HEAD" }));
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });

  it("19 RFC 9728: 401 and 403 challenges carry resource_metadata (§5.1)", async () => {
    const resourceMetadata = "https://api.example.com/.well-known/oauth-protected-resource";
    const validator = createTokenValidator({ issuer: host.issuer, audience: "urn:api1", requiredScopes: ["api1.write"], resourceMetadata });
    const missing = await validator.validate(new Request("https://api.example.com/data"));
    assert.ok(!missing.ok);
    assert.match(missing.wwwAuthenticate, new RegExp(`^Bearer resource_metadata="${resourceMetadata}", DPoP algs="[^"]+", resource_metadata="${resourceMetadata}"$`));
    const bad = await validator.validate(new Request("https://api.example.com/data", { headers: { authorization: "Bearer a.b.c" } }));
    assert.ok(!bad.ok);
    assert.match(bad.wwwAuthenticate, new RegExp(`^Bearer resource_metadata="${resourceMetadata}", error="invalid_token"`));
    const scope = await validator.validate(new Request("https://api.example.com/data", { headers: { authorization: `Bearer ${token}` } }));
    assert.ok(!scope.ok);
    assert.equal(scope.status, 403);
    assert.match(scope.wwwAuthenticate, /^Bearer resource_metadata="[^"]+", error="insufficient_scope", error_description="[^"]+", scope="api1.write"/);
    assert.equal(toResponse(scope).headers.get("www-authenticate"), scope.wwwAuthenticate);
    assert.throws(() => createTokenValidator({ issuer: host.issuer, audience: "urn:api1", resourceMetadata: "not a url" }), TypeError);
    // Without the option the challenges are as before.
    const plain = await createTokenValidator({ issuer: host.issuer, audience: "urn:api1" }).validate(new Request("https://api.example.com/data"));
    assert.ok(!plain.ok && !plain.wwwAuthenticate.includes("resource_metadata"));
  });

  /** The adapter's server: metadata at the well-known path, a protected /data whose 401 points at it. */
  async function check(base: string) {
    const response = await fetch(`${base}/.well-known/oauth-protected-resource/data`);
    assert.equal(response.status, 200);
    const document = (await response.json()) as { resource: string; authorization_servers: string[] };
    assert.equal(document.resource, `${base}/data`);
    assert.deepEqual(document.authorization_servers, [host.issuer]);
    assert.equal((await fetch(`${base}/.well-known/oauth-protected-resource`)).status, 404, "RFC 9728 §3.3: not at the origin's path for a resource with a path");
    const refused = await fetch(`${base}/data`);
    assert.equal(refused.status, 401);
    const challenge = refused.headers.get("www-authenticate")!;
    assert.match(challenge, new RegExp(`^Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/data"`));
    const ok = await fetch(`${base}/data`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
  }
  const parts = (base: string) => {
    const metadata = protectedResourceMetadata({ resource: `${base}/data`, authorizationServers: [host.issuer], scopesSupported: ["api1.read"] });
    return { metadata, validator: createTokenValidator({ issuer: host.issuer, audience: "urn:api1", resourceMetadata: metadata.url }) };
  };

  it("19 RFC 9728: the Express adapter mounts the metadata", async () => {
    const app = express();
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { metadata, validator } = parts(base);
    app.use(expressMetadata(metadata));
    app.get("/data", requireToken(validator), (_req, res) => void res.json({ ok: true }));
    try {
      await check(base);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("19 RFC 9728: the Fastify adapter mounts the metadata", async () => {
    // Fastify takes no routes once it listens, so the port is chosen first.
    const probe = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => probe.once("listening", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const base = `http://127.0.0.1:${port}`;
    const { metadata, validator } = parts(base);
    const app = Fastify();
    await app.register(fastifyMetadata, { metadata });
    app.get("/data", { preHandler: tokenHook(validator) }, async () => ({ ok: true }));
    await app.listen({ port, host: "127.0.0.1" });
    try {
      await check(base);
    } finally {
      await app.close();
    }
  });

  it("19 RFC 9728: the Hono adapter mounts the metadata", async () => {
    const app = new Hono();
    let handle: (request: Request) => Response | Promise<Response> = () => new Response("starting", { status: 503 });
    const server = serve({ fetch: (request) => handle(request), port: 0, hostname: "127.0.0.1" });
    await new Promise((resolve) => server.once("listening", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { metadata, validator } = parts(base);
    app.use(honoMetadata(metadata));
    app.get("/data", tokenAuth(validator), (c) => c.json({ ok: true }));
    handle = (request) => app.fetch(request);
    try {
      await check(base);
    } finally {
      server.close();
    }
  });
});
