import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TesseraEvent } from "@tessera/server";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

type Json = Record<string, unknown>;

async function register(flow: Flow, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const endpoint = String((await flow.metadata()).registration_endpoint);
  const response = await flow.host.fetch(new Request(endpoint, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) }));
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Json, headers: response.headers };
}

async function manage(flow: Flow, uri: string, method: string, token: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await flow.host.fetch(new Request(uri, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Json, headers: response.headers };
}

describe("19 dynamic client registration (RFC 7591) and management (RFC 7592)", () => {
  it("19 off by default: no registration_endpoint, no route", async () => {
    const flow = await Flow.create(baseConfig());
    try {
      assert.equal((await flow.metadata()).registration_endpoint, undefined);
      const response = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/register`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
      assert.equal(response.status, 404);
    } finally {
      await flow.close();
    }
  });

  describe("19 open registration", () => {
    let flow: Flow;
    const events: TesseraEvent[] = [];
    before(async () => {
      flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, allowedScopes: ["openid", "profile", "offline_access"] } }, undefined, { events: (e) => events.push(e) });
    });
    after(() => flow.close());

    it("19 registers a confidential client with RFC 7591 defaults, which signs a user in", async () => {
      assert.equal((await flow.metadata()).registration_endpoint, `${flow.host.issuer}/connect/register`);
      const registered = await register(flow, { client_name: "Self-registered", redirect_uris: [REDIRECT], scope: "openid profile", made_up_field: "ignored" });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      assert.equal(registered.headers.get("cache-control"), "no-store");
      const body = registered.body;
      assert.equal(typeof body.client_id, "string");
      assert.match(String(body.client_secret), /^[A-Za-z0-9_-]{43}$/);
      assert.equal(body.client_secret_expires_at, 0);
      assert.equal(typeof body.client_id_issued_at, "number");
      assert.equal(body.token_endpoint_auth_method, "client_secret_basic");
      assert.deepEqual(body.grant_types, ["authorization_code"]);
      assert.deepEqual(body.response_types, ["code"]);
      assert.equal(body.registration_client_uri, `${flow.host.issuer}/connect/register/${String(body.client_id)}`);
      assert.equal(typeof body.registration_access_token, "string");
      assert.equal(body.made_up_field, undefined, "unknown metadata is ignored (RFC 7591 §2)");
      assert.equal(body.source, undefined);

      // A registered client is unverified: the user is asked (issue 19 review, F1).
      const request = await flow.authorizeUrl({ client_id: String(body.client_id), scope: "openid profile" });
      let page = await flow.go(request.url);
      if (page.query("input[name=password]")) page = await flow.login(page);
      assert.ok(page.query("button[name=decision][value=allow]"), "consent is asked");
      page = await flow.browser.submitForm(page, { button: "button[name=decision][value=allow]", stopAt: (u) => u.origin === new URL(REDIRECT).origin });
      const signIn = { code: Flow.response(page).get("code")!, verifier: request.verifier };
      const tokens = (await (await flow.redeem(signIn.code, signIn.verifier, { id: String(body.client_id), secret: String(body.client_secret) })).json()) as Json;
      assert.ok(tokens.id_token, JSON.stringify(tokens));
      assert.ok(events.some((e) => e.type === "client.created" && e.via === "registration" && e.clientId === body.client_id));
    });

    it("19 a public native client: no secret; loopback and private-use redirect URIs (RFC 8252)", async () => {
      const registered = await register(flow, { token_endpoint_auth_method: "none", redirect_uris: ["http://127.0.0.1/callback", "com.example.app:/oauth2redirect"] });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      assert.equal(registered.body.client_secret, undefined);
      assert.equal(registered.body.client_secret_expires_at, undefined);
      assert.ok(registered.body.registration_access_token);
    });

    it("19 RFC 7592: read, update (token rotated), delete with the registration access token", async () => {
      const registered = await register(flow, { client_name: "Managed", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid offline_access" });
      const uri = String(registered.body.registration_client_uri);
      const token = String(registered.body.registration_access_token);
      const id = String(registered.body.client_id);

      const read = await manage(flow, uri, "GET", token);
      assert.equal(read.status, 200);
      assert.equal(read.body.client_name, "Managed");
      assert.equal(read.body.registration_client_uri, uri);
      assert.equal(read.body.client_secret, undefined, "the secret is kept hashed");

      const wrong = await manage(flow, uri, "GET", "not-the-token");
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error, "invalid_token");
      assert.match(wrong.headers.get("www-authenticate") ?? "", /^Bearer error="invalid_token"/);
      assert.equal((await manage(flow, `${flow.host.issuer}/connect/register/web`, "GET", token)).status, 401, "another client's URI");

      // RFC 7592 §2.2: the client sends back what it read (server-provided fields are ignored), with changes.
      const { registration_access_token: _t, ...readBack } = read.body;
      const updated = await manage(flow, uri, "PUT", token, { ...readBack, client_name: "Renamed", client_secret: registered.body.client_secret });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.equal(updated.body.client_name, "Renamed");
      const newToken = String(updated.body.registration_access_token);
      assert.notEqual(newToken, token);
      assert.equal((await manage(flow, uri, "GET", token)).status, 401, "the old registration access token is spent");
      assert.equal((await manage(flow, uri, "GET", newToken)).body.client_name, "Renamed");
      assert.equal((await manage(flow, uri, "PUT", newToken, { ...readBack, client_id: "someone-else" })).status, 400);
      assert.equal((await manage(flow, uri, "PUT", newToken, { ...readBack, client_secret: "wrong" })).body.error, "invalid_client_metadata");
      assert.equal((await manage(flow, uri, "PUT", newToken, { ...readBack, redirect_uris: ["http://evil.example/cb"] })).body.error, "invalid_redirect_uri");
      assert.ok(events.some((e) => e.type === "client.updated" && e.clientId === id));

      const secret = String(registered.body.client_secret);
      assert.equal((await manage(flow, uri, "DELETE", newToken)).status, 204);
      assert.equal((await manage(flow, uri, "GET", newToken)).status, 401, "gone");
      assert.equal((await (await flow.token({ grant_type: "refresh_token", refresh_token: "x" }, { id, secret })).json() as Json).error, "invalid_client");
      assert.ok(events.some((e) => e.type === "client.deleted" && e.via === "registration" && e.clientId === id));
    });

    it("19 metadata outside the rules or the policy: invalid_redirect_uri, invalid_client_metadata, invalid_software_statement", async () => {
      const cases: [unknown, string][] = [
        [{ redirect_uris: ["http://evil.example/cb"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["https://rp.test/cb#frag"] }, "invalid_redirect_uri"],
        [{ redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
        [{ redirect_uris: "https://rp.test/cb" }, "invalid_redirect_uri"],
        [{}, "invalid_redirect_uri"],
        [{ redirect_uris: [REDIRECT], scope: "openid api1.read" }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], grant_types: ["client_credentials"] }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "client_secret_jwt" }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "magic" }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", require_pkce: false }, "invalid_client_metadata"],
        [{ redirect_uris: [REDIRECT], software_statement: "eyJhbGciOiJub25lIn0.e30." }, "invalid_software_statement"],
        ["not json", "invalid_client_metadata"],
        ["[]", "invalid_client_metadata"],
      ];
      for (const [body, error] of cases) {
        const result = await register(flow, body);
        assert.equal(result.status, 400, JSON.stringify(body));
        assert.equal(result.body.error, error, JSON.stringify(body));
      }
      const form = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/register`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "redirect_uris=x" }));
      assert.equal(form.status, 400);
    });
  });

  it("19 with an initial access token: required, compared exactly; wrong tokens count against the rate limit", async () => {
    const flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, initialAccessToken: "initial-access-token-0123456789", rateLimit: { window: 600, max: 4 } } });
    try {
      const body = { redirect_uris: [REDIRECT] };
      const none = await register(flow, body);
      assert.equal(none.status, 401);
      assert.equal(none.body.error, "invalid_token");
      assert.equal((await register(flow, body, { authorization: "Bearer initial-access-token-012345678" })).status, 401);
      assert.equal((await register(flow, body, { authorization: "Basic aW5pdGlhbA==" })).status, 401);
      const ok = await register(flow, body, { authorization: "Bearer initial-access-token-0123456789" });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal((await register(flow, body, { authorization: "Bearer initial-access-token-0123456789" })).status, 429, "three wrong tokens and one registration used the four slots");
    } finally {
      await flow.close();
    }
  });

  it("19 registrations are rate-limited per client address (refused metadata creates nothing and does not count)", async () => {
    const flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, rateLimit: { window: 600, max: 3 } } });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await register(flow, { redirect_uris: ["bad"] })).status, 400);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await register(flow, { redirect_uris: [REDIRECT] })).status);
      assert.deepEqual(statuses, [201, 201, 201, 429, 429]);
      const refused = await register(flow, { redirect_uris: [REDIRECT] });
      assert.equal(refused.headers.get("retry-after"), "600");
    } finally {
      await flow.close();
    }
  });

  it("19 software statements from a configured trusted key: its claims win; others invalid or unapproved", async () => {
    const trusted = await generateKeyPair("ES256");
    const stranger = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(trusted.publicKey)), kid: "trusted" };
    const flow = await Flow.create({ ...baseConfig(), registration: { enabled: true, softwareStatement: { jwks: { keys: [jwk] }, issuer: "https://statements.example" } } });
    const statement = (key: CryptoKey, iss: string) =>
      new SignJWT({ software_id: "app-4711", client_name: "Signed Name", redirect_uris: [REDIRECT] }).setProtectedHeader({ alg: "ES256", kid: "trusted" }).setIssuer(iss).setIssuedAt().setExpirationTime("5m").sign(key);
    try {
      const ok = await register(flow, { client_name: "Claimed Name", software_statement: await statement(trusted.privateKey, "https://statements.example") });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.client_name, "Signed Name", "the statement's claims take precedence (RFC 7591 §3.1.1)");
      assert.equal(ok.body.software_id, "app-4711");
      assert.equal(ok.body.software_statement, undefined);
      assert.equal((await register(flow, { software_statement: await statement(stranger.privateKey, "https://statements.example") })).body.error, "invalid_software_statement");
      assert.equal((await register(flow, { software_statement: await statement(trusted.privateKey, "https://other.example") })).body.error, "unapproved_software_statement");
      assert.equal((await register(flow, { software_statement: "not.a.jwt" })).body.error, "invalid_software_statement");
      assert.equal((await register(flow, { software_statement: 42 })).body.error, "invalid_software_statement");
      assert.equal((await register(flow, { redirect_uris: [REDIRECT] })).status, 201, "optional unless required");
    } finally {
      await flow.close();
    }
  });
});
