import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createTestHost } from "@tessera/testing";
import { chromiumPath, launchChromium } from "./support/chromium.ts";
import { Flow, baseConfig, pkce } from "./support/fixtures.ts";

const REGISTERED = ["http://127.0.0.1/callback", "http://[::1]:8080/cb?app=1", "http://localhost/cb", "https://127.0.0.1/secure", "https://rp.test/native"];

describe("review: RFC 8252 §7.3 loopback redirect URIs", () => {
  let flow: Flow;
  before(async () => {
    const config = baseConfig();
    config.clients = [...config.clients!, { client_id: "native", token_endpoint_auth_method: "none", redirect_uris: REGISTERED, scope: "openid profile" }];
    flow = await Flow.create(config);
  });
  after(() => flow.close());

  /** The authorize endpoint's first answer for `redirect_uri` (no browser: no login yet). */
  const authorize = async (redirectUri: string) => {
    const { url } = await flow.authorizeUrl({ client_id: "native", redirect_uri: redirectUri, scope: "openid profile" });
    return flow.host.fetch(new Request(url));
  };
  const accepted = async (redirectUri: string) => {
    const response = await authorize(redirectUri);
    if (response.status === 400) {
      assert.equal(response.headers.get("location"), null);
      assert.match(await response.text(), /redirect_uri/);
      return false;
    }
    assert.ok(response.status >= 300 && response.status < 400, `${redirectUri}: ${response.status}`);
    assert.ok(!response.headers.get("location")!.startsWith(redirectUri.split("?")[0]!), "not an error sent to the client");
    return true;
  };

  test("15.1 a loopback IP redirect URI registered without a port matches any port: full code flow, code redeemed with that URI", async () => {
    const redirectUri = "http://127.0.0.1:51234/callback";
    const request = await flow.authorizeUrl({ client_id: "native", redirect_uri: redirectUri, scope: "openid profile" });
    const stopAt = (u: URL) => u.hostname === "127.0.0.1";
    let page = await flow.browser.get(request.url, { stopAt });
    page = await flow.browser.submitForm(page, { fields: { username: "alice", password: "alice" }, stopAt });
    assert.ok(page.location?.startsWith(`${redirectUri}?`), `redirected to the requested port: ${page.location}`);
    const code = new URL(page.location!).searchParams.get("code")!;
    const form = { grant_type: "authorization_code", code, client_id: "native", code_verifier: request.verifier };
    const otherPort = await flow.token({ ...form, redirect_uri: "http://127.0.0.1:51235/callback" });
    assert.equal(otherPort.status, 400, "the token request must repeat the authorization request's redirect_uri exactly (RFC 6749 §4.1.3)");
    assert.equal(((await otherPort.json()) as { error: string }).error, "invalid_grant");
    const redeemed = await flow.token({ ...form, redirect_uri: redirectUri });
    assert.equal(redeemed.status, 200);
    assert.ok(((await redeemed.json()) as { id_token?: string }).id_token);
  });

  test("15.2 loopback matches ignore only the port: IPv4 and IPv6, with or without a registered port, query kept", async () => {
    for (const uri of ["http://127.0.0.1/callback", "http://127.0.0.1:1/callback", "http://127.0.0.1:65535/callback", "http://[::1]:8080/cb?app=1", "http://[::1]:9999/cb?app=1", "http://[::1]/cb?app=1", "https://127.0.0.1/secure", "http://localhost/cb", "https://rp.test/native"]) {
      assert.equal(await accepted(uri), true, uri);
    }
  });

  test("15.3 nothing else is relaxed: localhost, https, other hosts, other paths or queries, userinfo, odd ports", async () => {
    for (const uri of [
      "http://localhost:5555/cb",
      "https://127.0.0.1:8443/secure",
      "https://rp.test:444/native",
      "http://127.0.0.2:5555/callback",
      "http://127.0.0.1:5555/callback/extra",
      "http://127.0.0.1:5555/Callback",
      "http://127.0.0.1:5555/callback?x=1",
      "http://127.0.0.1:5555/./callback",
      "http://127.0.0.1:5555/%63allback",
      "http://[::1]:9999/cb",
      "http://[::1]:9999/cb?app=2",
      "http://[0:0:0:0:0:0:0:1]:9999/cb?app=1",
      "http://user@127.0.0.1:5555/callback",
      "http://127.0.0.1:0/callback",
      "http://127.0.0.1:65536/callback",
      "http://127.0.0.1:05555/callback",
      "http://127.0.0.1:/callback",
      "HTTP://127.0.0.1:5555/callback",
      "http://127.0.0.1:5555/callback#x",
    ]) {
      assert.equal(await accepted(uri), false, uri);
    }
  });
});

