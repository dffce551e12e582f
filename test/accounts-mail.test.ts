import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import type { Logger, TesseraEvent } from "@tessera/server";
import { TestBrowser, type TestPage } from "@tessera/testing";
import { ConfigError, parseConfig } from "@tessera/host";
import { Flow, RP, baseConfig } from "./support/fixtures.ts";
import { startMailCatcher, type MailCatcher } from "./support/smtp.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestPostgres } from "./support/postgres.ts";

let mail: MailCatcher;
before(async () => {
  mail = await startMailCatcher();
});
after(() => mail.close());

const FROM = "Tessera <idp@example.test>";

type StoreConfig = { kind: "memory" } | { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

async function host(accounts: Record<string, unknown> = { registration: true }, options: { events?: TesseraEvent[]; logger?: Logger; smtpUrl?: string; store?: StoreConfig; serverSideSessions?: boolean } = {}) {
  const config = { ...baseConfig(), accounts, smtp: { url: options.smtpUrl ?? mail.url, from: FROM }, serverSideSessions: { enabled: options.serverSideSessions ?? true }, ...(options.store ? { store: options.store } : {}) };
  return Flow.create(config, undefined, { events: options.events ? (e) => options.events!.push(e) : undefined, logger: options.logger });
}

let counter = 0;
/** A fresh username and address per test, so mails never mix. */
function person() {
  counter += 1;
  const id = `${process.pid}-${counter}`;
  return { username: `user${id}`, email: `user${id}@example.test`, password: "correct horse battery" };
}

async function register(flow: Flow, who: { username: string; email: string; password: string }, browser: TestBrowser = flow.browser, from = `${flow.host.issuer}/account/register`): Promise<TestPage> {
  const page = await browser.get(from, { stopAt: (u) => u.origin === RP });
  assert.equal(page.status, 200, page.body.slice(0, 300));
  assert.equal(page.queryAll("button[type=submit]").length, 1);
  return browser.submitForm(page, { fields: { username: who.username, email: who.email, password: who.password }, stopAt: (u) => u.origin === RP });
}

/** A browser of its own (another device) for the same host. */
const otherBrowser = (flow: Flow) => new TestBrowser({ handlers: { [flow.host.issuer]: flow.host.fetch }, clock: () => flow.now });

async function userinfo(flow: Flow, accessToken: string): Promise<Record<string, unknown>> {
  const endpoint = String((await flow.metadata()).userinfo_endpoint);
  const response = await flow.host.fetch(new Request(endpoint, { headers: { authorization: `Bearer ${accessToken}` } }));
  assert.equal(response.status, 200);
  return (await response.json()) as Record<string, unknown>;
}

async function signIn(flow: Flow, username: string, password: string, browser = flow.browser) {
  const request = await flow.authorizeUrl();
  const login = await browser.get(request.url, { stopAt: (u) => u.origin === RP });
  const page = await browser.submitForm(login, { fields: { username, password }, stopAt: (u) => u.origin === RP });
  return { request, page };
}

describe("20 self-service accounts with a real SMTP server", () => {
  it("20 registration and verification: sign-in waits for the address, the link works once, email_verified is true", async () => {
    const events: TesseraEvent[] = [];
    const flow = await host({ registration: true }, { events });
    try {
      const who = person();
      const login = await flow.browser.get(`${flow.host.issuer}/login`);
      assert.equal(login.query("a#register-link")?.getAttribute("href"), "/account/register");
      const done = await register(flow, who);
      assert.equal(done.status, 200);
      assert.ok(done.query("#check-mail"));
      const first = await mail.next(who.email);
      assert.equal(first.subject, "Verify your email address");
      assert.ok(first.link?.startsWith(`${flow.host.issuer}/account/verify?`), first.link);
      assert.ok(first.html.includes("<a href="), "an HTML body too");
      assert.ok(first.from.includes("idp@example.test"));

      // Not verified yet: the password is right but sign-in waits, with a resend button.
      const other = otherBrowser(flow);
      const blocked = await signIn(flow, who.username, who.password, other);
      assert.equal(blocked.page.status, 403);
      assert.ok(blocked.page.query("#verify-required"));
      const resent = await other.submitForm(blocked.page);
      assert.equal(resent.status, 403);
      const second = await mail.next(who.email);
      assert.notEqual(second.link, first.link);

      // Opened in the browser that asked for it: it verifies and the sign-in goes on to the client, once;
      // every earlier link of the address ends with it.
      const back = await other.get(second.link!, { stopAt: (u) => u.origin === RP });
      const code = Flow.response(back).get("code")!;
      assert.ok(code);
      const third = otherBrowser(flow);
      assert.equal((await third.get(second.link!)).status, 400);
      assert.equal((await third.get(first.link!)).status, 400);
      const tokens = (await (await flow.redeem(code, blocked.request.verifier)).json()) as { access_token: string };
      const claims = await userinfo(flow, tokens.access_token);
      assert.equal(claims.email, who.email);
      assert.equal(claims.email_verified, true);
      // And the password signs in anywhere now.
      assert.ok(Flow.response((await signIn(flow, who.username, who.password, third)).page).get("code"));
      const types = events.map((e) => e.type);
      assert.ok(types.includes("account.registered") && types.includes("account.email_verified"), types.join(", "));
    } finally {
      await flow.close();
    }
  });

  it("20 prompt=create: registration, then the link in the same browser goes back to the client with a code", async () => {
    const flow = await host({ registration: true });
    try {
      const metadata = await flow.metadata();
      assert.ok((metadata.prompt_values_supported as string[]).includes("create"));
      const who = person();
      const request = await flow.authorizeUrl({ prompt: "create" });
      const page = await flow.go(request.url);
      assert.equal(new URL(page.url).pathname, "/account/register");
      assert.ok(page.query("input[name=username]") && page.query("input[name=email]") && page.query("input[name=password]"));
      const done = await flow.browser.submitForm(page, { fields: who, stopAt: (u) => u.origin === RP });
      assert.ok(done.query("#check-mail"));
      const verification = await mail.next(who.email);
      const back = await flow.go(verification.link!);
      const code = Flow.response(back).get("code");
      assert.ok(code, "a code for the client");
      assert.equal(Flow.response(back).get("state"), request.state);
      const tokens = (await (await flow.redeem(code, request.verifier)).json()) as { id_token: string; access_token: string };
      const claims = await userinfo(flow, tokens.access_token);
      assert.equal(claims.sub, decodeJwt(tokens.id_token).sub);
      assert.equal(claims.email, who.email);
      assert.equal(claims.email_verified, true);
    } finally {
      await flow.close();
    }
  });

  it("20 prompt=create without email verification signs the new account in at once", async () => {
    const flow = await host({ registration: true, emailVerification: false });
    try {
      const who = person();
      const request = await flow.authorizeUrl({ prompt: "create" });
      const page = await flow.go(request.url);
      const back = await flow.browser.submitForm(page, { fields: who, stopAt: (u) => u.origin === RP });
      assert.ok(Flow.response(back).get("code"));
      assert.equal(mail.pending(who.email).length, 0, "no verification mail");
    } finally {
      await flow.close();
    }
  });

  it("20 registration off: no page, no link, prompt=create is invalid_request and not advertised", async () => {
    const flow = await host({ registration: false });
    try {
      assert.equal((await flow.browser.get(`${flow.host.issuer}/account/register`)).status, 404);
      assert.equal((await flow.browser.get(`${flow.host.issuer}/login`)).query("a#register-link"), null);
      assert.ok(!(((await flow.metadata()).prompt_values_supported as string[]).includes("create")));
      const request = await flow.authorizeUrl({ prompt: "create" });
      const answer = Flow.response(await flow.go(request.url));
      assert.equal(answer.get("error"), "invalid_request");
    } finally {
      await flow.close();
    }
  });

  it("20 a taken email gets the same page and a mail to its owner; a taken username is said", async () => {
    const flow = await host({ registration: true });
    try {
      const who = person();
      const first = await register(flow, who, otherBrowser(flow));
      await mail.next(who.email);
      const again = await register(flow, { ...who, username: `${who.username}x` }, otherBrowser(flow));
      assert.equal(again.status, first.status);
      assert.ok(again.query("#check-mail"), "the same page as a new registration");
      assert.equal(again.text("main"), first.text("main"));
      const cookieNames = (page: TestPage) => page.headers.getSetCookie().map((c) => c.split("=")[0]).sort();
      assert.deepEqual(cookieNames(again), cookieNames(first), "the same cookies too");
      const notice = await mail.next(who.email);
      assert.equal(notice.subject, "Someone tried to register with your address");
      assert.ok(notice.link?.endsWith("/account/forgot"));
      const taken = await register(flow, { ...who, email: `other-${who.email}` }, otherBrowser(flow));
      assert.equal(taken.status, 409);
      assert.match(taken.text("#register-error"), /username is taken/);
      const short = await register(flow, { ...person(), password: "short" }, otherBrowser(flow));
      assert.equal(short.status, 400);
      assert.match(short.text("#register-error"), /at least 8/);
    } finally {
      await flow.close();
    }
  });

  it("20 password reset: the link works once, ends every session, an expired link fails, an unknown address gets the same page and no mail", async () => {
    const events: TesseraEvent[] = [];
    const flow = await host({ registration: true, emailVerification: false }, { events });
    try {
      const who = person();
      await register(flow, who);
      assert.equal((await flow.browser.get(`${flow.host.issuer}/account`)).status, 200, "signed in after registration");
      const login = await flow.browser.get(`${flow.host.issuer}/login`);
      assert.equal(login.query("#account-links a")?.getAttribute("href"), "/account/forgot");

      const other = otherBrowser(flow);
      const ask = async (email: string) => other.submitForm(await other.get(`${flow.host.issuer}/account/forgot`), { fields: { email } });
      const unknown = await ask(`nobody-${who.email}`);
      const known = await ask(who.email.toUpperCase());
      assert.equal(unknown.status, known.status);
      assert.equal(unknown.text("#check-mail"), known.text("#check-mail"));
      const resetMail = await mail.next(who.email);
      assert.ok(resetMail.link?.startsWith(`${flow.host.issuer}/account/reset?token=`));
      assert.equal(mail.pending(`nobody-${who.email}`).length, 0, "nothing sent to an unknown address");

      const form = await other.get(resetMail.link!);
      assert.ok(form.query("input[name=password]"));
      const tooShort = await other.submitForm(form, { fields: { password: "short" } });
      assert.equal(tooShort.status, 400);
      const changed = await other.submitForm(tooShort, { fields: { password: "a brand new passphrase" } });
      assert.equal(changed.status, 200);
      assert.match(changed.text("h1"), /Password changed/);
      assert.equal((await other.get(resetMail.link!)).status, 400, "the link works once");
      assert.equal((await other.submitForm(form, { fields: { password: "yet another passphrase" } })).status, 400, "the form works once");
      // The session of the first browser has ended.
      const account = await flow.browser.get(`${flow.host.issuer}/account`);
      assert.equal(new URL(account.url).pathname, "/login");
      assert.equal((await signIn(flow, who.username, who.password, otherBrowser(flow))).page.status, 200, "the old password is refused");
      // The test clock stands still: sessions signed in until the reset's millisecond end (sessionsValidAfter).
      flow.now += 1;
      assert.ok(Flow.response((await signIn(flow, who.username, "a brand new passphrase", otherBrowser(flow))).page).get("code"));

      // Expired: a link 31 minutes old no longer opens the form.
      await ask(who.email);
      const late = await mail.next(who.email);
      flow.now += 31 * 60 * 1000;
      const expired = await other.get(late.link!);
      assert.equal(expired.status, 400);
      assert.equal(expired.query("input[name=password]"), null);
      const types = events.map((e) => e.type);
      for (const type of ["account.password_reset_requested", "account.password_reset"]) assert.ok(types.includes(type as TesseraEvent["type"]), `${type} in ${types.join(", ")}`);
    } finally {
      await flow.close();
    }
  });

  it("20 password reset without server-side sessions: cookie-only sessions end, the new password signs in at once", async () => {
    const flow = await host({ registration: true, emailVerification: false }, { serverSideSessions: false });
    try {
      const who = person();
      await register(flow, who);
      assert.equal((await flow.browser.get(`${flow.host.issuer}/account`)).status, 200);
      flow.now += 2000;
      const other = otherBrowser(flow);
      await other.submitForm(await other.get(`${flow.host.issuer}/account/forgot`), { fields: { email: who.email } });
      const reset = await mail.next(who.email);
      await other.submitForm(await other.get(reset.link!), { fields: { password: "a brand new passphrase" } });
      assert.equal(new URL((await flow.browser.get(`${flow.host.issuer}/account`)).url).pathname, "/login", "the cookie-only session ended");
      flow.now += 1;
      assert.ok(Flow.response((await signIn(flow, who.username, "a brand new passphrase", other)).page).get("code"), "signed in a millisecond later (within the same second)");
    } finally {
      await flow.close();
    }
  });

  it("20 account page: change the password (current one required), see and end sessions, revoke an application", async () => {
    const events: TesseraEvent[] = [];
    const flow = await host({ registration: true, emailVerification: false }, { events });
    try {
      const who = person();
      await register(flow, who);
      // A second session, on another device, with an application the user consented to (remembered).
      const other = otherBrowser(flow);
      const consentRequest = await flow.authorizeUrl({ client_id: "consent", scope: "openid profile" });
      const consent = await other.submitForm(await other.get(consentRequest.url, { stopAt: (u) => u.origin === RP }), { fields: { username: who.username, password: who.password }, stopAt: (u) => u.origin === RP });
      assert.ok(consent.query("button[name=decision][value=allow]"), consent.body.slice(0, 300));
      assert.ok(Flow.response(await other.submitForm(consent, { button: "button[name=decision][value=allow]", fields: { remember: "1" }, stopAt: (u) => u.origin === RP })).get("code"));
      let page = await flow.browser.get(`${flow.host.issuer}/account`);
      assert.equal(page.status, 200);
      assert.equal(page.queryAll("#sessions li").length, 2);
      assert.equal(page.queryAll("#applications li").length, 1);

      const wrong = await flow.browser.submitForm(page, { form: "#password form", fields: { current_password: "not it at all", new_password: "another good passphrase" } });
      assert.equal(wrong.status, 400);
      assert.match(wrong.text("#account-error"), /current password/);
      page = await flow.browser.submitForm(wrong, { form: "#password form", fields: { current_password: who.password, new_password: "another good passphrase" } });
      assert.equal(page.status, 200);
      assert.match(page.text("#account-notice"), /Password changed/);
      assert.equal(page.queryAll("#sessions li").length, 1, "the other session ended");
      assert.equal(new URL((await other.get(`${flow.host.issuer}/account`)).url).pathname, "/login");
      assert.ok(events.some((e) => e.type === "account.password_changed"));

      // Sign in elsewhere again, then end that session and revoke the application from here.
      const third = otherBrowser(flow);
      await signIn(flow, who.username, "another good passphrase", third);
      page = await flow.browser.get(`${flow.host.issuer}/account`);
      assert.equal(page.queryAll("#sessions li").length, 2);
      page = await flow.browser.submitForm(page, { form: "#sessions li form" });
      assert.equal(page.queryAll("#sessions li").length, 1);
      assert.equal(new URL((await third.get(`${flow.host.issuer}/account`)).url).pathname, "/login");
      page = await flow.browser.submitForm(page, { form: "#applications li form" });
      assert.equal(page.queryAll("#applications li").length, 0);
      // A config account has no password form here.
      const alice = otherBrowser(flow);
      await signIn(flow, "alice", "alice", alice);
      const alicePage = await alice.get(`${flow.host.issuer}/account`);
      assert.equal(alicePage.query("#password form"), null);
    } finally {
      await flow.close();
    }
  });

  it("20 a mail that cannot be sent is logged, never shown: the same page", async () => {
    const errors: string[] = [];
    const logger: Logger = { info() {}, warn() {}, error: (_obj, msg) => errors.push(msg ?? "") };
    const closed = await startMailCatcher();
    const url = closed.url;
    await closed.close();
    const flow = await host({ registration: true, emailVerification: false }, { logger, smtpUrl: url });
    try {
      const who = person();
      await register(flow, who);
      const other = otherBrowser(flow);
      const page = await other.submitForm(await other.get(`${flow.host.issuer}/account/forgot`), { fields: { email: who.email } });
      assert.equal(page.status, 200);
      assert.ok(page.query("#check-mail"));
      for (let i = 0; i < 100 && !errors.includes("sending mail failed"); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.ok(errors.includes("sending mail failed"), errors.join(", "));
    } finally {
      await flow.close();
    }
  });

  it("20 bad input never gets a 5xx", async () => {
    const flow = await host({ registration: true });
    try {
      await badInputNever5xx(flow);
    } finally {
      await flow.close();
    }
  });
});

/** Nonsense in every query and form field of every self-service page (with valid CSRF tokens too): never a 5xx. */
async function badInputNever5xx(flow: Flow, user = { username: "alice", password: "alice" }): Promise<void> {
  const issuer = flow.host.issuer;
  const nasty = ["", "\u0000", "\ud800", "x".repeat(5000), "a@b", "@", "<script>", "%00", "../../etc"];
  const inUrl = (value: string) => (value === "\ud800" ? "%ED%A0%80" : encodeURIComponent(value));
  const other = otherBrowser(flow);
  const statuses: number[] = [];
  for (const path of ["/account/verify", "/account/reset", "/account/register", "/account/forgot", "/account"]) {
    for (const value of nasty) statuses.push((await other.get(`${issuer}${path}?token=${inUrl(value)}&returnUrl=${inUrl(value)}`)).status);
  }
  // Without a CSRF token, and with a valid one (anonymous, then signed in) and nonsense in every field.
  const paths = ["/account/register", "/account/forgot", "/account/reset", "/account/verify/resend", "/account/password", "/account/sessions", "/account/applications"];
  const csrfOf = async (browser: TestBrowser, page: string) => (await browser.get(`${issuer}${page}`)).query("input[name=csrf]")!.getAttribute("value")!;
  const signedIn = otherBrowser(flow);
  await signIn(flow, user.username, user.password, signedIn);
  const tokens = new Map<TestBrowser, Record<string, string>>([
    [other, { "/account/register": await csrfOf(other, "/account/register"), "/account/forgot": await csrfOf(other, "/account/forgot") }],
    [signedIn, Object.fromEntries(paths.map((p) => [p, ""]))],
  ]);
  const accountCsrf = await csrfOf(signedIn, "/");
  for (const path of paths) tokens.get(signedIn)![path] = accountCsrf;
  let accepted = 0;
  for (const path of paths) {
    statuses.push((await other.post(`${issuer}${path}`, { username: "x" })).status);
    for (const [browser, csrfs] of tokens) {
      const csrf = csrfs[path];
      if (csrf === undefined) continue;
      for (const value of nasty) {
        const fields = { csrf, username: value, email: value, password: value, token: value, resend: value, returnUrl: value, sessionId: value, clientId: value, current_password: value, new_password: value };
        const page = await browser.post(`${issuer}${path}`, fields);
        statuses.push(page.status);
        // Past the CSRF check: the page answered the input, not "Please try again".
        if (!page.body.includes("This form expired")) accepted += 1;
      }
    }
  }
  assert.ok(accepted >= 8 * nasty.length, `the nonsense reached the handlers (${accepted})`);
  const raw = await flow.host.fetch(new Request(`${issuer}/account/register`, { method: "POST", headers: { "content-type": "multipart/form-data; boundary=x" }, body: "--x\r\nbroken" }));
  statuses.push(raw.status);
  const huge = await flow.host.fetch(new Request(`${issuer}/account/forgot`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `email=${"a".repeat(100_000)}` }));
  statuses.push(huge.status);
  assert.deepEqual(statuses.filter((s) => s >= 500), []);
}

/** Registration, the verification link once, a reset link once and expired, an unknown address: on one store. */
async function storeRoundTrip(store: StoreConfig): Promise<void> {
  const flow = await host({ registration: true }, { store });
  try {
    const who = person();
    await register(flow, who);
    const verification = await mail.next(who.email);
    const other = otherBrowser(flow);
    assert.equal((await other.get(verification.link!)).status, 200);
    assert.equal((await other.get(verification.link!)).status, 400);
    const ask = async (email: string) => other.submitForm(await other.get(`${flow.host.issuer}/account/forgot`), { fields: { email } });
    assert.ok((await ask(`nobody-${who.email}`)).query("#check-mail"));
    await ask(who.email);
    const reset = await mail.next(who.email);
    const changed = await other.submitForm(await other.get(reset.link!), { fields: { password: "a brand new passphrase" } });
    assert.match(changed.text("h1"), /Password changed/);
    assert.equal((await other.get(reset.link!)).status, 400);
    flow.now += 1;
    assert.ok(Flow.response((await signIn(flow, who.username, "a brand new passphrase", otherBrowser(flow))).page).get("code"));
    await ask(who.email);
    const late = await mail.next(who.email);
    flow.now += 31 * 60 * 1000;
    assert.equal((await other.get(late.link!)).status, 400);
    assert.equal(mail.pending(`nobody-${who.email}`).length, 0);
    await badInputNever5xx(flow, { username: who.username, password: "a brand new passphrase" });
  } finally {
    await flow.close();
  }
}

describe("20 self-service on the SQL stores", () => {
  it("20 SQLite: registration, verification, reset, bad input", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-accounts-"));
    try {
      await storeRoundTrip({ kind: "sqlite", path: join(dir, "tessera.db") });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("20 PostgreSQL: registration, verification, reset, bad input", async (t) => {
    const postgres = await startTestPostgres();
    if (!postgres) return t.skip("PostgreSQL is not installed (set CI=true to make this a failure)");
    try {
      await storeRoundTrip({ kind: "postgres", url: await postgres.createDatabase() });
    } finally {
      await postgres.close();
    }
  });
});

describe("20 self-service config", () => {
  it("20 config: smtp and the self-service keys are checked, with their paths", () => {
    const problems = (extra: Record<string, unknown>) => {
      try {
        parseConfig({ issuer: "https://idp.test", ...extra });
        return [];
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems.map((p) => p.path);
      }
    };
    assert.deepEqual(problems({ smtp: { url: "smtp://127.0.0.1:2525", from: FROM, timeout: 5 }, accounts: { registration: true, emailVerification: false, passwordReset: true, resetLinkLifetime: 900 } }), []);
    assert.deepEqual(problems({ smtp: { url: "http://mail.example", from: FROM } }), ["smtp.url"]);
    assert.deepEqual(problems({ smtp: { url: "smtp://127.0.0.1", from: "a\r\nBcc: x@y" } }), ["smtp.from"]);
    assert.deepEqual(problems({ smtp: { url: "smtp://127.0.0.1", from: FROM, port: 25 } }), ["smtp"]);
    assert.deepEqual(problems({ accounts: { resetLinkLifetime: 10 } }), ["accounts.resetLinkLifetime"]);
    assert.deepEqual(problems({ accounts: { registration: "yes" } }), ["accounts.registration"]);
  });
});
