import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createMemoryStore, createProvider, sessionCookieName, type Provider } from "@tessera/server";
import { TestBrowser } from "@tessera/testing";
import { decodeJwt } from "jose";
import { REDIRECT, pkce } from "./support/fixtures.ts";

const ISSUER = "https://login.test/idp";

/**
 * An app that embeds the provider under /idp and brings its own login page at /my-login, calling the
 * sign-in API with amr, auth_time, idp and extra claims, and no user store.
 */
function embeddingApp(provider: Provider) {
  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname === "/my-login" && request.method === "GET") {
      const details = await provider.getInteraction(url.searchParams.get("returnUrl") ?? "");
      return new Response(
        `<form method="post" action="/my-login"><input name="returnUrl" value="${details?.returnUrl ?? ""}"><input name="hint" value="${details?.loginHint ?? ""}"><button type="submit">Go</button></form>`,
        { headers: { "content-type": "text/html" } },
      );
    }
    if (url.pathname === "/my-login" && request.method === "POST") {
      const form = new URLSearchParams(await request.text());
      const returnUrl = form.get("returnUrl") ?? "";
      if (!(await provider.getInteraction(returnUrl))) return new Response("bad returnUrl", { status: 400 });
      const { cookies } = await provider.signIn(request, {
        sub: "ext-7",
        name: "Grace Hopper",
        amr: ["hwk", "mfa"],
        auth_time: 1_700_000_000,
        idp: "corp-saml",
        claims: { email: "grace@example.com", department: "navy" },
      });
      const headers = new Headers({ location: returnUrl });
      for (const cookie of cookies) headers.append("set-cookie", cookie);
      return new Response(null, { status: 302, headers });
    }
    return provider.fetch(request);
  };
}

describe("custom login page through the library API", () => {
  let provider: Provider;
  let browser: TestBrowser;

  before(() => {
    provider = createProvider({
      issuer: ISSUER,
      store: createMemoryStore(),
      dataKey: randomBytes(32),
      clients: [{ client_id: "app", client_secret: "s3cret", redirect_uris: [REDIRECT], scope: "openid profile email" }],
      interaction: { loginUrl: "https://login.test/my-login" },
    });
    browser = new TestBrowser({ handlers: embeddingApp(provider) });
  });
  after(() => provider.close());

  it("serves the endpoints under the issuer's path", async () => {
    const response = await provider.fetch(new Request(`${ISSUER}/.well-known/openid-configuration`));
    const metadata = (await response.json()) as Record<string, string>;
    assert.equal(metadata.issuer, ISSUER);
    assert.equal(metadata.authorization_endpoint, `${ISSUER}/connect/authorize`);
    assert.equal((await provider.fetch(new Request("https://login.test/.well-known/openid-configuration"))).status, 404);
  });

  it("carries sub, name, amr, auth_time, idp and extra claims from the sign-in API into tokens", async () => {
    const { verifier, challenge } = pkce();
    const url = new URL(`${ISSUER}/connect/authorize`);
    url.search = new URLSearchParams({ client_id: "app", redirect_uri: REDIRECT, response_type: "code", scope: "openid profile email", code_challenge: challenge, code_challenge_method: "S256", nonce: "n-1", login_hint: "grace" }).toString();
    const stopAt = (u: URL) => u.origin === "https://rp.test";
    const loginPage = await browser.get(url, { stopAt });
    assert.equal(new URL(loginPage.url).pathname, "/my-login");
    assert.equal(loginPage.query("input[name=hint]")!.getAttribute("value"), "grace");
    const back = await browser.submitForm(loginPage, { stopAt });
    const code = new URL(back.location!).searchParams.get("code")!;

    // On https the session cookie is __Host- (Path=/, as the prefix requires), named for the issuer's path;
    // the session-id cookie keeps the issuer's path.
    assert.match(sessionCookieName(true, "/idp"), /^__Host-tessera\.session\.[0-9a-f]{8}$/);
    assert.equal(browser.cookies.get(sessionCookieName(true, "/idp"), `${ISSUER}/`)!.path, "/");
    assert.equal(browser.cookies.get("tessera.session_id", `${ISSUER}/`)!.path, "/idp");
    assert.equal(browser.cookies.get("tessera.session_id", "https://login.test/other"), undefined);

    const token = await provider.fetch(
      new Request(`${ISSUER}/connect/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("app:s3cret").toString("base64")}` },
        body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
      }),
    );
    assert.equal(token.status, 200);
    const tokens = (await token.json()) as { id_token: string; access_token: string };
    const idToken = decodeJwt(tokens.id_token);
    assert.equal(idToken.sub, "ext-7");
    assert.deepEqual(idToken.amr, ["hwk", "mfa"]);
    assert.equal(idToken.auth_time, 1_700_000_000);
    assert.equal(idToken.idp, "corp-saml");
    assert.equal(idToken.nonce, "n-1");

    const userinfo = await provider.fetch(new Request(`${ISSUER}/connect/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } }));
    // Without a user store, the claims given at sign-in are the user's claims, filtered by scope.
    assert.deepEqual(await userinfo.json(), { sub: "ext-7", name: "Grace Hopper", email: "grace@example.com" });
  });

  it("defaults amr to pwd, auth_time to now and idp to local, and validates the input", async () => {
    const { session } = await provider.signIn(new Request(`${ISSUER}/x`), { sub: "u1" });
    assert.deepEqual(session.amr, ["pwd"]);
    assert.equal(session.idp, "local");
    assert.ok(Math.abs(session.authTime - Date.now() / 1000) < 5);
    await assert.rejects(provider.signIn(new Request(`${ISSUER}/x`), { sub: "" }), TypeError);
    await assert.rejects(provider.signIn(new Request(`${ISSUER}/x`), { sub: "x", amr: "pwd" as never }), TypeError);
  });

  it("keeps the sid when the same user signs in again (with a new cookie), and starts a new one for another user", async () => {
    const first = await provider.signIn(new Request(`${ISSUER}/x`), { sub: "u1" });
    const cookie = first.cookies.map((c) => c.split(";")[0]).join("; ");
    const again = await provider.signIn(new Request(`${ISSUER}/x`, { headers: { cookie } }), { sub: "u1" });
    assert.equal(again.session.sid, first.session.sid);
    assert.notEqual(again.cookies[0], first.cookies[0]);
    const other = await provider.signIn(new Request(`${ISSUER}/x`, { headers: { cookie } }), { sub: "u2" });
    assert.notEqual(other.session.sid, first.session.sid);
  });

  it("clears both cookies on sign-out", async () => {
    const cookies = await provider.signOut(new Request(`${ISSUER}/x`));
    assert.equal(cookies.length, 2);
    for (const cookie of cookies) assert.match(cookie, /Max-Age=0/);
  });
});
