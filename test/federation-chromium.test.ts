import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { serve } from "@hono/node-server";
import { createTestHost, type TestHost } from "@tessera/testing";
import { startWebClient } from "../samples/web-client/src/server.ts";
import { chromiumPath, launchChromium } from "./support/chromium.ts";

const executable = chromiumPath();

/**
 * Sign-in through an external provider (a second Tessera) in a real browser, from the login page's button.
 * The local server listens on 127.0.0.2 so its cookies never mix with the upstream's on 127.0.0.1.
 */
describe("21 external providers in Chromium", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  let app: Awaited<ReturnType<typeof startWebClient>>;
  let upstream: TestHost;
  let local: TestHost;
  let front: ReturnType<typeof serve>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const appOptions = { issuer: "", clientId: "app", clientSecret: "app-secret", port: 0 };

  before(async () => {
    app = await startWebClient(appOptions);
    let handler: ((request: Request) => Promise<Response>) | undefined;
    front = await new Promise((resolve) => {
      const s = serve({ fetch: (request: Request) => (handler ? handler(request) : Promise.resolve(new Response("starting", { status: 503 }))), port: 0, hostname: "127.0.0.2" }, () => resolve(s));
    });
    const localIssuer = `http://127.0.0.2:${(front.address() as AddressInfo).port}`;
    upstream = await createTestHost(
      {
        users: [{ sub: "corp-1", username: "erin", password: "erin", claims: { name: "Erin Corp", email: "erin@corp.example", email_verified: true } }],
        clients: [{ client_id: "tessera", client_secret: "tessera-secret", redirect_uris: [`${localIssuer}/federation/corp/callback`], scope: "openid profile email" }],
      },
      { listen: true },
    );
    local = await createTestHost({
      issuer: localIssuer,
      clients: [{ client_id: "app", client_secret: "app-secret", redirect_uris: [`${app.url}/signin-oidc`], post_logout_redirect_uris: [`${app.url}/signout-callback-oidc`], scope: "openid profile email" }],
      externalProviders: [{ id: "corp", displayName: "Corp SSO", issuer: upstream.issuer, client_id: "tessera", client_secret: "tessera-secret" }],
    });
    handler = local.fetch;
    appOptions.issuer = localIssuer;
    browser = await launchChromium(executable!);
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await local?.close();
    await upstream?.close();
    await new Promise<void>((r) => (front ? front.close(() => r()) : r()));
  });

  it("21 Chromium: the login page's provider button signs in through the upstream", async () => {
    const tab = await browser.context.newPage();
    await tab.goto(`${app.url}/login`);
    await tab.waitForSelector("button[name=provider][value=corp]");
    assert.equal((await tab.textContent("button[name=provider][value=corp]"))?.trim(), "Corp SSO");
    await Promise.all([tab.waitForURL((u) => u.origin === upstream.issuer), tab.click("button[name=provider][value=corp]")]);
    await tab.fill("input[name=username]", "erin");
    await tab.fill("input[name=password]", "erin");
    await Promise.all([tab.waitForURL(`${app.url}/`), tab.click("button[type=submit]")]);
    const claims = JSON.parse((await tab.textContent("#claims"))!) as Record<string, unknown>;
    assert.equal(claims.idp, "corp");
    assert.equal(claims.iss, appOptions.issuer);
    assert.notEqual(claims.sub, "corp-1");
    assert.match((await tab.textContent("#user")) ?? "", /Erin Corp/);
  });
});
