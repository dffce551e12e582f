import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { exportJWK, generateKeyPair } from "jose";
import { TestBrowser } from "@tessera/testing";
import { parseConfig } from "@tessera/host";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

type Json = Record<string, unknown>;

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/**
 * Stored clients (admin API, dynamic registration) follow the rules main added to client metadata
 * (JAR, FAPI 2.0, RFC 8252 redirect URIs, device flow) through the one validator, and the Client ID
 * Metadata Document lookup sits behind them.
 */
describe("19 stored clients with the JAR, FAPI 2.0, RFC 8252, CIMD and device flow rules", () => {
  let flow: Flow;
  let adminToken: string;
  let jwks: { keys: Json[] };

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
  const form = async (target: Flow, path: string, fields: Record<string, string>, headers: Record<string, string> = {}) => {
    const response = await target.host.fetch(
      new Request(`${target.host.issuer}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(fields).toString() }),
    );
    return { status: response.status, body: (await response.json()) as Json };
  };
  const json = async (target: Flow, method: string, path: string, body?: unknown, bearer?: string) => {
    const headers: Record<string, string> = {};
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await target.host.fetch(new Request(`${target.host.issuer}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Json };
  };
  const admin = (method: string, path: string, body?: unknown) => json(flow, method, `/admin/api${path}`, body, adminToken);
  const register = (body: unknown) => json(flow, "POST", "/connect/register", body);
  /** The error of a plain (unpushed, unsigned) authorization request: from the redirect or the error page. */
  const plainAuthorizeError = async (clientId: string, redirectUri: string) => {
    const { url } = await flow.authorizeUrl({ client_id: clientId, redirect_uri: redirectUri, scope: "openid" });
    const response = await flow.host.fetch(new Request(url, { redirect: "manual" }));
    if (response.status === 302 || response.status === 303) return new URL(response.headers.get("location")!).searchParams.get("error");
    assert.equal(response.status, 400);
    return /invalid_request_object|invalid_request/.exec(await response.text())?.[0] ?? null;
  };

  before(async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "es" }] };
    const config = baseConfig();
    config.admin = { role: "admin" };
    config.keys = { algorithms: ["RS256", "ES256"] };
    config.registration = { enabled: true, allowedScopes: ["openid", "profile"] };
    config.clientIdMetadataDocuments = { enabled: true };
    config.clients = [...(config.clients ?? []), { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" }];
    flow = await Flow.create(config);
    adminToken = String((await form(flow, "/connect/token", { grant_type: "client_credentials" }, { authorization: basic("admin-cli", "cli-secret") })).body.access_token);
  });
  after(() => flow.close());

  it("19 merge FAPI 2.0: a stored client may be fapi2; the profile's refusals name the field; its policy applies (PAR required)", async () => {
    const base = { security_profile: "fapi2", redirect_uris: ["https://rp.test/cb"], scope: "openid" };
    const secretClient = await admin("POST", "/clients", { ...base, token_endpoint_auth_method: "client_secret_basic" });
    assert.equal(secretClient.status, 400);
    assert.equal(secretClient.body.error, "invalid_client_metadata");
    assert.match(String(secretClient.body.error_description), /^token_endpoint_auth_method: FAPI 2\.0/);
    const rs256 = await admin("POST", "/clients", { ...base, token_endpoint_auth_method: "private_key_jwt", jwks, id_token_signed_response_alg: "RS256" });
    assert.equal(rs256.status, 400, "keys.algorithms starts with RS256 and the client names no FAPI algorithm");
    assert.match(String(rs256.body.error_description), /^id_token_signed_response_alg: FAPI 2\.0/);
    const httpRedirect = await admin("POST", "/clients", { ...base, redirect_uris: ["http://rp.test/cb"], token_endpoint_auth_method: "private_key_jwt", jwks, id_token_signed_response_alg: "ES256" });
    assert.equal(httpRedirect.status, 400);
    assert.equal(httpRedirect.body.error, "invalid_redirect_uri");
    assert.equal((await admin("POST", "/clients", { ...base, security_profile: "fapi1", token_endpoint_auth_method: "private_key_jwt", jwks })).status, 400);

    const created = await admin("POST", "/clients", { ...base, token_endpoint_auth_method: "private_key_jwt", jwks, id_token_signed_response_alg: "ES256" });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = String(created.body.client_id);
    assert.equal((await admin("GET", `/clients/${id}`)).body.security_profile, "fapi2");
    assert.equal(await plainAuthorizeError(id, "https://rp.test/cb"), "invalid_request", "fapi2 requires PAR");
  });

  it("19 merge JAR: a stored client's require_signed_request_object refuses plain requests; the JAR metadata rules hold", async () => {
    const created = await admin("POST", "/clients", { token_endpoint_auth_method: "private_key_jwt", jwks, require_signed_request_object: true, redirect_uris: [REDIRECT], scope: "openid" });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(await plainAuthorizeError(String(created.body.client_id), REDIRECT), "invalid_request_object");

    const hmac = await admin("POST", "/clients", { token_endpoint_auth_method: "private_key_jwt", jwks, request_object_signing_alg: "HS256", redirect_uris: [REDIRECT] });
    assert.equal(hmac.status, 400);
    assert.match(String(hmac.body.error_description), /^request_object_signing_alg: /);
    const noKeys = await admin("POST", "/clients", { require_signed_request_object: true, redirect_uris: [REDIRECT] });
    assert.equal(noKeys.status, 400);
    assert.match(String(noKeys.body.error_description), /^jwks: signed request objects/);
    const registered = await register({ token_endpoint_auth_method: "none", request_object_signing_alg: "ES256", redirect_uris: [REDIRECT] });
    assert.equal(registered.status, 400, "registration applies the same rule");
    assert.match(String(registered.body.error_description), /need jwks or jwks_uri/);
  });

  it("19 merge RFC 8252: the admin API and registration refuse the redirect URIs redirectUriProblem refuses, as invalid_redirect_uri", async () => {
    for (const [create, label] of [[(body: unknown) => admin("POST", "/clients", body), "admin"], [register, "registration"]] as const) {
      const privateUse = await create({ redirect_uris: ["com.example.app:/cb"], scope: "openid" });
      assert.equal(privateUse.status, 400, label);
      assert.equal(privateUse.body.error, "invalid_redirect_uri", label);
      assert.match(String(privateUse.body.error_description), /only for public/, label);
      const native = await create({ token_endpoint_auth_method: "none", redirect_uris: ["com.example.app:/cb", "http://127.0.0.1/cb"], scope: "openid" });
      assert.equal(native.status, 201, `${label}: ${JSON.stringify(native.body)}`);
      const noPeriod = await create({ token_endpoint_auth_method: "none", redirect_uris: ["myapp:/cb"], scope: "openid" });
      assert.equal(noPeriod.body.error, "invalid_redirect_uri", label);
    }
    const script = await admin("POST", "/clients", { token_endpoint_auth_method: "none", redirect_uris: ["javascript:alert(1)"] });
    assert.equal(script.body.error, "invalid_redirect_uri");
    assert.match(String(script.body.error_description), /^redirect_uris\.0: must not use the javascript scheme/);
    const logout = await admin("POST", "/clients", { token_endpoint_auth_method: "none", redirect_uris: ["com.example.app:/cb"], post_logout_redirect_uris: ["data:text/html,x"] });
    assert.equal(logout.status, 400);
    assert.match(String(logout.body.error_description), /^post_logout_redirect_uris\.0: must not use the data scheme/);
  });

  it("19 merge CIMD: while metadata documents are enabled, a stored client_id that is a document URL is refused; otherwise it is an ordinary id", async () => {
    const url = "https://rp.test/oauth/client.json";
    const refused = await admin("POST", "/clients", { client_id: url, redirect_uris: [REDIRECT] });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, "invalid_client_metadata");
    assert.match(String(refused.body.error_description), /Client ID Metadata Document/);
    assert.equal((await admin("POST", "/clients", { client_id: "rp.test-client", redirect_uris: [REDIRECT] })).status, 201);

    const config = baseConfig();
    config.admin = { role: "admin" };
    config.clients = [...(config.clients ?? []), { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" }];
    const off = await Flow.create(config);
    try {
      const token = String((await form(off, "/connect/token", { grant_type: "client_credentials" }, { authorization: basic("admin-cli", "cli-secret") })).body.access_token);
      const created = await json(off, "POST", "/admin/api/clients", { client_id: url, redirect_uris: [REDIRECT] }, token);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal((await json(off, "GET", `/admin/api/clients/${encodeURIComponent(url)}`, undefined, token)).body.client_id, url);
    } finally {
      await off.close();
    }
  });

  it("19 merge device flow: a stored client with the device_code grant starts a device authorization; an unknown grant type is refused", async () => {
    const created = await admin("POST", "/clients", { token_endpoint_auth_method: "none", grant_types: [DEVICE_GRANT], scope: "openid profile" });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const started = await form(flow, "/connect/deviceauthorization", { client_id: String(created.body.client_id), scope: "openid" });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(typeof started.body.device_code, "string");
    assert.equal(typeof started.body.user_code, "string");
    const unknown = await admin("POST", "/clients", { token_endpoint_auth_method: "none", grant_types: ["urn:example:made-up"] });
    assert.equal(unknown.status, 400);
    assert.match(String(unknown.body.error_description), /^grant_types: /);
    // The host lets registration allow the device_code grant too.
    assert.deepEqual(parseConfig({ issuer: "https://id.example", registration: { enabled: true, allowedGrantTypes: [DEVICE_GRANT] } }).registration?.allowedGrantTypes, [DEVICE_GRANT]);
  });

  it("19 merge admin pages: the client form offers security_profile, request_object_signing_alg and the device_code grant, and makes a fapi2 client", async () => {
    const issuer = flow.host.issuer;
    const alice = new TestBrowser({ handlers: { [issuer]: flow.host.fetch } });
    await alice.submitForm(await alice.get(`${issuer}/login`), { fields: { username: "alice", password: "alice" } });
    const form = await alice.get(`${issuer}/admin/clients/new`);
    assert.ok(form.query("select[name=security_profile] option[value=fapi2]"));
    assert.ok(form.query("select[name=request_object_signing_alg] option[value=PS256]"));
    assert.equal(form.query("select[name=request_object_signing_alg] option[value=HS256]"), null);
    assert.ok(form.query(`input[name=grant_types][value="${DEVICE_GRANT}"]`));
    const created = await alice.submitForm(form, {
      fields: {
        client_id: "fapi-from-the-form",
        security_profile: "fapi2",
        token_endpoint_auth_method: "private_key_jwt",
        jwks: JSON.stringify(jwks),
        id_token_signed_response_alg: "ES256",
        request_object_signing_alg: "ES256",
        require_pushed_authorization_requests: "true",
        redirect_uris: "https://rp.test/cb",
        scope: "openid",
      },
      button: "button[name=save]",
    });
    assert.equal(created.status, 201, created.body.slice(0, 300));
    const stored = await admin("GET", "/clients/fapi-from-the-form");
    assert.equal(stored.body.security_profile, "fapi2");
    assert.equal(stored.body.request_object_signing_alg, "ES256");
  });
});
