import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost, type TestHostConfig, type TestPage } from "@tessera/testing";
import * as oidc from "openid-client";
import { calculateJwkThumbprint, decodeJwt, type JWK } from "jose";
import { baseConfig } from "./support/fixtures.ts";
import { discover, errorOf } from "./support/oidc.ts";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { startTestPostgres } from "./support/postgres.ts";
import { createMemoryStore, createProvider } from "@tessera/server";

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

function deviceConfig(interval: number): TestHostConfig {
  const config = baseConfig();
  config.identityResources = ["openid", "profile", "email", "offline_access"];
  config.deviceFlow = { lifetime: 600, interval, userCodeLength: 8 };
  config.clients = [
    { client_id: "tv", client_name: "Living Room TV", token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT, "refresh_token"], scope: "openid profile email offline_access api1.read" },
    { client_id: "console", client_secret: "console-secret", token_endpoint_auth_method: "client_secret_basic", grant_types: [DEVICE_GRANT], scope: "openid api1.read" },
    ...config.clients!,
  ];
  return config;
}

type Fetch = (request: Request) => Promise<Response>;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

async function post(fetcher: Fetch, url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetcher(new Request(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(fields).toString() }));
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

interface DeviceStart {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

const start = async (host: TestHost, fields: Record<string, string> = { client_id: "tv", scope: "openid profile offline_access" }, headers?: Record<string, string>) =>
  post(host.fetch, `${host.issuer}/connect/deviceauthorization`, fields, headers);
const poll = (host: TestHost, deviceCode: string, clientId = "tv", headers?: Record<string, string>) =>
  post(host.fetch, `${host.issuer}/connect/token`, { grant_type: DEVICE_GRANT, device_code: deviceCode, ...(clientId ? { client_id: clientId } : {}) }, headers);

/** The verification page, the code typed in, the login page, then the confirmation; returns the confirmation. */
async function confirmation(browser: TestBrowser, verificationUri: string, typed: string, signIn = true): Promise<TestPage> {
  let page = await browser.get(verificationUri);
  assert.equal(page.status, 200);
  assert.ok(page.query("input[name=user_code]"));
  assert.equal(page.queryAll("button[type=submit]").length, 1, "one submit button");
  page = await browser.submitForm(page, { fields: { user_code: typed } });
  if (signIn) {
    assert.ok(page.query("input[name=username]"), `the login page comes next (${page.url}): ${page.status} ${page.text().slice(0, 300)}`);
    page = await browser.submitForm(page, { fields: { username: "alice", password: "alice" } });
  }
  assert.ok(page.query("button[name=decision][value=allow]"), `the confirmation comes next (${page.url}): ${page.text().slice(0, 200)}`);
  assert.ok(page.query("button[name=decision][value=deny]"));
  return page;
}

async function decide(browser: TestBrowser, page: TestPage, decision: "allow" | "deny"): Promise<TestPage> {
  return browser.submitForm(page, { button: `button[name=decision][value=${decision}]` });
}

describe("18 device authorization grant (RFC 8628)", () => {
  let live: TestHost;
  let offset = 0;
  let manual: TestHost;
  let now = Date.now();
  const manualBrowser = () => new TestBrowser({ handlers: { [manual.issuer]: manual.fetch }, clock: () => now });

  before(async () => {
    live = await createTestHost(deviceConfig(1), { listen: true, clock: () => Date.now() + offset });
    manual = await createTestHost(deviceConfig(5), { clock: () => now });
  });
  after(async () => {
    await live?.close();
    await manual?.close();
  });

  it("18 device: discovery advertises the endpoint and the grant type", async () => {
    const metadata = (await (await live.fetch(new Request(`${live.issuer}/.well-known/openid-configuration`))).json()) as Record<string, unknown>;
    assert.equal(metadata.device_authorization_endpoint, `${live.issuer}/connect/deviceauthorization`);
    assert.ok((metadata.grant_types_supported as string[]).includes(DEVICE_GRANT));
  });

  it("18 device: openid-client initiates and polls, TestBrowser approves, tokens (ID, access, refresh) come back and refresh", async () => {
    const config = await discover(live, "tv");
    const started = await oidc.initiateDeviceAuthorization(config, { scope: "openid profile offline_access api1.read" });
    assert.match(started.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(started.verification_uri, `${live.issuer}/device`);
    assert.equal(started.verification_uri_complete, `${live.issuer}/device?user_code=${started.user_code}`);
    assert.equal(started.interval, 1);
    assert.equal(started.expires_in, 600);
    const polling = oidc.pollDeviceAuthorizationGrant(config, started);
    const browser = new TestBrowser();
    const page = await confirmation(browser, started.verification_uri, started.user_code);
    assert.match(page.text(), /Living Room TV/);
    assert.match(page.text(), /api1\.read/);
    assert.equal(page.text("#device-user-code"), started.user_code);
    assert.match(page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    const done = await decide(browser, page, "allow");
    assert.match(done.text(), /device may continue/);
    const tokens = await polling;
    assert.equal(tokens.token_type.toLowerCase(), "bearer");
    assert.ok(tokens.refresh_token, "offline_access gives a refresh token");
    assert.equal(tokens.claims()?.sub, "1");
    const idToken = decodeJwt(tokens.id_token!);
    assert.equal(idToken.aud, "tv");
    assert.ok(idToken.sid, "the ID token names the approving session");
    assert.deepEqual(decodeJwt(tokens.access_token).amr, ["pwd"]);
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, "1");
    assert.equal(userinfo.name, "Alice Smith");
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    // Redeemed once: the same device code again is invalid_grant.
    const again = await poll(live, started.device_code);
    assert.equal(again.body.error, "invalid_grant");
  });

  it("18 device: a confidential client authenticates at the device endpoint and when polling", async () => {
    const config = await discover(live, "console", oidc.ClientSecretBasic("console-secret"));
    const started = await oidc.initiateDeviceAuthorization(config, { scope: "openid api1.read" });
    const polling = oidc.pollDeviceAuthorizationGrant(config, started);
    const browser = new TestBrowser();
    await decide(browser, await confirmation(browser, started.verification_uri_complete.replace(/\?.*/, ""), started.user_code), "allow");
    const tokens = await polling;
    assert.equal(tokens.refresh_token, undefined, "no offline_access, no refresh token");
    const wrong = await start(live, { scope: "openid" }, { authorization: basic("console", "wrong") });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, "invalid_client");
  });

  it("18 device: DPoP-bound tokens when the polls carry a proof", async () => {
    const config = await discover(live, "tv");
    const keyPair = await oidc.randomDPoPKeyPair("ES256");
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const started = await oidc.initiateDeviceAuthorization(config, { scope: "openid offline_access" });
    const polling = oidc.pollDeviceAuthorizationGrant(config, started, undefined, { DPoP });
    const browser = new TestBrowser();
    await decide(browser, await confirmation(browser, started.verification_uri, started.user_code), "allow");
    const tokens = await polling;
    assert.equal(tokens.token_type.toLowerCase(), "dpop");
    const jkt = await calculateJwkThumbprint((await crypto.subtle.exportKey("jwk", keyPair.publicKey)) as JWK);
    assert.deepEqual(decodeJwt(tokens.access_token).cnf, { jkt });
    // The public client's refresh token is bound to the key too: refreshing without the proof fails.
    assert.notEqual(await errorOf(oidc.refreshTokenGrant(config, tokens.refresh_token!)), undefined);
    assert.ok((await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP })).access_token);
  });

