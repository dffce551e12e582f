import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { TestBrowser, type TestPage } from "@tessera/testing";
import { isoCBOR } from "@simplewebauthn/server/helpers";
import { decodeJwt } from "jose";
import { generate } from "otplib";
import { Flow, REDIRECT, RP, baseConfig } from "./support/fixtures.ts";

const b64u = (b: Uint8Array | Buffer) => Buffer.from(b).toString("base64url");
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest();

/** A software WebAuthn authenticator (attestation none, ES256, UP+UV). */
class SoftKey {
  id = randomBytes(16);
  counter = 0;
  key: KeyObject;
  pub: { x: string; y: string };
  constructor(private origin: string, private rpId: string) {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.key = pair.privateKey;
    const jwk = pair.publicKey.export({ format: "jwk" }) as { x: string; y: string };
    this.pub = jwk;
  }
  private cd(type: string, challenge: string) {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin, crossOrigin: false }));
  }
  private counterBytes() {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(this.counter);
    return c;
  }
  create(challenge: string) {
    const cose = Buffer.from(isoCBOR.encode(new Map<number, number | Uint8Array>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(this.pub.x, "base64url")], [-3, Buffer.from(this.pub.y, "base64url")]])));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(this.id.length);
    const authData = Buffer.concat([sha(this.rpId), Buffer.from([0x45]), this.counterBytes(), Buffer.alloc(16), len, this.id, cose]);
    const att = isoCBOR.encode(new Map<string, unknown>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]) as never);
    const clientDataJSON = this.cd("webauthn.create", challenge);
    return { id: b64u(this.id), rawId: b64u(this.id), type: "public-key", authenticatorAttachment: "cross-platform", clientExtensionResults: {}, response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(att), transports: ["usb"] } };
  }
  get(challenge: string, counter?: number) {
    if (counter !== undefined) this.counter = counter;
    const authData = Buffer.concat([sha(this.rpId), Buffer.from([0x05]), this.counterBytes()]);
    const clientDataJSON = this.cd("webauthn.get", challenge);
    const signature = sign("sha256", Buffer.concat([authData, sha(clientDataJSON)]), this.key);
    return { id: b64u(this.id), rawId: b64u(this.id), type: "public-key", authenticatorAttachment: "cross-platform", clientExtensionResults: {}, response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authData), signature: b64u(signature) } };
  }
}


const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const stopAtRp = { stopAt: (u: URL) => u.origin === RP };

