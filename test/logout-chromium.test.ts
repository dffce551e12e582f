import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import { startWebClient } from "../samples/web-client/src/server.ts";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { baseConfig } from "./support/fixtures.ts";

const executable = chromiumPath();

/**
 * Single sign-out in a real browser. The relying parties and the provider share one site (127.0.0.1 on
 * different ports): Chromium blocks third-party cookies, so the check-session iframe only works same-site.
 */
describe("single sign-out in Chromium", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  let host: TestHost;
  let appA: Awaited<ReturnType<typeof startWebClient>>;
  let appB: Awaited<ReturnType<typeof startWebClient>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const optionsA = { issuer: "", clientId: "app-a", clientSecret: "a-secret", port: 0, checkSessionInterval: 250 };
  const optionsB = { issuer: "", clientId: "app-b", clientSecret: "b-secret", port: 0, checkSessionInterval: 250 };

  before(async () => {
    appA = await startWebClient(optionsA);
    appB = await startWebClient(optionsB);
    const config = baseConfig();
    const client = (id: string, secret: string, url: string) => ({
      client_id: id,
      client_secret: secret,
      client_name: id,
      redirect_uris: [`${url}/signin-oidc`],
      post_logout_redirect_uris: [`${url}/signout-callback-oidc`],
      frontchannel_logout_uri: `${url}/signout-oidc`,
      frontchannel_logout_session_required: true,
      backchannel_logout_uri: `${url}/bff/backchannel`,
      backchannel_logout_session_required: true,
      scope: "openid profile email",
    });
    config.clients = [client("app-a", "a-secret", appA.url), client("app-b", "b-secret", appB.url)];
    host = await createTestHost(config, { listen: true });
    optionsA.issuer = host.issuer;
    optionsB.issuer = host.issuer;
    browser = await launchChromium(executable!);
  });
  after(async () => {
    await browser?.close();
    await appA?.close();
    await appB?.close();
    await host?.close();
  });

  it("check-session says unchanged, then changed after an RP-initiated logout elsewhere; front-channel reaches every app", async () => {
    const tabA = await browser.context.newPage();
    await tabA.goto(`${appA.url}/login`);
    await tabA.fill("input[name=username]", "alice");
    await tabA.fill("input[name=password]", "alice");
    await Promise.all([tabA.waitForURL(`${appA.url}/`), tabA.click("button[type=submit]")]);
    await tabA.waitForFunction(() => document.getElementById("session-status")?.textContent === "unchanged", undefined, { timeout: 10_000 });
    const sid = JSON.parse((await tabA.textContent("#claims"))!).sid as string;

    // Single sign-on into app B in a second tab, then sign out there.
    const tabB = await browser.context.newPage();
    await tabB.goto(`${appB.url}/login`);
    await tabB.waitForURL(`${appB.url}/`);
    assert.match((await tabB.textContent("#user")) ?? "", /Alice Smith/);
    await tabB.click("#logout");
    // Signed-out page, front-channel iframes, then on to B's registered post-logout URI with its state.
    await tabB.waitForURL(`${appB.url}/signout-callback-oidc?state=*`, { timeout: 15_000 });
    assert.ok(await tabB.$("#signed-out"), "B's callback accepted the state");

    // Each app's front-channel URL was loaded by the browser, with iss and sid.
    for (const app of [appA, appB]) {
      const front = app.events.find((e) => e.kind === "front-channel");
      assert.ok(front, "front-channel logout reached the app");
      assert.equal(front.sid, sid);
      assert.equal(front.iss, host.issuer);
    }
    // The provider session is gone, so A's check-session iframe now says changed.
    await tabA.waitForFunction(() => document.getElementById("session-status")?.textContent === "changed", undefined, { timeout: 10_000 });
    // And A's server-side session ended through the back-channel too.
    const deadline = Date.now() + 10_000;
    while (!appA.events.some((e) => e.kind === "back-channel" && e.sid === sid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(appA.events.some((e) => e.kind === "back-channel" && e.sid === sid), "back-channel logout reached app A");
    await tabA.reload();
    assert.ok(await tabA.$("#login"), "app A shows the signed-out state");
    await tabA.close();
    await tabB.close();
  });
});