  it("18 device: authorization_pending, then slow_down when polled faster than the interval, which grows by 5 s for good", async () => {
    const started = (await start(manual)).body as unknown as DeviceStart;
    assert.equal(started.interval, 5);
    assert.equal((await poll(manual, started.device_code)).body.error, "authorization_pending");
    now += 1000;
    const fast = await poll(manual, started.device_code);
    assert.equal(fast.status, 400);
    assert.equal(fast.body.error, "slow_down");
    now += 6000;
    // 6 s after the last poll: enough for 5, not for the 10 it is now.
    assert.equal((await poll(manual, started.device_code)).body.error, "slow_down");
    now += 15_000;
    assert.equal((await poll(manual, started.device_code)).body.error, "authorization_pending");
  });

  it("18 device: access_denied once the user denies", async () => {
    const started = (await start(manual)).body as unknown as DeviceStart;
    const browser = manualBrowser();
    const done = await decide(browser, await confirmation(browser, started.verification_uri, started.user_code), "deny");
    assert.match(done.text(), /not given access/);
    const denied = await poll(manual, started.device_code);
    assert.equal(denied.status, 400);
    assert.equal(denied.body.error, "access_denied");
  });

  it("18 device: expired_token after the lifetime, and the expired code is refused on the page", async () => {
    const started = (await start(manual)).body as unknown as DeviceStart;
    now += 601_000;
    const expired = await poll(manual, started.device_code);
    assert.equal(expired.body.error, "expired_token");
    const browser = manualBrowser();
    const page = await browser.get(started.verification_uri_complete);
    assert.equal(page.status, 400);
    assert.ok(page.query("input[name=user_code]"), "back to the code form");
    assert.equal(page.query("button[name=decision]"), null);
  });