/** Regression tests of the attacker review of second factors (issue 20). */
describe("20 review-mfa", () => {
  let flow: Flow;
  before(async () => {
    const base = baseConfig();
    flow = await Flow.create({
      ...base,
      users: [...(base.users ?? []), { sub: "3", username: "carol", password: "carol", claims: { name: "Carol" } }],
      deviceFlow: { lifetime: 600, interval: 1, userCodeLength: 8 },
      clients: [
        ...base.clients!,
        { client_id: "tv", token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT], scope: "openid profile", require_second_factor: true },
        { client_id: "strict", client_secret: "strict-secret", redirect_uris: [REDIRECT], scope: "openid profile", require_second_factor: true },
      ],
    } as never);
  });
  after(() => flow.close());
  const code = (secret: string) => generate({ secret, epoch: Math.floor(flow.now / 1000) });
  const nextStep = () => {
    flow.now += 30_000;
  };
  const browser = () => new TestBrowser({ handlers: { [flow.host.issuer]: flow.host.fetch }, clock: () => flow.now });
  const postJson = async (b: TestBrowser, path: string, body: unknown) => {
    const url = new URL(`${flow.host.issuer}${path}`);
    const headers = new Headers({ "content-type": "application/json" });
    const cookie = b.cookies.cookieHeader(url);
    if (cookie) headers.set("cookie", cookie);
    const res = await flow.host.fetch(new Request(url, { method: "POST", headers, body: JSON.stringify(body) }));
    for (const sc of res.headers.getSetCookie()) b.cookies.setCookie(sc, url);
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
  };
  const idToken = async (page: TestPage, verifier: string, client?: { id: string; secret: string }) => {
    const response = await flow.redeem(Flow.response(page).get("code")!, verifier, client);
    assert.equal(response.status, 200);
    return decodeJwt(String(((await response.json()) as { id_token: string }).id_token));
  };
  const passkeyCsrf = (page: TestPage) => page.query("form[data-passkey] input[name=csrf]")!.getAttribute("value")!;
  /** Signs `b` in with the password (and the code, when asked) for `web`; fresh. */
  const signIn = async (b: TestBrowser, user: string, password: string, secret?: string) => {
    const request = await flow.authorizeUrl({ prompt: "login" });
    let page = await b.get(request.url, stopAtRp);
    page = await b.submitForm(page, { fields: { username: user, password }, ...stopAtRp });
    if (page.query("input[name=code]")) page = await b.submitForm(page, { fields: { code: await code(secret!) }, ...stopAtRp });
    return idToken(page, request.verifier);
  };
  /** Turns TOTP on from /account (the session must be fresh); the secret, the ticket and the codes. */
  const enrol = async (b: TestBrowser) => {
    const account = await b.get(`${flow.host.issuer}/account`);
    const secret = account.query("[data-totp-secret]")!.getAttribute("data-totp-secret")!;
    const ticket = account.query("form:has(input[name=code]) input[name=ticket]")!.getAttribute("value")!;
    const csrf = account.query("form:has(input[name=code]) input[name=csrf]")!.getAttribute("value")!;
    const done = await b.submitForm(account, { form: "form:has(input[name=code])", fields: { code: await code(secret) } });
    const codes = done.queryAll("[data-recovery-code]").map((e) => e.getAttribute("data-recovery-code")!);
    assert.equal(codes.length, 10);
    return { secret, ticket, csrf, codes };
  };
  /** Registers a software passkey for `b`'s (fresh, strong enough) session. */
  const addPasskey = async (b: TestBrowser) => {
    const url = new URL(flow.host.issuer);
    const key = new SoftKey(url.origin, url.hostname);
    const csrf = passkeyCsrf(await b.get(`${flow.host.issuer}/account`));
    const options = await postJson(b, "/account/passkeys/options", { csrf });
    assert.equal(options.status, 200, JSON.stringify(options.body));
    const registered = await postJson(b, "/account/passkeys", { csrf, name: "key", ticket: options.body.ticket, response: key.create(options.body.options.challenge) });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    return key;
  };
  /** Signs in with `key` from a login-like page `page` (its passkey form). */
  const passkeySignIn = async (b: TestBrowser, page: TestPage, key: SoftKey) => {
    const csrf = passkeyCsrf(page);
    const returnUrl = page.query("form[data-passkey] input[name=returnUrl]")?.getAttribute("value") ?? undefined;
    const options = await postJson(b, "/login/passkey/options", { csrf, ...(returnUrl ? { returnUrl } : {}) });
    assert.equal(options.status, 200, JSON.stringify(options.body));
    key.counter++;
    const signedIn = await postJson(b, "/login/passkey", { csrf, ...(returnUrl ? { returnUrl } : {}), ticket: options.body.ticket, response: key.get(options.body.options.challenge) });
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    return b.get(new URL(signedIn.body.location, flow.host.issuer), stopAtRp);
  };

  let aliceSecret = "";
  let aliceKey: SoftKey | undefined;

  test("20.m1 factor changes: a stale session cannot add a passkey, make recovery codes or remove TOTP; a fresh one as strong as the strongest factor can", async () => {
    const b = browser();
    await signIn(b, "alice", "alice");
    const { secret } = await enrol(b);
    // The session is ten minutes old: the stolen-cookie case.
    flow.now += 600_000;
    const csrf = passkeyCsrf(await b.get(`${flow.host.issuer}/account`));
    const options = await postJson(b, "/account/passkeys/options", { csrf });
    assert.equal(options.status, 403);
    assert.match(String(options.body.location), /\/login\?returnUrl=%2Faccount$/);
    const regen = await b.submitForm(await b.get(`${flow.host.issuer}/account`), { form: "form[action$='/account/recovery-codes']", fields: { current_code: await code(secret) } });
    assert.equal(regen.queryAll("[data-recovery-code]").length, 0, "no new recovery codes");
    assert.ok(regen.query("input[name=password]"), "sent to sign in again (TOTP is on: password and code)");
    assert.equal(regen.query("input[name=code]"), null, "not a code alone");
    // Confirming: the password, then the code; back on the account page, where changes work again.
    const code1 = await b.submitForm(regen, { fields: { username: "alice", password: "alice" } });
    assert.ok(code1.query("input[name=code]"));
    const back = await b.submitForm(code1, { fields: { code: await code(secret) } });
    assert.equal(new URL(back.url).pathname, "/account");
    nextStep();
    aliceSecret = secret;
    aliceKey = await addPasskey(b);
    // A passkey is now the strongest factor: changes need a passkey sign-in, a password and code do not do.
    nextStep();
    await signIn(b, "alice", "alice", secret);
    const remove = await b.submitForm(await b.get(`${flow.host.issuer}/account`), { form: "form[action$='/account/totp/remove']", fields: { current_code: await code(secret) } });
    assert.ok(remove.query("form[data-passkey]"), "the passkey step-up page");
    assert.equal(remove.query("input[name=code]"), null);
    const still = await b.get(`${flow.host.issuer}/account`);
    assert.equal(still.query("[data-totp-secret]"), null, "TOTP still on");
  });

  test("20.m1 sign-in enrolment: acr_values=mfa alone never lets a user without a factor enrol on the spot; a policy does", async () => {
    const b = browser();
    const request = await flow.authorizeUrl({ acr_values: "mfa" });
    const login = await b.get(request.url, stopAtRp);
    const after = await b.submitForm(login, { fields: { username: "bob", password: "bob-password" }, ...stopAtRp });
    assert.equal(after.query("[data-totp-secret]"), null, "no enrolment at sign-in");
    assert.ok(after.query("#second-factor-setup"), "told to set a second factor up on the account page");
    assert.equal(after.location, undefined, "no code for the client");
    // The code step itself refuses a password-only session (no enrolment form there either).
    const direct = await b.get(`${flow.host.issuer}/login/second-factor?returnUrl=${encodeURIComponent(new URL(login.url).searchParams.get("returnUrl")!)}`, stopAtRp);
    assert.equal(direct.query("[data-totp-secret]"), null);
    const posted = await b.post(`${flow.host.issuer}/login/second-factor`, { csrf: passkeyCsrf(login), code: "123456", ticket: "x" });
    assert.notEqual(posted.status, 500);
    assert.equal(posted.queryAll("[data-recovery-code]").length, 0);
    // A client whose policy demands a second factor: enrolment right after the password.
    const strict = await flow.authorizeUrl({ client_id: "strict", scope: "openid profile" });
    const fresh = browser();
    const page = await fresh.submitForm(await fresh.get(strict.url, stopAtRp), { fields: { username: "bob", password: "bob-password" }, ...stopAtRp });
    assert.ok(page.query("[data-totp-secret]"), "policy: enrolment at sign-in");
  });

  test("20.m2 TOTP-only checks: new recovery codes and turning TOTP off take a current app code, never a recovery code; a used or TOTP-on ticket does nothing", async () => {
    const b = browser();
    const token = await signIn(b, "bob", "bob-password"); 
    assert.ok(token.sub);
    let account = await b.get(`${flow.host.issuer}/account`);
    let secret = account.query("[data-totp-secret]")?.getAttribute("data-totp-secret");
    const enrolled = secret ? await enrol(b) : undefined;
    assert.ok(enrolled, "bob had no TOTP yet");
    secret = enrolled.secret;
    const { codes, ticket, csrf } = enrolled;
    
    nextStep();
    const replay = await b.request("POST", new URL(`${flow.host.issuer}/account/totp`), new URLSearchParams({ csrf, ticket, code: await code(secret) }));
    assert.doesNotMatch(await replay.text(), /data-recovery-code/);
    // With TOTP on, changes take a recent password and code.
    nextStep();
    await signIn(b, "bob", "bob-password", secret);
    account = await b.get(`${flow.host.issuer}/account`);
    const regenForm = "form[action$='/account/recovery-codes']";
    const noCode = await b.submitForm(account, { form: regenForm, fields: { current_code: "" } }); 
    assert.ok(noCode.query("#recovery-error"));
    assert.equal(noCode.queryAll("[data-recovery-code]").length, 0);
    const withRecovery = await b.submitForm(noCode, { form: regenForm, fields: { current_code: codes[0]! } }); 
    assert.ok(withRecovery.query("#recovery-error"), "a recovery code does not make new recovery codes");
    const off = await b.submitForm(withRecovery, { form: "form[action$='/account/totp/remove']", fields: { current_code: codes[1]! } });
    assert.ok(off.query("#totp-error"), "a recovery code does not turn TOTP off");
    assert.equal(off.query("[data-totp-secret]"), null, "still on");
    nextStep();
    const regen = await b.submitForm(off, { form: regenForm, fields: { current_code: await code(secret) } });
    assert.equal(regen.queryAll("[data-recovery-code]").length, 10);
    nextStep();
    const removed = await b.submitForm(await b.get(`${flow.host.issuer}/account`), { form: "form[action$='/account/totp/remove']", fields: { current_code: await code(secret) } });
    assert.ok(removed.query("[data-totp-secret]"), "off with a current app code");
  });

  test("20.m2 enrolment tickets: a wrong code keeps the ticket out of the URL; racing confirmations give one set of codes and no 5xx", async () => {
    const b = browser();
    await signIn(b, "bob", "bob-password");
    const account = await b.get(`${flow.host.issuer}/account`);
    const secret = account.query("[data-totp-secret]")!.getAttribute("data-totp-secret")!;
    const wrong = await b.submitForm(account, { form: "form:has(input[name=code])", fields: { code: "000000" } });
    assert.ok(wrong.query("#totp-error"));
    assert.doesNotMatch(wrong.url, /ticket/);
    assert.equal(wrong.query("[data-totp-secret]")!.getAttribute("data-totp-secret"), secret, "the same secret again");
    const ticket = wrong.query("input[name=ticket]")!.getAttribute("value")!;
    const csrf = wrong.query("form:has(input[name=code]) input[name=csrf]")!.getAttribute("value")!;
    const body = new URLSearchParams({ csrf, ticket, code: await code(secret) });
    const results = await Promise.all([1, 2, 3, 4].map(() => b.request("POST", new URL(`${flow.host.issuer}/account/totp`), body)));
    assert.ok(results.every((r) => r.status < 500), results.map((r) => r.status).join(" "));
    const shown = await Promise.all(results.map(async (r) => (await r.text()).includes("data-recovery-code")));
    assert.equal(shown.filter(Boolean).length, 1, "one set of recovery codes");
    assert.equal((await b.get(`${flow.host.issuer}/account`)).text("#recovery-count"), "10");
  });

  test("20.m3 step-up past max_age: phr needs the passkey (not a code); mfa needs password and code; amr and auth_time describe that one event", async () => {
    const b = browser();
    const first = await flow.authorizeUrl({ acr_values: "phr" });
    const signedIn = await idToken(await passkeySignIn(b, await b.get(first.url, stopAtRp), aliceKey!), first.verifier);
    assert.deepEqual(signedIn.amr, ["swk"], "swk: no attestation, so no hardware claim (client-posted attachment ignored)");
    flow.now += 600_000;
    const phr = await flow.authorizeUrl({ acr_values: "phr", max_age: "60" });
    const page = await b.get(phr.url, stopAtRp);
    assert.equal(page.query("input[name=code]"), null, "a TOTP code does not renew a passkey sign-in");
    assert.ok(page.query("form[data-passkey]"));
    const renewed = await idToken(await passkeySignIn(b, page, aliceKey!), phr.verifier);
    assert.equal(renewed.acr, "phr");
    assert.deepEqual(renewed.amr, ["swk"]);
    assert.ok(Math.floor(flow.now / 1000) - (renewed.auth_time as number) <= 1);
    flow.now += 600_000;
    const mfa = await flow.authorizeUrl({ acr_values: "mfa", max_age: "60" });
    const login = await b.get(mfa.url, stopAtRp);
    assert.ok(login.query("input[name=password]"), "two fresh factors: the password first");
    const codeStep = await b.submitForm(login, { fields: { username: "alice", password: "alice" }, ...stopAtRp });
    const token = await idToken(await b.submitForm(codeStep, { fields: { code: await code(aliceSecret) }, ...stopAtRp }), mfa.verifier);
    assert.equal(token.acr, "mfa");
    assert.deepEqual(token.amr, ["pwd", "otp", "mfa"]);
    assert.ok(Math.floor(flow.now / 1000) - (token.auth_time as number) <= 1);
  });

  test("20.m4 device flow: a password-only session cannot approve a require_second_factor client; it steps up first", async () => {
    const b = browser();
    const post = async (path: string, fields: Record<string, string>) => {
      const r = await flow.host.fetch(new Request(`${flow.host.issuer}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() }));
      return { status: r.status, body: (await r.json()) as Record<string, any> };
    };
    // carol has no second factor: a password sign-in without an authorization request.
    const bobBrowser = b;
    await b.submitForm(await b.get(`${flow.host.issuer}/login`), { fields: { username: "carol", password: "carol" } });
    assert.match((await b.get(`${flow.host.issuer}/`)).text(), /Carol/, "signed in with the password alone");
    const started = await post("/connect/deviceauthorization", { client_id: "tv", scope: "openid profile" });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const page = await bobBrowser.get(started.body.verification_uri_complete);
    assert.equal(page.query("button[name=decision][value=allow]"), null, "no approval from a password-only session");
    assert.ok(page.query("input[name=password]"), "the login page (policy: the password, then enrolment)");
    // Posting the decision directly is refused as well.
    const csrf = (await bobBrowser.get(`${flow.host.issuer}/account`)).query("input[name=csrf]")!.getAttribute("value")!;
    const decided = await bobBrowser.post(`${flow.host.issuer}/device/decision`, { csrf, user_code: started.body.user_code, decision: "allow" });
    assert.ok(decided.query("input[name=password]") || /\/login/.test(decided.url), "sent to step up");
    const poll = await post("/connect/token", { grant_type: DEVICE_GRANT, device_code: started.body.device_code, client_id: "tv" });
    assert.equal(poll.body.error, "authorization_pending");
    // Stepping up: password, enrolment (the client's policy), then the approval.
    const enrolPage = await bobBrowser.submitForm(page, { fields: { username: "carol", password: "carol" } });
    const secret = enrolPage.query("[data-totp-secret]")!.getAttribute("data-totp-secret")!;
    const codes = await bobBrowser.submitForm(enrolPage, { fields: { code: await code(secret) } });
    const confirm = await bobBrowser.get(new URL(codes.query("#continue")!.getAttribute("href")!, flow.host.issuer));
    const done = await bobBrowser.submitForm(confirm, { button: "button[name=decision][value=allow]" });
    assert.equal(done.status, 200);
    flow.now += 2_000;
    const tokens = await post("/connect/token", { grant_type: DEVICE_GRANT, device_code: started.body.device_code, client_id: "tv" });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.equal(decodeJwt(tokens.body.id_token).acr, "mfa");
  });
});
