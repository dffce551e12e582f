import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestHost, type TestHost } from "@tessera/testing";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oidc from "openid-client";
import { baseConfig } from "./support/fixtures.ts";
import { CALLBACK, codeFlow, discover, errorOf } from "./support/oidc.ts";

function config() {
  const c = baseConfig();
  c.apiScopes = [{ name: "api1.read" }, { name: "api1.write" }, { name: "api2" }];
  c.apiResources = [
    { name: "urn:api1", scopes: ["api1.read", "api1.write"], secret: "api1-secret" },
    { name: "https://api2.test", scopes: ["api2"], secret: "api2-secret" },
  ];
  c.clients = [
    { client_id: "worker", client_secret: "worker-secret", grant_types: ["client_credentials"], scope: "api1.read api1.write api2" },
    { client_id: "ref-worker", client_secret: "ref-secret", grant_types: ["client_credentials"], scope: "api1.read", access_token_format: "reference", token_endpoint_auth_method: "client_secret_post" },
    { client_id: "app", client_secret: "app-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access api1.read" },
    { client_id: "ref-app", client_secret: "ref-app-secret", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access api1.read", access_token_format: "reference" },
    { client_id: "asks", client_secret: "asks-secret", client_name: "Asking App", redirect_uris: [CALLBACK], scope: "openid profile", require_consent: true },
    { client_id: "spa", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "client_credentials"], scope: "openid api1.read", token_endpoint_auth_method: "none" },
  ];
  return c;
}

