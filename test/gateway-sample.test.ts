import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { TesseraEvent } from "@tessera/server";
import { TestBrowser, createTestHost, type TestHostConfig } from "@tessera/testing";
import * as oidc from "openid-client";
import { CALLBACK, codeFlow, discover } from "./support/oidc.ts";
import { startOrdersApi } from "../samples/gateway/src/downstream.ts";
import { startGateway } from "../samples/gateway/src/gateway.ts";
import { startWeb } from "../samples/gateway/src/web.ts";

describe("18 the gateway sample", () => {
  it("18 gateway sample: the user's token reaches the orders API only through the gateway's token exchange", async () => {
    const { port: _port, ...sample } = JSON.parse(readFileSync(join(import.meta.dirname, "..", "samples", "gateway", "tessera.config.json"), "utf8")) as TestHostConfig & { port?: number };
    // The web app's port is known once it listens, so the host is created after it (issuer read lazily).
    const webOptions = { issuer: "", gatewayUrl: "", port: 0 };
    const web = await startWeb(webOptions);
    const clients = sample.clients!.map((c) => (c.client_id === "gateway-web" ? { ...c, redirect_uris: [`${web.url}/signin-oidc`, CALLBACK] } : c));
    const events: TesseraEvent[] = [];
    const host = await createTestHost({ ...sample, clients }, { listen: true, events: (e) => events.push(e) });
    const orders = await startOrdersApi(host.issuer, 0);
    const gateway = await startGateway({ issuer: host.issuer, ordersUrl: orders.url, port: 0 });
    webOptions.issuer = host.issuer;
    webOptions.gatewayUrl = gateway.url;
    try {
      const browser = new TestBrowser();
      const login = await browser.get(`${web.url}/login`);
      const home = await browser.submitForm(login, { fields: { username: "alice", password: "alice" } });
      assert.match(home.text(), /HTTP 200/);
      const result = JSON.parse(home.text("#result")) as { via: string; downstreamStatus: number; downstream: { sub: string; clientId: string; actor: string; orders: unknown[] } };
      assert.equal(result.via, "gateway");
      assert.equal(result.downstreamStatus, 200);
      assert.equal(result.downstream.sub, "1");
      assert.equal(result.downstream.clientId, "gateway");
      assert.equal(result.downstream.actor, "gateway", "delegation: the gateway is the actor");
      assert.equal(result.downstream.orders.length, 1);
      const exchanged = events.find((e) => e.type === "token.exchanged");
      assert.ok(exchanged && exchanged.type === "token.exchanged" && exchanged.audience === "urn:orders" && exchanged.subjectClientId === "gateway-web");

      // The user's own token is refused by the orders API (it was not exchanged), and calls without one too.
      const own = (await codeFlow(await discover(host, "gateway-web", oidc.ClientSecretBasic("gateway-web-secret")), { scope: "openid gateway.access orders.read" })).access_token;
      const direct = await fetch(`${orders.url}/orders`, { headers: { authorization: `Bearer ${own}` } });
      assert.equal(direct.status, 403);
      assert.equal((await fetch(`${gateway.url}/api/orders`, { headers: { authorization: `Bearer ${own}` } })).status, 200, "the same token works through the gateway");
      assert.equal((await fetch(`${orders.url}/orders`)).status, 401);
      assert.equal((await fetch(`${gateway.url}/api/orders`)).status, 401);
    } finally {
      await web.close();
      await gateway.close();
      await orders.close();
      await host.close();
    }
  });
});
