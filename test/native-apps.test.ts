import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { parseConfig, ConfigError } from "@tessera/host";
import { createMemoryStore, createProvider, redirectUriProblem, type ClientMetadata } from "@tessera/server";
import { TestBrowser } from "@tessera/testing";
import { Flow, baseConfig } from "./support/fixtures.ts";

const APP = "com.example.app:/oauth2redirect";
const CLAIMED = "https://app.example.com/native/callback";

const PUBLIC = { publicClient: true };
const CONFIDENTIAL = { publicClient: false };

describe("17 native apps (RFC 8252): redirect URI registration", () => {
  test("17 native: a public client registers private-use (reverse-DNS), claimed https and loopback redirect URIs", () => {
    for (const uri of [APP, "com.example.app:/cb?x=1", "com.example.app://callback", "org.example.my-app+v2:/cb", CLAIMED, "http://127.0.0.1/callback", "http://[::1]/cb", "http://localhost/cb"]) {
      assert.equal(redirectUriProblem(uri, PUBLIC), undefined, uri);
    }
  });

  test("17 native: dangerous schemes are refused for every client", () => {
    for (const uri of ["javascript:alert(1)", "JavaScript://x.y/%0aalert(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/passwd", "vbscript:msgbox(1)", "blob:https://rp.test/1", "about:blank"]) {
      for (const client of [PUBLIC, CONFIDENTIAL]) assert.match(redirectUriProblem(uri, client) ?? "", /must not use the \w+ scheme/, uri);
    }
  });

  test("17 native: a private-use scheme without a period is refused (RFC 8252 §8.4), and private-use schemes are only for public clients", () => {
    assert.match(redirectUriProblem("myapp:/callback", PUBLIC)!, /reverse domain name/);
    assert.match(redirectUriProblem("myapp://callback", PUBLIC)!, /reverse domain name/);
    assert.match(redirectUriProblem(APP, CONFIDENTIAL)!, /only for public/);
    assert.equal(redirectUriProblem(CLAIMED, CONFIDENTIAL), undefined);
  });

  test("17 native: fragments, relative URIs, spaces and control characters are refused", () => {
    for (const uri of [`${APP}#x`, "com.example.app:/cb#", "/callback", "callback", "", " com.example.app:/cb", "com.example.app:/cb ", "com.example.app:/c\tb", "java\nscript:alert(1)", "\u0001javascript:alert(1)"]) {
      assert.ok(redirectUriProblem(uri, PUBLIC), JSON.stringify(uri));
    }
  });

  /** Creates (and closes) a provider with these clients; throws what createProvider throws. */
  const provider = async (clients: ClientMetadata[]) => {
    await createProvider({ issuer: "https://native.test", store: createMemoryStore(), dataKey: randomBytes(32), clients }).close();
  };

  test("17 native: createProvider's client list refuses what registration refuses (redirect and post-logout URIs)", async () => {
    await assert.doesNotReject(provider([{ client_id: "n", token_endpoint_auth_method: "none", redirect_uris: [APP], post_logout_redirect_uris: ["com.example.app:/signed-out"] }]));
    await assert.rejects(provider([{ client_id: "n", token_endpoint_auth_method: "none", redirect_uris: ["javascript:alert(1)"] }]), /client n: redirect_uris "javascript:alert\(1\)" must not use the javascript scheme/);
    await assert.rejects(provider([{ client_id: "n", token_endpoint_auth_method: "none", redirect_uris: [APP], post_logout_redirect_uris: ["myapp:/bye"] }]), /post_logout_redirect_uris/);
    await assert.rejects(provider([{ client_id: "c", client_secret: "s", redirect_uris: [APP] }]), /only for public/);
  });

  test("17 native: the config file names every bad redirect URI by its JSON path", () => {
    const config = (clients: unknown[]) => ({ issuer: "http://localhost:5000", clients });
    assert.doesNotThrow(() => parseConfig(config([{ client_id: "n", token_endpoint_auth_method: "none", redirect_uris: [APP, CLAIMED, "http://127.0.0.1/callback"] }])));
    let error: unknown;
    try {
      parseConfig(config([
        { client_id: "n", token_endpoint_auth_method: "none", redirect_uris: [APP, "javascript:alert(1)", "myapp:/cb"], post_logout_redirect_uris: ["data:text/html,x"] },
        { client_id: "c", client_secret: "c-secret", redirect_uris: [APP] },
      ]));
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ConfigError);
    const problems = Object.fromEntries(error.problems.map((p) => [p.path, p.message]));
    assert.match(problems["clients[0].redirect_uris[1]"]!, /javascript/);
    assert.match(problems["clients[0].redirect_uris[2]"]!, /reverse domain name/);
    assert.match(problems["clients[0].post_logout_redirect_uris[0]"]!, /data/);
    assert.match(problems["clients[1].redirect_uris[0]"]!, /only for public/);
    assert.equal(problems["clients[0].redirect_uris[0]"], undefined);
  });
});

