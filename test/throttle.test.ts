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
      assert.equal(browser.cookies.get("tessera.session", host.issuer), undefined, "the right password did not get through");
      now += 61_000;
      const later = await attempt("alice", "alice");
      assert.equal(new URL(later.url).pathname, "/", "after the window the right password works");
      assert.ok(browser.cookies.get("tessera.session", host.issuer));
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
