import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import { startWebClient } from "../samples/web-client/src/server.ts";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { baseConfig } from "./support/fixtures.ts";

const executable = chromiumPath();

describe("19 client administration pages in Chromium", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  let host: TestHost;
  let rp: Awaited<ReturnType<typeof startWebClient>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  // The relying party learns its client id and secret from the admin page, before its first request.
  const rpOptions = { issuer: "", clientId: "", clientSecret: "", port: 0, scope: "openid profile" };

  before(async () => {
    rp = await startWebClient(rpOptions);
    const config = baseConfig();
    config.admin = { role: "admin" };
    host = await createTestHost(config, { listen: true });
    rpOptions.issuer = host.issuer;
    browser = await launchChromium(executable!);
  });
  after(async () => {
    await browser?.close();
    await rp?.close();
    await host?.close();
  });

  it("19 an administrator creates a client on the admin page, and a user signs in with it", async () => {
    const page = await browser.context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy|Refused/.test(message.text())) violations.push(message.text());
    });

    // Bob is no administrator: 403.
    await page.goto(`${host.issuer}/admin/clients`);
    await page.fill("input[name=username]", "bob");
    await page.fill("input[name=password]", "bob-password");
    await Promise.all([page.waitForURL(`${host.issuer}/admin/clients`), page.click("button[type=submit]")]);
    assert.match((await page.textContent("main")) ?? "", /for administrators/);
    await browser.context.clearCookies();

    // Alice, an administrator, finds the page from the home page.
    await page.goto(`${host.issuer}/login`);
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "alice");
    await Promise.all([page.waitForURL(`${host.issuer}/`), page.click("button[type=submit]")]);
    await Promise.all([page.waitForURL(`${host.issuer}/admin/clients`), page.click("#admin-links a[href$='/admin/clients']")]);
    assert.ok(await page.$("tr[data-client-id=web]"), "configured clients are listed");
    await Promise.all([page.waitForURL(`${host.issuer}/admin/clients/new`), page.click("#new-client")]);

    await page.fill("#f-client_name", "Made in the browser");
    await page.fill("#f-redirect_uris", `${rp.url}/signin-oidc`);
    await page.fill("#f-scope", "openid profile");
    await page.selectOption("#f-token_endpoint_auth_method", "client_secret_basic");
    await page.click("button[name=save]");
    await page.waitForSelector("#client-secret");
    rpOptions.clientId = (await page.getAttribute("#client-id", "data-client-id"))!;
    rpOptions.clientSecret = (await page.getAttribute("#client-secret", "data-client-secret"))!;
    assert.ok(rpOptions.clientId && rpOptions.clientSecret);

    // The edit form shows it, without its secret.
    await page.goto(`${host.issuer}/admin/clients/${encodeURIComponent(rpOptions.clientId)}`);
    assert.equal(await page.inputValue("#f-client_name"), "Made in the browser");
    assert.equal((await page.content()).includes(rpOptions.clientSecret), false, "the secret is shown once only");
    await page.close();

    // A user who is not signed in yet signs in to the new client through the login page.
    await browser.context.clearCookies();
    const user = await browser.context.newPage();
    user.on("console", (message) => {
      if (/Content Security Policy|Refused/.test(message.text())) violations.push(message.text());
    });
    await user.goto(`${rp.url}/`);
    await user.click("#login");
    await user.waitForSelector("input[name=username]");
    assert.match((await user.textContent("main")) ?? "", /Made in the browser/);
    await user.fill("input[name=username]", "bob");
    await user.fill("input[name=password]", "bob-password");
    await Promise.all([user.waitForURL(`${rp.url}/`), user.click("button[type=submit]")]);
    assert.equal((await user.textContent("#user"))?.trim(), "Signed in as Bob");
    assert.deepEqual(violations, [], "the pages work under their CSP (the new client's redirect is a form target)");
    await user.close();
  });

  it("19 an administrator rotates the secret and deletes the client, with confirmation", async () => {
    await browser.context.clearCookies();
    const page = await browser.context.newPage();
    await page.goto(`${host.issuer}/admin/clients/${encodeURIComponent(rpOptions.clientId)}`);
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "alice");
    await Promise.all([page.waitForURL(`${host.issuer}/admin/clients`), page.click("button[type=submit]")]);
    await page.goto(`${host.issuer}/admin/clients/${encodeURIComponent(rpOptions.clientId)}`);
    await page.click("button[name=rotate]");
    await page.waitForSelector("#client-secret");
    const rotated = (await page.getAttribute("#client-secret", "data-client-secret"))!;
    assert.notEqual(rotated, rpOptions.clientSecret);
    await page.goto(`${host.issuer}/admin/clients/${encodeURIComponent(rpOptions.clientId)}`);
    assert.equal((await page.$$("#secrets tr[data-secret-id]")).length, 2, "the old secret stays until removed");

    await page.click("#delete");
    await page.waitForSelector("button[name=confirm]");
    await Promise.all([page.waitForURL(`${host.issuer}/admin/clients`), page.click("button[name=confirm]")]);
    assert.equal(await page.$(`tr[data-client-id="${rpOptions.clientId}"]`), null, "gone from the list");
    await page.close();
  });
});
