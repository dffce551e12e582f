import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestBrowser, createTestHost, type TestHost } from "@tessera/testing";
import * as oidc from "openid-client";
import { startWebClient } from "../samples/web-client/src/server.ts";
import { baseConfig } from "./support/fixtures.ts";

describe("code flow with openid-client over HTTP", () => {
  let host: TestHost;
  let rp: Awaited<ReturnType<typeof startWebClient>>;
  const rpOptions = { issuer: "", clientId: "rp", clientSecret: "rp-secret", port: 0, scope: "openid profile email" };

  before(async () => {
    rp = await startWebClient(rpOptions);
    const config = baseConfig();
    config.clients = [
      ...(config.clients ?? []),
      { client_id: "rp", client_secret: "rp-secret", redirect_uris: [`${rp.url}/signin-oidc`], scope: "openid profile email" },
      { client_id: "public", token_endpoint_auth_method: "none", redirect_uris: ["http://127.0.0.1/cb"], scope: "openid profile" },
    ];
    host = await createTestHost(config, { listen: true });
    rpOptions.issuer = host.issuer;
  });
  after(async () => {
    await rp.close();
    await host.close();
  });

  it("signs in through the sample app (openid-client) and shows the ID token and userinfo claims", async () => {
    const browser = new TestBrowser();
    const login = await browser.get(`${rp.url}/login`);
    assert.equal(new URL(login.url).origin, host.issuer);
    assert.ok(login.query("input[name=password]"));
    const home = await browser.submitForm(login, { fields: { username: "alice", password: "alice" } });
    assert.equal(home.url, `${rp.url}/`, home.body.slice(0, 800));
    assert.equal(home.text("#user"), "Signed in as Alice Smith");
    const claims = JSON.parse(home.text("#claims")) as Record<string, unknown>;
    assert.equal(claims.iss, host.issuer);
    assert.equal(claims.sub, "1");
    assert.deepEqual(JSON.parse(home.text("#userinfo")), { sub: "1", name: "Alice Smith", email: "alice@example.com" });
    // A second sign-in reuses the provider session: no login page.
    const again = await browser.get(`${rp.url}/login`);
    assert.equal(again.url, `${rp.url}/`);
  });

  it("works for a public client with openid-client's own PKCE, state and nonce checks", async () => {
    const config = await oidc.discovery(new URL(host.issuer), "public", undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    assert.equal(config.serverMetadata().authorization_response_iss_parameter_supported, true);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: "http://127.0.0.1/cb",
      scope: "openid profile",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    const browser = new TestBrowser();
    const page = await browser.get(url, { stopAt: (u) => u.href.startsWith("http://127.0.0.1/cb") });
    const back = await browser.submitForm(page, { fields: { username: "bob", password: "bob-password" }, stopAt: (u) => u.href.startsWith("http://127.0.0.1/cb") });
    const callback = new URL(back.location!);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    assert.equal(tokens.claims()!.sub, "2");
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, "2");
    assert.equal(userinfo.name, "Bob");
    // openid-client itself rejects a replay of the same callback: the provider refuses the code.
    await assert.rejects(oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }), (error: Error & { error?: string }) => error.error === "invalid_grant");
  });

  it("signs ID tokens with the algorithm a client registered", async () => {
    const es = await createTestHost(
      {
        keys: { algorithms: ["RS256", "ES256", "EdDSA", "PS256"] },
        users: baseConfig().users,
        clients: [{ client_id: "es", token_endpoint_auth_method: "none", redirect_uris: ["http://127.0.0.1/cb"], scope: "openid", id_token_signed_response_alg: "ES256" }],
      },
      { listen: true },
    );
    try {
      const config = await oidc.discovery(new URL(es.issuer), "es", { id_token_signed_response_alg: "ES256" }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      assert.deepEqual(config.serverMetadata().id_token_signing_alg_values_supported, ["RS256", "ES256", "EdDSA", "PS256"]);
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: "http://127.0.0.1/cb", scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
      const browser = new TestBrowser();
      const stopAt = (u: URL) => u.href.startsWith("http://127.0.0.1/cb");
      const back = await browser.submitForm(await browser.get(url, { stopAt }), { fields: { username: "alice", password: "alice" }, stopAt });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(back.location!), { pkceCodeVerifier: verifier, idTokenExpected: true });
      assert.equal(JSON.parse(Buffer.from(tokens.id_token!.split(".")[0]!, "base64url").toString()).alg, "ES256");
    } finally {
      await es.close();
    }
  });
});