  it("18 device: invalid_grant for an unknown code, another client's code, and a missing one; unauthorized_client and invalid_scope at the endpoint", async () => {
    assert.equal((await poll(manual, "not-a-device-code")).body.error, "invalid_grant");
    const started = (await start(manual)).body as unknown as DeviceStart;
    const stolen = await poll(manual, started.device_code, "", { authorization: basic("console", "console-secret") });
    assert.equal(stolen.body.error, "invalid_grant");
    assert.equal((await post(manual.fetch, `${manual.issuer}/connect/token`, { grant_type: DEVICE_GRANT, client_id: "tv" })).body.error, "invalid_request");
    // The code-flow client is not registered for the device grant, at either endpoint.
    assert.equal((await start(manual, { scope: "openid" }, { authorization: basic("web", "web-secret") })).body.error, "unauthorized_client");
    assert.equal((await poll(manual, started.device_code, "", { authorization: basic("web", "web-secret") })).body.error, "unauthorized_client");
    assert.equal((await start(manual, { client_id: "tv", scope: "openid api1.write" })).body.error, "invalid_scope");
    assert.equal((await start(manual, { client_id: "tv", scope: "openid nonsense" })).body.error, "invalid_scope");
  });

  it("18 device: the user code is case-, dash- and space-insensitive; verification_uri_complete skips typing but still needs the click", async () => {
    const started = (await start(manual)).body as unknown as DeviceStart;
    const sloppy = ` ${started.user_code.replace("-", "").toLowerCase().replace(/^(..)/, "$1 ")} `;
    const browser = manualBrowser();
    const page = await confirmation(browser, started.verification_uri, sloppy);
    assert.equal(page.text("#device-user-code"), started.user_code);
    // Signed in now: the complete URI of another device code shows its confirmation, and approves nothing by itself.
    const second = (await start(manual)).body as unknown as DeviceStart;
    const shown = await browser.get(second.verification_uri_complete);
    assert.ok(shown.query("button[name=decision][value=allow]"), "the confirmation, never an approval by itself");
    assert.equal((await poll(manual, second.device_code)).body.error, "authorization_pending");
    await decide(browser, shown, "allow");
    now += 5000;
    const tokens = await poll(manual, second.device_code);
    assert.equal(tokens.status, 200);
    assert.equal(tokens.body.token_type, "Bearer");
  });

  it("18 device: wrong user codes are throttled per address, and a throttled address cannot use a right code", async () => {
    // Listening, so the page sees the socket's address (127.0.0.1); in-process calls have none and count only in the total.
    const throttled = await createTestHost(deviceConfig(5), { clock: () => now, listen: true });
    try {
      const started = (await start(throttled)).body as unknown as DeviceStart;
      const browser = new TestBrowser();
      let page = await browser.get(started.verification_uri);
      for (let i = 0; i < 10; i++) {
        page = await browser.submitForm(page, { fields: { user_code: "BCDF-GHJK" } });
        assert.equal(page.status, 400, `wrong code ${i + 1}`);
        assert.match(page.text("#device-error"), /not valid/);
      }
      page = await browser.submitForm(page, { fields: { user_code: started.user_code } });
      assert.equal(page.status, 429);
      assert.match(page.text("#device-error"), /Too many/);
      // A wrong code never says whether it was close: the library API answers the same.
      assert.deepEqual(await throttled.provider.getDeviceRequest("BCDF-GHJK", { clientAddress: "192.0.2.7" }), { status: "invalid" });
    } finally {
      await throttled.close();
    }
  });

  it("18 device: under an issuer with a path, the pages and the return after login stay under it", async () => {
    const tenant = await createTestHost({ ...deviceConfig(5), issuer: "https://idp.test/tenant" }, { clock: () => now });
    try {
      const started = (await start(tenant)).body as unknown as DeviceStart;
      assert.equal(started.verification_uri, "https://idp.test/tenant/device");
      const browser = new TestBrowser({ handlers: { "https://idp.test": tenant.fetch } });
      const page = await confirmation(browser, started.verification_uri, started.user_code);
      assert.ok(page.url.startsWith("https://idp.test/tenant/device?user_code="));
      await decide(browser, page, "allow");
      assert.equal((await poll(tenant, started.device_code)).status, 200);
    } finally {
      await tenant.close();
    }
  });

  it("18 device: malformed input is a clear error, never a 5xx", async () => {
    for (const device_code of ["\u0000", "x".repeat(4000), "\ud800"]) {
      const response = await poll(manual, device_code);
      assert.equal(response.status, 400, JSON.stringify(device_code.slice(0, 4)));
      assert.equal(response.body.error, "invalid_grant");
    }
    const browser = manualBrowser();
    for (const typed of ["%00", "a".repeat(5000), "%ED%A0%80", "%FF", "AEIO-UAEI", "BCDF-GHJK-LMNP"]) {
      const page = await browser.get(`${manual.issuer}/device?user_code=${typed}`);
      assert.equal(page.status, 400);
    }
    const noCsrf = await browser.post(`${manual.issuer}/device`, { user_code: "BCDF-GHJK" });
    assert.equal(noCsrf.status, 400);
    assert.equal((await browser.post(`${manual.issuer}/device/decision`, { user_code: "BCDF-GHJK", decision: "allow" })).status, 400);
  });
});