describe("review: the any-port loopback match needs PKCE (RFC 8252 §8.1)", () => {
  let flow: Flow;
  before(async () => {
    const config = baseConfig();
    config.clients = [
      ...config.clients!,
      { client_id: "legacy-native", client_secret: "legacy-secret", require_pkce: false, redirect_uris: ["http://127.0.0.1/callback", "http://[::1]:7000/cb"], scope: "openid profile" },
    ];
    flow = await Flow.create(config);
  });
  after(() => flow.close());

  /** True when the authorize endpoint takes `redirectUri` (a login page follows), false for the error page. */
  const accepted = async (redirectUri: string, usePkce: boolean) => {
    const { url } = await flow.authorizeUrl({ client_id: "legacy-native", redirect_uri: redirectUri, scope: "openid profile", ...(usePkce ? {} : { code_challenge: undefined, code_challenge_method: undefined }) });
    const response = await flow.host.fetch(new Request(url));
    if (response.status === 400) {
      assert.equal(response.headers.get("location"), null, redirectUri);
      assert.match(await response.text(), /redirect_uri/);
      return false;
    }
    assert.ok(response.status >= 300 && response.status < 400, `${redirectUri}: ${response.status}`);
    assert.ok(!response.headers.get("location")!.startsWith(redirectUri.split("?")[0]!), "not an error sent to the client");
    return true;
  };

  test("15.6 without a code_challenge a loopback redirect URI must match exactly; with PKCE any port", async () => {
    for (const uri of ["http://127.0.0.1:51234/callback", "http://127.0.0.1:1/callback", "http://[::1]:7001/cb", "http://[::1]/cb"]) {
      assert.equal(await accepted(uri, false), false, `no PKCE: ${uri}`);
      assert.equal(await accepted(uri, true), true, `PKCE: ${uri}`);
    }
    for (const uri of ["http://127.0.0.1/callback", "http://[::1]:7000/cb"]) {
      assert.equal(await accepted(uri, false), true, `no PKCE, exact: ${uri}`);
    }
  });
});

describe("review: loopback redirects and the pages' form-action", () => {
  test("15.4 the login page's CSP lets the login form's redirect reach a loopback redirect URI on any port", async () => {
    const config = baseConfig();
    config.clients = [...config.clients!, { client_id: "native", token_endpoint_auth_method: "none", redirect_uris: REGISTERED, scope: "openid profile" }];
    const flow = await Flow.create(config);
    try {
      const { url } = await flow.authorizeUrl({ client_id: "native", redirect_uri: "http://127.0.0.1:40001/callback", scope: "openid profile" });
      const page = await flow.browser.get(url, { stopAt: (u) => u.hostname === "127.0.0.1" });
      assert.ok(page.query("input[name=password]"), "the login page");
      const login = await flow.host.fetch(new Request(page.url));
      const formAction = / form-action ([^;]+);/.exec(login.headers.get("content-security-policy") ?? "")?.[1]?.split(" ") ?? [];
      assert.ok(formAction.includes("http://127.0.0.1:*"), formAction.join(" "));
      assert.ok(formAction.includes("http://[::1]:*"), formAction.join(" "));
      assert.ok(!formAction.includes("http://localhost:*") && !formAction.includes("https://127.0.0.1:*"), "only loopback IPs over http");
    } finally {
      await flow.close();
    }
  });
});

describe("review: form-action and the redirect-URI matcher agree on what is a loopback redirect", () => {
  test("15.7 a URI the matcher does not treat as loopback (another spelling of ::1) gets no any-port form target", async () => {
    const config = baseConfig();
    config.clients = [...config.clients!, { client_id: "native", token_endpoint_auth_method: "none", redirect_uris: ["http://[0:0:0:0:0:0:0:1]:8080/cb", "http://127.0.0.1:9000/cb"], scope: "openid profile" }];
    const flow = await Flow.create(config);
    try {
      // The matcher: the non-canonical spelling matches only itself; the canonical loopback IP any port.
      const status = async (redirectUri: string) => (await flow.host.fetch(new Request((await flow.authorizeUrl({ client_id: "native", redirect_uri: redirectUri, scope: "openid profile" })).url))).status;
      assert.equal(await status("http://[0:0:0:0:0:0:0:1]:8081/cb"), 400);
      assert.equal(await status("http://[::1]:8081/cb"), 400);
      assert.notEqual(await status("http://127.0.0.1:9001/cb"), 400);
      const { url } = await flow.authorizeUrl({ client_id: "native", redirect_uri: "http://127.0.0.1:9001/cb", scope: "openid profile" });
      const page = await flow.browser.get(url, { stopAt: (u) => u.hostname === "127.0.0.1" });
      const login = await flow.host.fetch(new Request(page.url));
      const formAction = / form-action ([^;]+);/.exec(login.headers.get("content-security-policy") ?? "")?.[1]?.split(" ") ?? [];
      assert.ok(formAction.includes("http://127.0.0.1:*"), formAction.join(" "));
      assert.ok(!formAction.includes("http://[::1]:*"), `the form target follows the matcher: ${formAction.join(" ")}`);
    } finally {
      await flow.close();
    }
  });
});

const executable = chromiumPath();

describe("review: a native app's loopback redirect in a real browser", { skip: executable ? false : "Chromium is not installed (set CI=true to make this a failure)" }, () => {
  test("15.5 Chromium signs in and lands on the app's ephemeral loopback port", async () => {
    // The "native app": a one-shot listener on a port the OS picks, as RFC 8252 §7.3 describes.
    const app = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<p id="got">${new URL(req.url!, "http://127.0.0.1").searchParams.get("code") ? "code" : "none"}</p>`);
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const redirectUri = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`;
    const config = baseConfig();
    config.clients = [...config.clients!, { client_id: "native", token_endpoint_auth_method: "none", redirect_uris: ["http://127.0.0.1/callback"], scope: "openid profile" }];
    const host = await createTestHost(config, { listen: true });
    const browser = await launchChromium(executable!);
    try {
      const page = await browser.context.newPage();
      const url = new URL(`${host.issuer}/connect/authorize`);
      for (const [k, v] of Object.entries({ client_id: "native", redirect_uri: redirectUri, response_type: "code", scope: "openid profile", state: "s", code_challenge: pkce().challenge, code_challenge_method: "S256" })) url.searchParams.set(k, v);
      await page.goto(url.href);
      await page.fill("input[name=username]", "alice");
      await page.fill("input[name=password]", "alice");
      await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 15_000 }), page.click("button[type=submit]")]);
      assert.equal((await page.textContent("#got"))?.trim(), "code");
    } finally {
      await browser.close();
      await host.close();
      app.close();
    }
  });
});
