import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import { startWebClient } from "../samples/web-client/src/server.ts";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { baseConfig } from "./support/fixtures.ts";

const executable = chromiumPath();

describe("sign-in in a real browser (Debian Chromium)", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  let host: TestHost;
  let rp: Awaited<ReturnType<typeof startWebClient>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const rpOptions = { issuer: "", clientId: "rp", clientSecret: "rp-secret", port: 0, scope: "openid profile email" };

  before(async () => {
    rp = await startWebClient(rpOptions);
    const config = baseConfig();
    config.clients = [...(config.clients ?? []), { client_id: "rp", client_secret: "rp-secret", client_name: "Browser RP", redirect_uris: [`${rp.url}/signin-oidc`], scope: "openid profile email" }];
    host = await createTestHost(config, { listen: true });
    rpOptions.issuer = host.issuer;
    browser = await launchChromium(executable!);
  });
  after(async () => {
    await browser?.close();
    await rp?.close();
    await host?.close();
  });

  it("signs in through the real login page and lands back in the app", async () => {
    const page = await browser.context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy|Refused/.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${rp.url}/`);
    await page.click("#login");
    await page.waitForSelector("input[name=username]");
    assert.equal(new URL(page.url()).origin, host.issuer);
    assert.match(await page.textContent("main") ?? "", /Browser RP/);

    // A wrong password re-shows the form with an error.
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "wrong");
    await page.click("button[type=submit]");
    await page.waitForSelector("#login-error");
    assert.equal((await page.textContent("#login-error"))?.trim(), "Invalid username or password.");

    await page.fill("input[name=password]", "alice");
    await Promise.all([page.waitForURL(`${rp.url}/`), page.click("button[type=submit]")]);
    assert.equal((await page.textContent("#user"))?.trim(), "Signed in as Alice Smith");
    assert.deepEqual(violations, [], "the pages work under their CSP");

    // The session cookie is invisible to script; the session-id cookie is readable.
    await page.goto(`${host.issuer}/`);
    const cookies = await page.evaluate(() => document.cookie);
    assert.match(cookies, /tessera\.session_id=/);
    assert.doesNotMatch(cookies, /tessera\.session=/);
    assert.match((await page.textContent("#signed-in")) ?? "", /Alice Smith/);
    if (process.env.TESSERA_SCREENSHOTS) await page.screenshot({ path: `${process.env.TESSERA_SCREENSHOTS}/home.png` });
    await page.close();
  });

  it("refuses to be framed (frame-ancestors 'none'), while frameable URLs load", async () => {
    // A plain page on another loopback origin, with no CSP of its own: only Tessera's headers decide.
    const framer = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><iframe id="control" src="${host.issuer}/.well-known/openid-configuration"></iframe><iframe id="login" src="${host.issuer}/login"></iframe>`);
    });
    await new Promise<void>((resolve) => framer.listen(0, "127.0.0.1", resolve));
    const page = await browser.context.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`);
      await page.waitForLoadState("load");
      const content = async (id: string) => {
        const frame = await (await page.$(`#${id}`))!.contentFrame();
        return frame!.evaluate(() => document.body?.innerText ?? "").catch(() => "");
      };
      assert.match(await content("control"), /issuer/, "the control frame (discovery JSON) loads");
      assert.doesNotMatch(await content("login"), /Username/, "the login page must not render in a frame");
    } finally {
      await page.close();
      framer.close();
    }
  });

});