describe("client credentials (openid-client)", () => {
  let host: TestHost;
  let worker: oidc.Configuration;
  before(async () => {
    host = await createTestHost(config(), { listen: true });
    worker = await discover(host, "worker", oidc.ClientSecretBasic("worker-secret"));
  });
  after(() => host.close());

  it("issues a JWT for all allowed API scopes, with aud from their resources", async () => {
    const tokens = await oidc.clientCredentialsGrant(worker);
    assert.equal(tokens.scope, "api1.read api1.write api2");
    assert.equal(tokens.refresh_token, undefined);
    const jwks = createRemoteJWKSet(new URL(worker.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: host.issuer, typ: "at+jwt" });
    assert.deepEqual(payload.aud, ["urn:api1", "https://api2.test"]);
    assert.equal(payload.sub, "worker");
    assert.equal(payload.client_id, "worker");
  });

  it("narrows to requested scopes and resources (RFC 8707)", async () => {
    const narrow = await oidc.clientCredentialsGrant(worker, { scope: "api1.read" });
    assert.equal(narrow.scope, "api1.read");
    const byResource = await oidc.clientCredentialsGrant(worker, { resource: "https://api2.test" });
    assert.equal(byResource.scope, "api2");
    const { payload } = await jwtVerify(byResource.access_token, createRemoteJWKSet(new URL(worker.serverMetadata().jwks_uri!)));
    assert.equal(payload.aud, "https://api2.test");
    const params = new URLSearchParams([["resource", "urn:api1"], ["resource", "https://api2.test"]]);
    const both = await oidc.clientCredentialsGrant(worker, params);
    assert.equal(both.scope, "api1.read api1.write api2");
  });

  it("refuses scopes and resources it may not have", async () => {
    assert.equal(await errorOf(oidc.clientCredentialsGrant(worker, { scope: "openid" })), "invalid_scope");
    assert.equal(await errorOf(oidc.clientCredentialsGrant(worker, { scope: "api9" })), "invalid_scope");
    assert.equal(await errorOf(oidc.clientCredentialsGrant(worker, { resource: "https://unknown.test" })), "invalid_target");
    assert.equal(await errorOf(oidc.clientCredentialsGrant(worker, { resource: "not a uri" })), "invalid_target");
    assert.equal(await errorOf(oidc.clientCredentialsGrant(worker, { resource: "https://api2.test", scope: "api1.read" })), "invalid_target");
    assert.equal(await errorOf(oidc.clientCredentialsGrant(worker, { resource: "urn:api1", scope: "api1.read api2" })), "invalid_scope");
    const app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
    assert.equal(await errorOf(oidc.clientCredentialsGrant(app)), "unauthorized_client");
    const spa = await discover(host, "spa");
    assert.equal(await errorOf(oidc.clientCredentialsGrant(spa)), "unauthorized_client");
  });

  it("authenticates with client_secret_post and issues reference tokens", async () => {
    const ref = await discover(host, "ref-worker", oidc.ClientSecretPost("ref-secret"));
    const tokens = await oidc.clientCredentialsGrant(ref);
    assert.doesNotMatch(tokens.access_token, /\./, "a reference token is opaque");
    const api = await discover(host, "urn:api1", oidc.ClientSecretBasic("api1-secret"));
    const info = await oidc.tokenIntrospection(api, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.client_id, "ref-worker");
    assert.equal(info.scope, "api1.read");
    assert.equal(info.sub, "ref-worker");
  });

  it("refuses bad client credentials with 401 (and WWW-Authenticate for Basic)", async () => {
    const wrong = await discover(host, "worker", oidc.ClientSecretBasic("nope"));
    assert.equal(await errorOf(oidc.clientCredentialsGrant(wrong)), "invalid_client");
    const response = await fetch(worker.serverMetadata().token_endpoint!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:nope").toString("base64")}` },
      body: "grant_type=client_credentials",
    });
    assert.equal(response.status, 401);
    assert.match(response.headers.get("www-authenticate")!, /^Basic/);
    const missing = await fetch(worker.serverMetadata().token_endpoint!, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials" });
    assert.equal(missing.status, 401);
    const unknownGrant = await fetch(worker.serverMetadata().token_endpoint!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from("worker:worker-secret").toString("base64")}` },
      body: "grant_type=urn:example:nope",
    });
    assert.equal(unknownGrant.status, 400);
    assert.equal(((await unknownGrant.json()) as { error: string }).error, "unsupported_grant_type");
  });
});

describe("introspection and revocation (openid-client)", () => {
  let host: TestHost;
  let app: oidc.Configuration;
  let refApp: oidc.Configuration;
  let api1: oidc.Configuration;
  let api2: oidc.Configuration;
  before(async () => {
    host = await createTestHost(config(), { listen: true });
    app = await discover(host, "app", oidc.ClientSecretBasic("app-secret"));
    refApp = await discover(host, "ref-app", oidc.ClientSecretBasic("ref-app-secret"));
    api1 = await discover(host, "urn:api1", oidc.ClientSecretBasic("api1-secret"));
    api2 = await discover(host, "https://api2.test", oidc.ClientSecretPost("api2-secret"));
  });
  after(() => host.close());

  it("advertises both endpoints", () => {
    assert.ok(app.serverMetadata().introspection_endpoint);
    assert.ok(app.serverMetadata().revocation_endpoint);
  });

  it("introspects user access tokens for their API and for their client, and nobody else", async () => {
    const tokens = await codeFlow(app, { scope: "openid offline_access api1.read" });
    const forApi = await oidc.tokenIntrospection(api1, tokens.access_token);
    assert.equal(forApi.active, true);
    assert.equal(forApi.sub, "1");
    assert.equal(forApi.client_id, "app");
    assert.equal(forApi.token_type, "Bearer");
    assert.equal(forApi.scope, "openid offline_access api1.read");
    assert.equal((await oidc.tokenIntrospection(app, tokens.access_token)).active, true);
    assert.equal((await oidc.tokenIntrospection(api2, tokens.access_token)).active, false, "another API");
    const worker = await discover(host, "worker", oidc.ClientSecretBasic("worker-secret"));
    assert.equal((await oidc.tokenIntrospection(worker, tokens.access_token)).active, false, "another client");
    assert.equal((await oidc.tokenIntrospection(api1, "garbage")).active, false);
    // Refresh tokens: the client sees its own; APIs never see refresh tokens.
    const rt = await oidc.tokenIntrospection(app, tokens.refresh_token!, { token_type_hint: "refresh_token" });
    assert.equal(rt.active, true);
    assert.equal(rt.token_type, "refresh_token");
    assert.equal((await oidc.tokenIntrospection(api1, tokens.refresh_token!)).active, false);
  });

  it("refuses unauthenticated or wrongly authenticated introspection", async () => {
    const wrong = await discover(host, "urn:api1", oidc.ClientSecretBasic("nope"));
    assert.equal(await errorOf(oidc.tokenIntrospection(wrong, "x")), "invalid_client");
    const response = await fetch(app.serverMetadata().introspection_endpoint!, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "token=x" });
    assert.equal(response.status, 401);
  });

  it("revokes a refresh token with its whole grant, seen by introspection, refresh and userinfo", async () => {
    const tokens = await codeFlow(app, { scope: "openid offline_access api1.read" });
    await oidc.tokenRevocation(app, tokens.refresh_token!);
    assert.equal((await oidc.tokenIntrospection(app, tokens.refresh_token!)).active, false);
    assert.equal((await oidc.tokenIntrospection(api1, tokens.access_token)).active, false);
    assert.equal(await errorOf(oidc.refreshTokenGrant(app, tokens.refresh_token!)), "invalid_grant");
    assert.ok(await errorOf(oidc.fetchUserInfo(app, tokens.access_token, "1")));
  });

  it("revokes one access token (JWT and reference), leaving the refresh token", async () => {
    for (const client of [app, refApp]) {
      const tokens = await codeFlow(client, { scope: "openid offline_access api1.read" });
      assert.equal((await oidc.tokenIntrospection(api1, tokens.access_token)).active, true);
      await oidc.tokenRevocation(client, tokens.access_token, { token_type_hint: "access_token" });
      assert.equal((await oidc.tokenIntrospection(api1, tokens.access_token)).active, false);
      assert.ok((await oidc.refreshTokenGrant(client, tokens.refresh_token!)).access_token);
    }
  });

  it("answers 200 for unknown and foreign tokens without revoking them", async () => {
    const tokens = await codeFlow(app, { scope: "openid offline_access api1.read" });
    await oidc.tokenRevocation(refApp, tokens.refresh_token!);
    await oidc.tokenRevocation(refApp, tokens.access_token);
    await oidc.tokenRevocation(refApp, "unknown-token");
    assert.equal((await oidc.tokenIntrospection(app, tokens.refresh_token!)).active, true);
    assert.equal((await oidc.tokenIntrospection(api1, tokens.access_token)).active, true);
  });

  it("says unsupported_token_type for self-contained client-credentials JWTs", async () => {
    const worker = await discover(host, "worker", oidc.ClientSecretBasic("worker-secret"));
    const { access_token } = await oidc.clientCredentialsGrant(worker);
    assert.equal(await errorOf(oidc.tokenRevocation(worker, access_token)), "unsupported_token_type");
  });

  it("serves userinfo for reference tokens", async () => {
    const tokens = await codeFlow(refApp, { scope: "openid profile api1.read" });
    const info = await oidc.fetchUserInfo(refApp, tokens.access_token, "1");
    assert.equal(info.name, "Alice Smith");
  });
});

describe("consent (openid-client)", () => {
  it("gets tokens after allow, and access_denied after deny", async () => {
    const host = await createTestHost(config(), { listen: true });
    try {
      const asks = await discover(host, "asks", oidc.ClientSecretBasic("asks-secret"));
      assert.equal(await errorOf(codeFlow(asks, { scope: "openid profile", consent: "deny" })), "access_denied");
      const tokens = await codeFlow(asks, { scope: "openid profile", consent: "allow" });
      assert.equal(tokens.claims()!.sub, "1");
    } finally {
      await host.close();
    }
  });
});
