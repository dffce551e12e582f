import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestBrowser, type TestPage } from "@tessera/testing";
import { decodeJwt } from "jose";
import { generate } from "otplib";
import { Flow, REDIRECT, RP, baseConfig } from "./support/fixtures.ts";

/** TOTP (RFC 6238) and recovery codes through the host's pages, codes made by otplib at the test's clock. */
describe("20 second factors: TOTP and recovery codes", () => {
  let flow: Flow;
  const config = () => {
    const base = baseConfig();
    return { ...base, clients: [...base.clients!, { client_id: "strict", client_secret: "strict-secret", redirect_uris: [REDIRECT], scope: "openid profile", require_second_factor: true }] };
  };
  before(async () => {
    flow = await Flow.create(config());
  });
  after(() => flow.close());

  const code = (secret: string) => generate({ secret, epoch: Math.floor(flow.now / 1000) });
  const nextStep = () => {
    flow.now += 30_000;
  };
  const browser = () => new TestBrowser({ handlers: { [flow.host.issuer]: flow.host.fetch }, clock: () => flow.now });
  const stopAtRp = { stopAt: (u: URL) => u.origin === RP };
  const idToken = async (page: TestPage, verifier: string) => {
    const response = await flow.redeem(Flow.response(page).get("code")!, verifier);
    assert.equal(response.status, 200);
    return decodeJwt(String(((await response.json()) as { id_token: string }).id_token));
  };
  /** Signs `user` in with the password in `b`, for `web` with extra parameters; returns the page after the password. */
  const passwordStep = async (b: TestBrowser, params: Record<string, string> = {}, user = "alice") => {
    const request = await flow.authorizeUrl(params);
    const login = await b.get(request.url, stopAtRp);
    assert.ok(login.query("input[name=password]"), "the login page");
    const after = await b.submitForm(login, { fields: { username: user, password: user === "alice" ? "alice" : "bob-password" }, ...stopAtRp });
    return { request, after };
  };
  let secret = "";
  let recoveryCodes: string[] = [];

  test("20 TOTP enrolment: /account shows the secret and a QR code; an otplib code turns it on and shows 10 recovery codes once", async () => {
    await flow.signIn();
    const account = await flow.browser.get(`${flow.host.issuer}/account`);
    assert.equal(account.status, 200);
    secret = account.query("[data-totp-secret]")!.getAttribute("data-totp-secret")!;
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    assert.ok(account.query("#totp-qr svg path"), "a QR code rendered as inline SVG");
    assert.match(account.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    const form = "form:has(input[name=code])";
    // A wrong code shows the same secret again with an error.
    const wrong = await flow.browser.submitForm(account, { form, fields: { code: "000000" } });
    assert.ok(wrong.query("#totp-error"));
    assert.equal(wrong.query("[data-totp-secret]")!.getAttribute("data-totp-secret"), secret);
    const done = await flow.browser.submitForm(wrong, { form, fields: { code: await code(secret) } });
    assert.equal(done.status, 200);
    recoveryCodes = done.queryAll("[data-recovery-code]").map((e) => e.getAttribute("data-recovery-code")!);
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    const again = await flow.browser.get(`${flow.host.issuer}/account`);
    assert.equal(again.query("[data-totp-secret]"), null, "no enrolment once it is on");
    assert.equal(again.text("#recovery-count"), "10");
    assert.doesNotMatch(again.body, new RegExp(recoveryCodes[0]!), "recovery codes are shown only once");
  });

  test("20 step-up: a password session asked for acr_values=mfa must present the code; the ID token then says acr mfa, amr [pwd, otp, mfa]", async () => {
    // The session from before enrolment is a password session: without acr_values it signs in silently, acr-less.
    const plain = await flow.authorizeUrl();
    const plainToken = await idToken(await flow.go(plain.url), plain.verifier);
    assert.deepEqual(plainToken.amr, ["pwd"]);
    assert.equal(plainToken.acr, undefined);
    // prompt=none cannot step up.
    const silent = await flow.go((await flow.authorizeUrl({ acr_values: "mfa", prompt: "none" })).url);
    assert.equal(Flow.response(silent).get("error"), "login_required");
    nextStep();
    const request = await flow.authorizeUrl({ acr_values: "mfa" });
    const page = await flow.go(request.url);
    assert.ok(page.query("input[name=code]"), "the second-factor page");
    assert.equal(page.query("input[name=password]"), null, "not a full re-login");
    const other = await flow.browser.get(new URL(page.query("a[href*='another=1']")!.getAttribute("href")!, flow.host.issuer), stopAtRp);
    assert.ok(other.query("input[name=password]"), "someone else can sign in instead");
    const back = await flow.browser.submitForm(page, { fields: { code: await code(secret) }, ...stopAtRp });
    const token = await idToken(back, request.verifier);
    assert.equal(token.acr, "mfa");
    assert.deepEqual(token.amr, ["pwd", "otp", "mfa"]);
    assert.equal(token.sid, plainToken.sid, "the same session, upgraded");
    assert.ok((token.auth_time as number) >= (plainToken.auth_time as number));
    // The upgraded session meets acr_values=mfa from now on without a prompt.
    const sso = await flow.authorizeUrl({ acr_values: "mfa" });
    assert.equal((await idToken(await flow.go(sso.url), sso.verifier)).acr, "mfa");
    const metadata = await flow.metadata();
    assert.deepEqual(metadata.acr_values_supported, ["mfa", "phr"]);
    assert.ok((metadata.claims_supported as string[]).includes("acr"));
  });

  test("20 TOTP sign-in: the password is followed by the code; a reused code is refused", async () => {
    nextStep();
    const first = browser();
    const { request, after } = await passwordStep(first);
    assert.ok(after.query("input[name=code]"), "asked for the code after the password");
    assert.equal(first.cookies.get("tessera.session", flow.host.issuer), undefined, "no session before the code");
    const current = await code(secret);
    const back = await first.submitForm(after, { fields: { code: current }, ...stopAtRp });
    const token = await idToken(back, request.verifier);
    assert.deepEqual(token.amr, ["pwd", "otp", "mfa"]);
    assert.equal(token.acr, "mfa");

    const second = browser();
    const { after: again } = await passwordStep(second);
    const refused = await second.submitForm(again, { fields: { code: current }, ...stopAtRp });
    assert.equal(refused.status, 200);
    assert.ok(refused.query("#second-factor-error"), "a used code does not work twice");
    assert.equal(refused.location, undefined);
    nextStep();
    const fresh = await second.submitForm(refused, { fields: { code: await code(secret) }, ...stopAtRp });
    assert.ok(Flow.response(fresh).get("code"));
  });

  test("20 step-up: max_age exceeded asks a user with TOTP for the code, not the password, and renews auth_time", async () => {
    flow.now += 120_000;
    const request = await flow.authorizeUrl({ max_age: "60" });
    const page = await flow.go(request.url);
    assert.ok(page.query("input[name=code]"));
    assert.equal(page.query("input[name=password]"), null);
    const back = await flow.browser.submitForm(page, { fields: { code: await code(secret) }, ...stopAtRp });
    const token = await idToken(back, request.verifier);
    assert.ok(Math.floor(flow.now / 1000) - (token.auth_time as number) <= 1);
    // One authentication event (issue 20 review F3): past max_age only what was just presented counts.
    assert.deepEqual(token.amr, ["otp"]);
  });

  test("20 recovery code: works once in place of the TOTP code", async () => {
    const first = browser();
    const { request, after } = await passwordStep(first);
    const back = await first.submitForm(after, { fields: { code: recoveryCodes[3]!.toUpperCase() }, ...stopAtRp });
    assert.deepEqual((await idToken(back, request.verifier)).amr, ["pwd", "otp", "mfa"]);
    const second = browser();
    const { after: again } = await passwordStep(second);
    const refused = await second.submitForm(again, { fields: { code: recoveryCodes[3]! }, ...stopAtRp });
    assert.ok(refused.query("#second-factor-error"));
    const account = await first.get(`${flow.host.issuer}/account`);
    assert.equal(account.text("#recovery-count"), "9");
  });

  test("20 TOTP: wrong codes are throttled per account like passwords", async () => {
    const b = browser();
    let { after: page } = await passwordStep(b);
    for (let i = 0; i < 5; i++) page = await b.submitForm(page, { fields: { code: "123456" }, ...stopAtRp });
    // Once the limit is used up even the right code is refused, until the window has passed.
    nextStep();
    const throttled = await b.submitForm(page, { fields: { code: await code(secret) }, ...stopAtRp });
    assert.equal(throttled.status, 429);
    assert.ok(throttled.query("#second-factor-error"));
    flow.now += 901_000;
  });

  test("20 second-factor policy: a client with require_second_factor makes a user without one enrol at sign-in", async () => {
    const b = browser();
    const request = await flow.authorizeUrl({ client_id: "strict", scope: "openid profile" });
    const login = await b.get(request.url, stopAtRp);
    const enrol = await b.submitForm(login, { fields: { username: "bob", password: "bob-password" }, ...stopAtRp });
    const bobSecret = enrol.query("[data-totp-secret]")?.getAttribute("data-totp-secret");
    assert.ok(bobSecret, "enrolment on the second-factor page");
    assert.ok(enrol.query("#totp-qr svg"));
    const codes = await b.submitForm(enrol, { fields: { code: await code(bobSecret) }, ...stopAtRp });
    assert.equal(codes.queryAll("[data-recovery-code]").length, 10);
    const back = await b.get(codes.query("#continue")!.getAttribute("href")!.replace(/^\//, `${flow.host.issuer}/`), stopAtRp);
    const response = await flow.redeem(Flow.response(back).get("code")!, request.verifier, { id: "strict", secret: "strict-secret" });
    const token = decodeJwt(String(((await response.json()) as { id_token: string }).id_token));
    assert.equal(token.acr, "mfa");
    assert.deepEqual(token.amr, ["pwd", "otp", "mfa"]);
  });

  test("20 second factors: forged tickets, foreign sessions and malformed input get clear refusals, never a 5xx", async () => {
    const b = browser();
    // No pending sign-in and no session: back to the login page.
    const none = await b.get(`${flow.host.issuer}/login/second-factor`);
    assert.ok(none.query("input[name=password]"));
    const { after } = await passwordStep(b);
    const bad = await b.submitForm(after, { fields: { code: "x".repeat(5000) }, ...stopAtRp });
    assert.equal(bad.status, 200);
    const csrf = await b.post(`${flow.host.issuer}/login/second-factor`, { code: "123456" });
    assert.equal(csrf.status, 400);
    const passkey = await b.request("POST", new URL(`${flow.host.issuer}/login/passkey`), undefined, { "content-type": "application/json" });
    assert.equal(passkey.status, 403);
  });

  test("20 TOTP: turning it off on /account takes a current code", async () => {
    flow.now += 60_000;
    // Changing factors takes a recent sign-in with them (issue 20 review F1): password and code again.
    const { after } = await passwordStep(flow.browser, { prompt: "login" });
    Flow.response(await flow.browser.submitForm(after, { fields: { code: await code(secret) }, ...stopAtRp }));
    nextStep();
    const account = await flow.browser.get(`${flow.host.issuer}/account`);
    const form = "form[action$='/account/totp/remove']";
    const refused = await flow.browser.submitForm(account, { form, fields: { current_code: "000000" } });
    assert.ok(refused.query("#totp-error"));
    assert.equal(refused.query("[data-totp-secret]"), null, "still on");
    const off = await flow.browser.submitForm(refused, { form, fields: { current_code: await code(secret) } });
    assert.ok(off.query("[data-totp-secret]"), "off: enrolment is offered again");
    assert.equal(off.query("#recovery-count"), null);
  });
});
