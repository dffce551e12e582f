import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { computeSessionState } from "@tessera/protocol";
import { BACKCHANNEL_LOGOUT_EVENT, type Logger } from "@tessera/server";
import { TestBrowser, createTestHost, type TestHost, type TestPage } from "@tessera/testing";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { Flow, REDIRECT, RP, baseConfig, pkce } from "./support/fixtures.ts";

/** An HTTP receiver for back-channel logout tokens; `mode` decides how it answers. */
async function receiver(mode: "ok" | "fail" | "hang") {
  const tokens: string[] = [];
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    let body = "";
    req.on("data", (d: Buffer) => (body += d));
    req.on("end", () => {
      if (mode === "hang") return; // never answers
      tokens.push(new URLSearchParams(body).get("logout_token") ?? "");
      res.writeHead(mode === "ok" ? 200 : 500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel`,
    tokens,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function until(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("single sign-out", () => {
  let host: TestHost;
  let good: Awaited<ReturnType<typeof receiver>>;
  let failing: Awaited<ReturnType<typeof receiver>>;
  let hanging: Awaited<ReturnType<typeof receiver>>;
  const warnings: { obj: object; msg?: string }[] = [];
  const logger: Logger = { info() {}, warn: (obj, msg) => warnings.push({ obj, msg }), error() {} };

  before(async () => {
    good = await receiver("ok");
    failing = await receiver("fail");
    hanging = await receiver("hang");
    const config = baseConfig();
    const common = { redirect_uris: [REDIRECT], post_logout_redirect_uris: [`${RP}/signed-out`], scope: "openid profile" };
    config.clients = [
      { client_id: "a", client_secret: "a-secret", ...common, frontchannel_logout_uri: `${RP}/a/front`, frontchannel_logout_session_required: true, backchannel_logout_uri: good.url, backchannel_logout_session_required: true },
      { client_id: "b", client_secret: "b-secret", ...common, frontchannel_logout_uri: `${RP}/b/front?x=1`, backchannel_logout_uri: failing.url },
      { client_id: "c", client_secret: "c-secret", ...common, backchannel_logout_uri: hanging.url },
      { client_id: "d", client_secret: "d-secret", ...common },
    ];
    config.logout = { backChannelTimeout: 1, backChannelRetries: 1 };
    host = await createTestHost(config, { logger, listen: true });
  });
  after(async () => {
    await host.close();
    await Promise.all([good.close(), failing.close(), hanging.close()]);
  });

  /** A browser signed in to the given clients; returns the ID token of the first. */
  async function signedIn(browser: TestBrowser, clients: string[]): Promise<{ idToken: string; sid: string }> {
    let idToken = "";
    for (const clientId of clients) {
      const { challenge, verifier } = pkce();
      const url = new URL(`${host.issuer}/connect/authorize`);
      url.search = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT, response_type: "code", scope: "openid profile", code_challenge: challenge, code_challenge_method: "S256", state: "s" }).toString();
      const stopAt = (u: URL) => u.origin === RP;
      let page = await browser.get(url, { stopAt });
      if (page.query("input[name=password]")) page = await browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
      const response = new URL(page.location!).searchParams;
      assert.ok(response.get("session_state"), "session_state in the authorization response");
      const token = await fetch(`${host.issuer}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString("base64")}` },
        body: new URLSearchParams({ grant_type: "authorization_code", code: response.get("code")!, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
      });
      const body = (await token.json()) as { id_token: string };
      idToken ||= body.id_token;
    }
    const sid = JSON.parse(Buffer.from(idToken.split(".")[1]!, "base64url").toString()).sid as string;
    return { idToken, sid };
  }

  it("advertises the logout endpoints and capabilities", async () => {
    const metadata = (await (await fetch(`${host.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    for (const key of ["end_session_endpoint", "check_session_iframe"]) assert.equal(typeof metadata[key], "string", key);
    for (const key of ["frontchannel_logout_supported", "frontchannel_logout_session_supported", "backchannel_logout_supported", "backchannel_logout_session_supported"]) assert.equal(metadata[key], true, key);
  });

  it("computes session_state from client, origin, session id and salt", async () => {
    const browser = new TestBrowser();
    const { sid } = await signedIn(browser, ["d"]);
    const url = new URL(`${host.issuer}/connect/authorize`);
    const { challenge } = pkce();
    url.search = new URLSearchParams({ client_id: "d", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: challenge, code_challenge_method: "S256" }).toString();
    const page = await browser.get(url, { stopAt: (u) => u.origin === RP });
    const state = new URL(page.location!).searchParams.get("session_state")!;
    const salt = state.split(".")[1]!;
    assert.equal(state, computeSessionState("d", RP, sid, salt));
    assert.equal(browser.cookies.get("tessera.session_id", host.issuer)!.value, sid);
  });

  it("ends the session with a valid id_token_hint: front-channel iframes, back-channel tokens, redirect with state", async () => {
    const browser = new TestBrowser();
    const { idToken, sid } = await signedIn(browser, ["a", "b", "c", "d"]);
    const started = Date.now();
    const endSession = new URL(`${host.issuer}/connect/endsession`);
    endSession.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: `${RP}/signed-out`, state: "xyz" }).toString();
    const signedOut = await browser.get(endSession, { stopAt: (u) => u.origin === RP });
    assert.equal(signedOut.status, 200);
    assert.ok(Date.now() - started < 900, "the page does not wait for slow back-channel receivers");
    assert.ok(signedOut.query("#signed-out"));
    const frames = signedOut.queryAll("iframe.front-channel").map((f) => f.getAttribute("src")!);
    assert.deepEqual(frames.sort(), [`${RP}/a/front?iss=${encodeURIComponent(host.issuer)}&sid=${sid}`, `${RP}/b/front?x=1`].sort());
    assert.equal(signedOut.query("#continue")!.getAttribute("href"), `${RP}/signed-out?state=xyz`);
    assert.match(signedOut.headers.get("content-security-policy")!, /frame-src https:\/\/rp\.test/);
    assert.match(signedOut.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
    // Both cookies are gone, and prompt=none now says login_required.
    assert.equal(browser.cookies.get("tessera.session", host.issuer), undefined);
    assert.equal(browser.cookies.get("tessera.session_id", host.issuer), undefined);
    const url = new URL(`${host.issuer}/connect/authorize`);
    const { challenge } = pkce();
    url.search = new URLSearchParams({ client_id: "d", redirect_uri: REDIRECT, response_type: "code", scope: "openid", code_challenge: challenge, code_challenge_method: "S256", prompt: "none" }).toString();
    const none = await browser.get(url, { stopAt: (u) => u.origin === RP });
    assert.equal(new URL(none.location!).searchParams.get("error"), "login_required");

    // The back-channel token verifies against JWKS and carries every required claim.
    await until(() => good.tokens.length === 1, "the back-channel logout token");
    const token = good.tokens[0]!;
    assert.equal(decodeProtectedHeader(token).typ, "logout+jwt");
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${host.issuer}/.well-known/openid-configuration/jwks`)), { issuer: host.issuer, audience: "a", typ: "logout+jwt" });
    assert.equal(payload.sub, "1");
    assert.equal(payload.sid, sid);
    assert.ok(payload.iat && payload.exp && payload.jti);
    assert.deepEqual(payload.events, { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    assert.equal("nonce" in payload, false);

    // The failing and the hanging receivers were retried once each, then logged; nothing broke.
    await until(() => warnings.filter((w) => w.msg === "back-channel logout failed").length === 2, "both failures to be logged");
    assert.equal(failing.hits(), 2);
    assert.equal(hanging.hits(), 2);
    const failures = warnings.filter((w) => w.msg === "back-channel logout failed").map((w) => (w.obj as { clientId: string; error: string }));
    assert.deepEqual(failures.map((f) => f.clientId).sort(), ["b", "c"]);
    assert.ok(failures.some((f) => f.error === "timed out"));
  });

  it("never follows an unregistered post_logout_redirect_uri", async () => {
    const browser = new TestBrowser();
    const { idToken } = await signedIn(browser, ["d"]);
    const endSession = new URL(`${host.issuer}/connect/endsession`);
    endSession.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: "https://evil.test/", state: "s" }).toString();
    const page = await browser.get(endSession, { stopAt: (u) => u.origin !== host.issuer });
    assert.equal(page.status, 200);
    assert.equal(page.query("#continue"), null);
    assert.doesNotMatch(page.body, /evil\.test/);
    assert.equal(browser.cookies.get("tessera.session", host.issuer), undefined, "the logout itself still happened");
  });

  it("asks the user to confirm without a valid hint, and ends the session on confirmation", async () => {
    const browser = new TestBrowser();
    await signedIn(browser, ["a"]);
    const endSession = new URL(`${host.issuer}/connect/endsession`);
    endSession.search = new URLSearchParams({ client_id: "a", post_logout_redirect_uri: `${RP}/signed-out`, state: "q" }).toString();
    const prompt: TestPage = await browser.get(endSession);
    assert.ok(prompt.query("button[name=decision][value=logout]"));
    assert.ok(browser.cookies.get("tessera.session", host.issuer), "not signed out before confirming");
    const forged = await browser.submitForm(prompt, { button: "button[name=decision]", fields: { csrf: "nope" } });
    assert.equal(forged.status, 400);
    const done = await browser.submitForm(prompt, { button: "button[name=decision][value=logout]", stopAt: (u) => u.origin === RP });
    assert.ok(done.query("#signed-out"));
    assert.equal(done.query("#continue")!.getAttribute("href"), `${RP}/signed-out?state=q`);
    assert.equal(browser.cookies.get("tessera.session", host.issuer), undefined);
  });

  it("treats a hint for another user as no hint", async () => {
    const alice = new TestBrowser();
    const { idToken } = await signedIn(alice, ["d"]);
    const bob = new TestBrowser();
    const bobLogin = await bob.get(`${host.issuer}/login`);
    await bob.submitForm(bobLogin, { fields: { username: "bob", password: "bob-password" } });
    const endSession = new URL(`${host.issuer}/connect/endsession`);
    endSession.search = new URLSearchParams({ id_token_hint: idToken }).toString();
    const page = await bob.get(endSession);
    assert.ok(page.query("button[name=decision][value=logout]"), "bob is asked, not silently signed out by alice's token");
  });

  it("shows an error page for a forged hint or an unknown client", async () => {
    const browser = new TestBrowser();
    for (const params of [{ id_token_hint: "a.b.c" }, { client_id: "ghost" }]) {
      const url = new URL(`${host.issuer}/connect/endsession`);
      url.search = new URLSearchParams(params).toString();
      const page = await browser.get(url);
      assert.equal(page.status, 400);
      assert.ok(page.query("#error"));
    }
  });

  it("accepts an expired id_token_hint (fake clock) and ends the session without a prompt", async () => {
    let now = Date.now();
    const flow = await Flow.create(undefined, () => now);
    try {
      const { code, verifier } = await flow.signIn();
      const { id_token } = (await (await flow.redeem(code, verifier)).json()) as { id_token: string };
      now += 3600_000;
      flow.now = now;
      const url = new URL(String((await flow.metadata()).end_session_endpoint));
      url.search = new URLSearchParams({ id_token_hint: id_token }).toString();
      const page = await flow.browser.get(url);
      assert.ok(page.query("#signed-out"));
      assert.equal(flow.browser.cookies.get("__Host-tessera.session", flow.host.issuer), undefined);
    } finally {
      await flow.close();
    }
  });

  it("serves the check-session iframe framable by client origins only", async () => {
    const response = await fetch(`${host.issuer}/connect/checksession`);
    const csp = response.headers.get("content-security-policy")!;
    assert.match(csp, /frame-ancestors https:\/\/rp\.test/);
    assert.match(csp, /script-src 'nonce-/);
    assert.match(await response.text(), /postMessage/);
  });
});