describe("18 device: pending-request caps", () => {
  it("18 device: device authorizations count against the per-address cap: the address's oldest is dropped, code and all", async () => {
    let clock = Date.now();
    const provider = createProvider({
      clock: () => clock,
      issuer: "https://idp.test",
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      clients: [{ client_id: "tv", token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT], scope: "openid" }],
      interaction: { maxPendingPerAddress: 2 },
    });
    try {
      const begin = async (address: string) => {
        clock += 1000;
        const request = new Request("https://idp.test/connect/deviceauthorization", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "client_id=tv&scope=openid" });
        return (await (await provider.fetch(request, { clientAddress: address })).json()) as DeviceStart;
      };
      const pollCode = async (deviceCode: string) => {
        const request = new Request("https://idp.test/connect/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: DEVICE_GRANT, client_id: "tv", device_code: deviceCode }).toString() });
        return ((await (await provider.fetch(request)).json()) as { error: string }).error;
      };
      const [first, second, third] = [await begin("198.51.100.1"), await begin("198.51.100.1"), await begin("198.51.100.1")];
      const elsewhere = await begin("203.0.113.9");
      assert.equal(await pollCode(first!.device_code), "invalid_grant", "the oldest of the address was dropped");
      assert.equal((await provider.getDeviceRequest(first!.user_code)).status, "invalid");
      for (const kept of [second!, third!, elsewhere]) assert.equal(await pollCode(kept.device_code), "authorization_pending");
    } finally {
      await provider.close();
    }
  });
});

describe("18 device: Chromium", () => {
  const executablePath = chromiumPath();
  it("18 device: Chromium approves a device through verification_uri_complete", { skip: executablePath ? false : "Chromium is not installed" }, async () => {
    const host = await createTestHost(deviceConfig(1), { listen: true });
    const browser = await launchChromium(executablePath!);
    try {
      const config = await discover(host, "tv");
      const started = await oidc.initiateDeviceAuthorization(config, { scope: "openid profile" });
      const polling = oidc.pollDeviceAuthorizationGrant(config, started);
      const page = await browser.context.newPage();
      await page.goto(started.verification_uri_complete);
      // A top-level visit skips typing the code: sign in, then confirm.
      await page.waitForSelector("input[name=username]");
      await page.fill("input[name=username]", "alice");
      await page.fill("input[name=password]", "alice");
      await page.click("button[type=submit]");
      await page.waitForSelector("button[name=decision][value=allow]");
      assert.equal(await page.textContent("#device-user-code"), started.user_code);
      await page.click("button[name=decision][value=allow]");
      await page.waitForSelector("text=device may continue");
      const tokens = await polling;
      assert.equal(tokens.claims()?.sub, "1");
    } finally {
      await browser.close();
      await host.close();
    }
  });
});

const postgres = await startTestPostgres();
after(() => postgres?.close());

describe("18 device: two processes on one PostgreSQL", { skip: postgres ? false : "PostgreSQL is not installed (set CI=true to make this a failure)" }, () => {
  it("18 device: two hosts polling one approved device code at once: exactly one gets tokens", async () => {
    const config: TestHostConfig = { ...deviceConfig(5), store: { kind: "postgres", url: await postgres!.createDatabase() }, dataKey: randomBytes(32).toString("base64url") };
    const [a, b] = await Promise.all([createTestHost(config), createTestHost(config)]);
    try {
      for (let round = 0; round < 3; round++) {
        const started = (await start(a)).body as unknown as DeviceStart;
        // Polled on B, approved on A: both see one device code.
        assert.equal((await poll(b, started.device_code)).body.error, "authorization_pending");
        const browser = new TestBrowser({ handlers: { "https://idp.test": a.fetch } });
        await decide(browser, await confirmation(browser, started.verification_uri, started.user_code), "allow");
        const results = await Promise.all([poll(a, started.device_code), poll(b, started.device_code), poll(a, started.device_code), poll(b, started.device_code)]);
        assert.equal(results.filter((r) => r.status === 200).length, 1, JSON.stringify(results.map((r) => r.body.error ?? "tokens")));
        for (const r of results.filter((r) => r.status !== 200)) assert.equal(r.body.error, "invalid_grant");
      }
      // slow_down across processes: a poll on A, then one on B a moment later.
      const started = (await start(a)).body as unknown as DeviceStart;
      assert.equal((await poll(a, started.device_code)).body.error, "authorization_pending");
      assert.equal((await poll(b, started.device_code)).body.error, "slow_down");
    } finally {
      await a.close();
      await b.close();
    }
  });
});