describe("17 native apps (RFC 8252): authorization with app redirect URIs", () => {
  let flow: Flow;
  before(async () => {
    const config = baseConfig();
    config.clients = [...config.clients!, { client_id: "app", token_endpoint_auth_method: "none", redirect_uris: [APP, CLAIMED, "http://localhost/cb"], scope: "openid profile" }];
    flow = await Flow.create(config);
  });
  after(() => flow.close());

  /** True when authorize takes the redirect URI (a login page follows), false for the error page (never a redirect). */
  const accepted = async (redirectUri: string) => {
    const { url } = await flow.authorizeUrl({ client_id: "app", redirect_uri: redirectUri, scope: "openid profile" });
    const response = await flow.host.fetch(new Request(url));
    if (response.status === 400) {
      assert.equal(response.headers.get("location"), null, redirectUri);
      assert.match(await response.text(), /redirect_uri/);
      return false;
    }
    assert.ok(response.status >= 300 && response.status < 400, `${redirectUri}: ${response.status}`);
    return true;
  };

  test("17 native: a private-use redirect URI receives the code in the Location header (state, iss), and the code redeems", async () => {
    const request = await flow.authorizeUrl({ client_id: "app", redirect_uri: APP, scope: "openid profile" });
    const stopAt = (u: URL) => u.protocol === "com.example.app:";
    let page = await flow.browser.get(request.url, { stopAt });
    page = await flow.browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    const location = page.headers.get("location")!;
    assert.ok(location.startsWith(`${APP}?`), location);
    const params = new URL(location).searchParams;
    assert.equal(params.get("state"), request.state);
    assert.equal(params.get("iss"), flow.host.issuer);
    const redeemed = await flow.token({ grant_type: "authorization_code", code: params.get("code")!, client_id: "app", redirect_uri: APP, code_verifier: request.verifier });
    assert.equal(redeemed.status, 200);
    assert.ok(((await redeemed.json()) as { id_token?: string }).id_token);
  });

  test("17 native: the login page's CSP form-action lets the form's redirect reach the app's scheme", async () => {
    const { url } = await flow.authorizeUrl({ client_id: "app", redirect_uri: APP, scope: "openid profile" });
    const browser = new TestBrowser({ handlers: { [flow.host.issuer]: flow.host.fetch } });
    const login = await browser.get(url, { stopAt: (u) => u.protocol === "com.example.app:" });
    assert.ok(login.query("input[name=password]"), "the login page");
    assert.match(login.headers.get("content-security-policy")!, /form-action [^;]*com\.example\.app:/);
  });

  test("17 native: private-use and claimed https redirect URIs match exactly (path, query, case, port, trailing slash)", async () => {
    assert.equal(await accepted(APP), true);
    assert.equal(await accepted(CLAIMED), true);
    for (const uri of [
      `${APP}/`,
      "com.example.app:/OAuth2Redirect",
      "COM.EXAMPLE.APP:/oauth2redirect",
      "com.example.app://oauth2redirect",
      "com.example.app:oauth2redirect",
      `${APP}?x=1`,
      `${APP}#x`,
      "com.example.evil:/oauth2redirect",
      "https://app.example.com/native/callback/",
      "https://app.example.com/Native/callback",
      "https://APP.example.com/native/callback",
      "https://app.example.com:443/native/callback",
      "https://app.example.com:8443/native/callback",
      "https://app.example.com/native/callback?x=1",
      "http://app.example.com/native/callback",
    ]) {
      assert.equal(await accepted(uri), false, uri);
    }
  });

  test("17 native: a localhost redirect URI matches exactly, never on another port (RFC 8252 §8.3: loopback IP literals get the any-port match)", async () => {
    assert.equal(await accepted("http://localhost/cb"), true);
    assert.equal(await accepted("http://localhost:50123/cb"), false);
  });
});
