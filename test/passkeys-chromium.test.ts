import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import { decodeJwt } from "jose";
import type { CDPSession, Page } from "playwright-core";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { baseConfig } from "./support/fixtures.ts";

const executable = chromiumPath();

/**
 * Passkeys in a real browser: Chromium with a CDP virtual authenticator (CTAP2, internal, resident keys,
 * user verification). The issuer is http://localhost:PORT: WebAuthn needs a secure context (loopback http
 * is one) and an rpID that is a host name, not an IP address.
 */
describe("20 passkeys in Chromium (virtual authenticator)", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  let host: TestHost;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let cdp: CDPSession;
  let receiver: Server;
  let redirectUri = "";
  let authenticator = "";
  const violations: string[] = [];

  before(async () => {
    receiver = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>RP</title><p id=rp>back at the client</p>");
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    redirectUri = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb`;
    const config = baseConfig();
    config.clients = [...(config.clients ?? []), { client_id: "rp", client_secret: "rp-secret", redirect_uris: [redirectUri], scope: "openid profile" }];
    host = await createTestHost(config, { listen: true, issuerHost: "localhost" });
    browser = await launchChromium(executable!);
    page = await browser.context.newPage();
    page.on("console", (message) => {
      if (/Content Security Policy|Refused/.test(message.text())) violations.push(message.text());
    });
    cdp = await browser.context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    ({ authenticatorId: authenticator } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    }));
  });
  after(async () => {
    await browser?.close();
    await host?.close();
    receiver?.close();
  });

  test("20 passkeys: register on /account, then sign in with it and no password; the ID token says amr swk, acr phr", async () => {
    // Password sign-in, landing on the account page.
    await page.goto(`${host.issuer}/account`);
    await page.waitForSelector("input[name=password]");
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "alice");
    await Promise.all([page.waitForURL(`${host.issuer}/account`), page.click("form[action$='/login'] button[type=submit]")]);
    await page.fill("#passkey-name", "Virtual key");
    await Promise.all([page.waitForSelector("[data-passkey-id]"), page.click("button[name=add-passkey]")]);
    assert.match((await page.textContent("#passkeys")) ?? "", /Virtual key/);
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId: authenticator });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]!.isResidentCredential, true);

    // Signed out (a fresh cookie jar); the login page's passkey button signs in without a username.
    await browser.context.clearCookies();
    const verifier = randomBytes(32).toString("base64url");
    const authorize = new URL(`${host.issuer}/connect/authorize`);
    for (const [k, v] of Object.entries({ client_id: "rp", redirect_uri: redirectUri, response_type: "code", scope: "openid profile", state: "s1", nonce: "n1", code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256" })) authorize.searchParams.set(k, v);
    await page.goto(authorize.toString());
    await page.waitForSelector("button[name=passkey]");
    await Promise.all([page.waitForURL((url) => url.toString().startsWith(redirectUri)), page.click("button[name=passkey]")]);
    const code = new URL(page.url()).searchParams.get("code")!;
    const response = await fetch(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("rp:rp-secret").toString("base64")}` },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier }),
    });
    assert.equal(response.status, 200);
    const tokens = (await response.json()) as { id_token: string; access_token: string };
    const idToken = decodeJwt(tokens.id_token);
    assert.equal(idToken.sub, "1");
    assert.deepEqual(idToken.amr, ["swk"]);
    assert.equal(idToken.acr, "phr");
    assert.equal(decodeJwt(tokens.access_token).acr, "phr");
    assert.deepEqual(violations, [], "the passkey pages work under their CSP");
  });

  test("20 passkeys: a password session asked for acr_values=phr steps up with the passkey; the passkey can be removed", async () => {
    await browser.context.clearCookies();
    await page.goto(`${host.issuer}/login?returnUrl=${encodeURIComponent("/account")}`);
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "alice");
    await Promise.all([page.waitForURL(`${host.issuer}/account`), page.click("form[action$='/login'] button[type=submit]")]);
    const authorize = new URL(`${host.issuer}/connect/authorize`);
    const verifier = randomBytes(32).toString("base64url");
    for (const [k, v] of Object.entries({ client_id: "rp", redirect_uri: redirectUri, response_type: "code", scope: "openid", acr_values: "phr", code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256" })) authorize.searchParams.set(k, v);
    await page.goto(authorize.toString());
    await page.waitForSelector("button[name=passkey]");
    assert.equal(await page.$("input[name=password]"), null, "a passkey step-up, not the password form");
    await Promise.all([page.waitForURL((url) => url.toString().startsWith(redirectUri)), page.click("button[name=passkey]")]);
    const code = new URL(page.url()).searchParams.get("code")!;
    const response = await fetch(`${host.issuer}/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("rp:rp-secret").toString("base64")}` },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier }),
    });
    assert.equal(decodeJwt(((await response.json()) as { id_token: string }).id_token).acr, "phr");

    await page.goto(`${host.issuer}/account`);
    await Promise.all([page.waitForURL(`${host.issuer}/account`), page.click("button[name=remove-passkey]")]);
    assert.equal(await page.$("[data-passkey-id]"), null);
    // The removed passkey no longer signs in.
    await browser.context.clearCookies();
    await page.goto(`${host.issuer}/login`);
    await page.click("button[name=passkey]");
    await page.waitForSelector("[data-passkey-status]:not([hidden])");
    assert.match((await page.textContent("[data-passkey-status]")) ?? "", /could not be used/);
  });
});
