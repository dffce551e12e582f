import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost } from "@tessera/testing";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { REDIRECT, RP, baseConfig, pkce } from "./support/fixtures.ts";

const executable = chromiumPath();

describe("server-side sessions page in Chromium", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  let host: TestHost;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const loggedOut: string[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      const token = new URLSearchParams(body).get("logout_token") ?? "";
      loggedOut.push(JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()).sid);
      res.writeHead(200);
      res.end();
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const config = baseConfig();
    config.admin = { role: "admin" };
    config.serverSideSessions = { enabled: true };
    config.clients = [
      { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access", backchannel_logout_uri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/bc` },
    ];
    host = await createTestHost(config, { listen: true });
    browser = await launchChromium(executable!);
  });
  after(async () => {
    await browser?.close();
    await host?.close();
    receiver.close();
  });

  it("an administrator revokes another user's session from the page", async () => {
    // Bob signs in elsewhere and holds a refresh token.
    const bob = new TestBrowser();
    const { verifier, challenge } = pkce();
    const url = new URL(`${host.issuer}/connect/authorize`);
    url.search = new URLSearchParams({ client_id: "web", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile offline_access", code_challenge: challenge, code_challenge_method: "S256" }).toString();
    const stopAt = (u: URL) => u.origin === RP;
    const back = await bob.submitForm(await bob.get(url, { stopAt }), { fields: { username: "bob", password: "bob-password" }, stopAt });
    const tokenRequest = (form: Record<string, string>) =>
      fetch(`${host.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("web:web-secret").toString("base64")}` }, body: new URLSearchParams(form).toString() }).then((r) => r.json() as Promise<Record<string, string>>);
    const tokens = await tokenRequest({ grant_type: "authorization_code", code: new URL(back.location!).searchParams.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier });
    const bobSid = JSON.parse(Buffer.from(tokens.id_token!.split(".")[1]!, "base64url").toString()).sid as string;

    // Alice, an administrator, opens the page: login first, then the list.
    const page = await browser.context.newPage();
    await page.goto(`${host.issuer}/serversidesessions`);
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "alice");
    await Promise.all([page.waitForURL(`${host.issuer}/serversidesessions`), page.click("button[type=submit]")]);
    const row = `tr[data-session-id="${bobSid}"]`;
    assert.equal((await page.textContent(`${row} .display-name`))?.trim(), "Bob");
    if (process.env.TESSERA_SCREENSHOTS) await page.screenshot({ path: `${process.env.TESSERA_SCREENSHOTS}/sessions.png`, fullPage: true });
    await Promise.all([page.waitForURL(`${host.issuer}/serversidesessions`), page.click(`${row} button[name=revoke]`)]);
    assert.equal(await page.$(row), null, "the row is gone");

    for (let i = 0; i < 200 && !loggedOut.includes(bobSid); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(loggedOut.includes(bobSid), "bob's client got a back-channel logout");
    assert.equal((await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! })).error, "invalid_grant");
    await page.close();
  });
});
