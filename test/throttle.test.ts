import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestPage } from "@tessera/testing";
import { baseConfig } from "./support/fixtures.ts";

async function loginPage(browser: TestBrowser, host: TestHost): Promise<TestPage> {
  return browser.get(`${host.issuer}/login`);
}

describe("failed sign-in throttling", () => {
  it("refuses an account after its failures, the same way for unknown accounts, until the window passes", async () => {
    let now = Date.now();
    const host = await createTestHost({ ...baseConfig(), loginThrottling: { window: 60, perAccount: 3, perAddress: 1000 } }, { clock: () => now });
    const browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch }, clock: () => now });
    try {
      const attempt = async (username: string, password: string) => browser.submitForm(await loginPage(browser, host), { fields: { username, password } });
      for (const account of ["alice", "ghost"]) {
        for (let i = 0; i < 3; i++) assert.equal((await attempt(account, "wrong")).text("#login-error"), "Invalid username or password.");
        const refused = await attempt(account, account === "alice" ? "alice" : "x");
        assert.equal(refused.status, 429, account);
        assert.equal(refused.text("#login-error"), "Too many failed sign-ins. Wait a few minutes and try again.", account);
        assert.ok(refused.query("input[name=password]"));
      }
      assert.equal(browser.cookies.get("__Host-tessera.session", host.issuer), undefined, "the right password did not get through");
      now += 61_000;
      const later = await attempt("alice", "alice");
      assert.equal(new URL(later.url).pathname, "/", "after the window the right password works");
      assert.ok(browser.cookies.get("__Host-tessera.session", host.issuer));
    } finally {
      await host.close();
    }
  });

  it("clears an account's failures on success", async () => {
    const host = await createTestHost({ ...baseConfig(), loginThrottling: { window: 60, perAccount: 3, perAddress: 1000 } });
    try {
      const browser = new TestBrowser({ handlers: { [host.issuer]: host.fetch } });
      const attempt = async (password: string) => browser.submitForm(await loginPage(browser, host), { fields: { username: "alice", password } });
      await attempt("wrong");
      await attempt("wrong");
      assert.equal(new URL((await attempt("alice")).url).pathname, "/");
      await attempt("wrong");
      await attempt("wrong");
      assert.equal((await attempt("alice")).status, 200, "two more failures are allowed again");
    } finally {
      await host.close();
    }
  });

  it("limits failures per client address across accounts", async () => {
    const host = await createTestHost({ ...baseConfig(), loginThrottling: { window: 60, perAccount: 100, perAddress: 4 } }, { listen: true });
    try {
      const browser = new TestBrowser();
      for (let i = 0; i < 4; i++) await browser.submitForm(await loginPage(browser, host), { fields: { username: `user${i}`, password: "x" } });
      const refused = await browser.submitForm(await loginPage(browser, host), { fields: { username: "alice", password: "alice" } });
      assert.equal(refused.status, 429);
    } finally {
      await host.close();
    }
  });
});

describe("failed client authentication throttling", () => {
  const tokenRequest = (host: TestHost, secret: string, address?: string) =>
    fetch(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`web:${secret}`).toString("base64")}`,
        ...(address ? { "x-forwarded-for": address } : {}),
      },
      body: "grant_type=client_credentials",
    });

  it("refuses a client from an address after its failures, even with the right secret, until the window passes", async () => {
    let now = Date.now();
    const config = { ...baseConfig(), trustedProxies: 1, clientAuthThrottling: { window: 60, maxPerClient: 3, maxPerAddress: 100 } };
    config.clients![0] = { ...config.clients![0]!, grant_types: ["authorization_code", "client_credentials"] };
    const events: { type: string; reason?: string }[] = [];
    const host = await createTestHost(config, { listen: true, clock: () => now, events: (e) => events.push(e as { type: string; reason?: string }) });
    try {
      assert.equal((await tokenRequest(host, "web-secret", "198.51.100.1")).status, 200);
      for (let i = 0; i < 3; i++) assert.equal((await tokenRequest(host, "wrong", "198.51.100.1")).status, 401);
      const refused = await tokenRequest(host, "web-secret", "198.51.100.1");
      assert.equal(refused.status, 429);
      assert.equal(((await refused.json()) as { error: string }).error, "invalid_client");
      assert.equal(refused.headers.get("retry-after"), "60");
      // Another address is not locked out by an attacker elsewhere.
      assert.equal((await tokenRequest(host, "web-secret", "198.51.100.2")).status, 200);
      assert.deepEqual(
        events.filter((e) => e.type === "client.authentication_failed").map((e) => e.reason),
        ["credentials", "credentials", "credentials", "throttled"],
      );
      now += 61_000;
      assert.equal((await tokenRequest(host, "web-secret", "198.51.100.1")).status, 200, "the window passed");
    } finally {
      await host.close();
    }
  });

  it("limits failures per address across client ids, and counts API resource secrets at introspection", async () => {
    const config = { ...baseConfig(), trustedProxies: 1, clientAuthThrottling: { window: 60, maxPerClient: 100, maxPerAddress: 4 } };
    const host = await createTestHost(config, { listen: true });
    try {
      const introspect = (id: string, secret: string) =>
        fetch(`${host.issuer}/connect/introspect`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`, "x-forwarded-for": "203.0.113.9" },
          body: "token=x",
        });
      for (const id of ["urn:api1", "web", "nobody", "spa"]) assert.equal((await introspect(id, "wrong")).status, 401, id);
      assert.equal((await introspect("urn:api1", "api1-secret")).status, 429);
    } finally {
      await host.close();
    }
  });

  it("shares counts through the store: a second process refuses after its own first failure", async () => {
    const { createMemoryStore, createProvider } = await import("@tessera/server");
    const store = createMemoryStore();
    const dataKey = Buffer.alloc(32, 7).toString("base64url");
    const clients = [{ client_id: "svc", client_secret: "svc-secret", grant_types: ["client_credentials"], scope: "api1.read" }];
    const options = { issuer: "https://idp.test", store, dataKey, clients, apiScopes: [{ name: "api1.read" }], clientAuthThrottling: { maxPerClient: 3 } };
    const one = createProvider(options);
    const two = createProvider(options);
    const send = (provider: typeof one, secret: string) =>
      provider.fetch(
        new Request("https://idp.test/connect/token", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`svc:${secret}`).toString("base64")}` },
          body: "grant_type=client_credentials",
        }),
        { clientAddress: "192.0.2.7" },
      );
    try {
      for (let i = 0; i < 3; i++) assert.equal((await send(one, "wrong")).status, 401);
      assert.equal((await send(one, "svc-secret")).status, 429);
      assert.equal((await send(two, "wrong")).status, 429, "its first failure finds the limit used up in the store");
      assert.equal((await send(two, "svc-secret")).status, 429);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
