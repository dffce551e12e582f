import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestHostConfig } from "@tessera/testing";
import { Flow, baseConfig } from "./support/fixtures.ts";

/** Issues 20 and 21 together: self-service, second factors and external providers on the same pages. */
function config(externalProviders: boolean): TestHostConfig {
  return {
    ...baseConfig(),
    accounts: { registration: true },
    ...(externalProviders
      ? {
          externalProviders: [
            {
              id: "corp",
              displayName: "Corp SSO",
              authorization_endpoint: "https://sso.corp.test/authorize",
              token_endpoint: "https://sso.corp.test/token",
              userinfo_endpoint: "https://sso.corp.test/userinfo",
              client_id: "tessera",
              client_secret: "corp-secret",
            },
          ],
        }
      : {}),
  };
}

describe("20/21 account and login pages with every feature", () => {
  it("20 login page: one submit button in the login form, passkey and provider buttons in their own forms, registration and reset links", async () => {
    const flow = await Flow.create(config(true));
    try {
      const page = await flow.go((await flow.authorizeUrl()).url);
      const loginForm = page.query('form[action$="/login"]');
      assert.ok(loginForm, "the login form");
      assert.equal(loginForm.querySelectorAll("button[type=submit]").length, 1, "one submit button in the login form");
      const passkey = page.query("button[name=passkey]");
      assert.ok(passkey, "passkey sign-in (mfa)");
      assert.notEqual(passkey.closest("form"), loginForm);
      const corp = page.query("button[name=provider][value=corp]");
      assert.ok(corp, "a button per external provider (federation)");
      assert.notEqual(corp.closest("form"), loginForm);
      assert.equal(corp.textContent?.trim(), "Corp SSO");
      const links = page.queryAll("#account-links a").map((a) => a.getAttribute("href") ?? "");
      assert.ok(links.some((href) => href.startsWith("/account/register")), "registration link (self-service)");
      assert.ok(links.includes("/account/forgot"), "forgot-password link (self-service)");
    } finally {
      await flow.close();
    }
  });

  for (const withProviders of [true, false]) {
    it(`20 /account: self-service and second-factor sections${withProviders ? ", and a link to /account/providers" : ", no providers link without external providers"}`, async () => {
      const flow = await Flow.create(config(withProviders));
      try {
        await flow.host.users.create({ username: "dana", email: "dana@example.com", emailVerified: true, password: "dana-passphrase", claims: { name: "Dana" } }, "admin");
        await flow.signIn({}, "dana", "dana-passphrase");
        const account = await flow.browser.get(`${flow.host.issuer}/account`);
        assert.equal(account.status, 200);
        assert.ok(account.query("#password input[name=current_password]"), "self-service: change password");
        assert.ok(account.query("#sessions"), "self-service: sessions");
        assert.ok(account.query("section#totp"), "mfa: TOTP");
        assert.ok(account.query("section#passkeys button[name=add-passkey]"), "mfa: passkeys");
        assert.equal(account.queryAll("h1").length, 1, "one page, not mfa's placeholder beside it");
        const link = account.query("#providers-link");
        if (withProviders) {
          assert.equal(link?.getAttribute("href"), "/account/providers");
          assert.equal((await flow.browser.get(`${flow.host.issuer}/account/providers`)).status, 200);
        } else {
          assert.equal(link, null);
        }
      } finally {
        await flow.close();
      }
    });
  }
});
