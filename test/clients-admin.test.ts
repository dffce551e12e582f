import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TesseraEvent } from "@tessera/server";
import { TestBrowser } from "@tessera/testing";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

type Json = Record<string, unknown>;

describe("19 clients at run time: admin API", () => {
  let flow: Flow;
  let adminToken: string;
  const events: TesseraEvent[] = [];

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
  const tokenRequest = async (form: Record<string, string>, id: string, secret: string) => {
    const response = await flow.host.fetch(
      new Request(`${flow.host.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(id, secret) }, body: new URLSearchParams(form).toString() }),
    );
    return { status: response.status, body: (await response.json()) as Json };
  };
  const api = async (method: string, path: string, body?: unknown, bearer: string | undefined = adminToken) => {
    const headers: Record<string, string> = {};
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await flow.host.fetch(new Request(`${flow.host.issuer}/admin/api${path}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) }));
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Json };
  };

  before(async () => {
    const config = baseConfig();
    config.admin = { role: "admin" };
    config.clients = [...(config.clients ?? []), { client_id: "admin-cli", client_secret: "cli-secret", grant_types: ["client_credentials"], scope: "tessera.admin" }];
    flow = await Flow.create(config, undefined, { events: (event) => events.push(event) });
    adminToken = String((await tokenRequest({ grant_type: "client_credentials" }, "admin-cli", "cli-secret")).body.access_token);
  });
  after(() => flow.close());

  it("19 creates a confidential client (secret once), which then signs a user in and gets tokens", async () => {
    const created = await api("POST", "/clients", { client_name: "Run-time app", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access" });
    assert.equal(created.status, 201);
    const { client_id: id, client_secret: secret } = created.body as { client_id: string; client_secret: string };
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
    assert.equal(created.body.token_endpoint_auth_method, "client_secret_basic", "RFC 7591 §2 default");
    assert.deepEqual(created.body.response_types, ["code"]);
    assert.equal(created.body.source, "store");
    const read = await api("GET", `/clients/${id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.client_secret, undefined, "never shown again");
    assert.equal(read.body.client_name, "Run-time app");
    assert.equal(JSON.stringify(read.body).includes(secret), false);

    const signIn = await flow.signIn({ client_id: id, scope: "openid profile offline_access" });
    const tokens = (await (await flow.redeem(signIn.code, signIn.verifier, { id, secret })).json()) as Json;
    assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token, JSON.stringify(tokens));
    assert.deepEqual(events.filter((e) => e.type === "client.created").map((e) => "clientId" in e && e.clientId), [id]);
  });

  it("19 rotation: the new secret works at once, the old one until removed; the last secret stays", async () => {
    const created = await api("POST", "/clients", { grant_types: ["client_credentials"], scope: "api1.read" });
    const id = String(created.body.client_id);
    const oldSecret = String(created.body.client_secret);
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, oldSecret)).status, 200);
    const rotated = await api("POST", `/clients/${id}/secret`);
    assert.equal(rotated.status, 200);
    const newSecret = String(rotated.body.client_secret);
    assert.notEqual(newSecret, oldSecret);
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, newSecret)).status, 200, "new secret at once");
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, oldSecret)).status, 200, "old secret until removed");
    const secrets = (await api("GET", `/clients/${id}`)).body.secrets as { id: string }[];
    assert.equal(secrets.length, 2);
    const oldId = secrets.find((s) => s.id !== rotated.body.secret_id)!.id;
    assert.equal((await api("DELETE", `/clients/${id}/secrets/${oldId}`)).status, 204);
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, oldSecret)).body.error, "invalid_client", "removed secret refused");
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, newSecret)).status, 200);
    assert.equal((await api("DELETE", `/clients/${id}/secrets/${String(rotated.body.secret_id)}`)).status, 409, "the last secret cannot be removed");
    assert.equal((await api("DELETE", `/clients/${id}/secrets/nope`)).status, 404);
    // Rotation with the old secrets expiring at once.
    const again = await api("POST", `/clients/${id}/secret`, { oldSecretsExpireIn: 0 });
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, newSecret)).body.error, "invalid_client", "expired with the rotation");
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, id, String(again.body.client_secret))).status, 200);
    assert.ok(events.some((e) => e.type === "client.secret_rotated" && e.clientId === id));
  });

  it("19 PUT replaces the metadata (left-out fields take their defaults); DELETE revokes tokens and grants", async () => {
    const created = await api("POST", "/clients", { client_name: "Replace me", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token", "client_credentials"], scope: "openid offline_access api1.read" });
    const id = String(created.body.client_id);
    const secret = String(created.body.client_secret);
    const put = await api("PUT", `/clients/${id}`, { client_id: id, redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token", "client_credentials"], scope: "openid offline_access api1.read" });
    assert.equal(put.status, 200);
    assert.equal(put.body.client_name, undefined, "client_name was left out");
    assert.equal((await api("PUT", `/clients/${id}`, { client_id: "other", redirect_uris: [REDIRECT] })).status, 400);
    assert.equal((await api("PUT", "/clients/missing", { redirect_uris: [REDIRECT] })).status, 404);

    const signIn = await flow.signIn({ client_id: id, scope: "openid offline_access api1.read" });
    const tokens = (await (await flow.redeem(signIn.code, signIn.verifier, { id, secret })).json()) as Json;
    const clientToken = (await tokenRequest({ grant_type: "client_credentials", scope: "api1.read" }, id, secret)).body.access_token as string;
    const introspect = async (token: string) =>
      (await (await flow.host.fetch(new Request(`${flow.host.issuer}/connect/introspect`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("urn:api1", "api1-secret") }, body: new URLSearchParams({ token }).toString() }))).json()) as Json;
    assert.equal((await introspect(clientToken)).active, true, JSON.stringify(await introspect(clientToken)) + clientToken);
    assert.equal((await introspect(String(tokens.access_token))).active, true);

    assert.equal((await api("DELETE", `/clients/${id}`)).status, 204);
    assert.equal((await api("GET", `/clients/${id}`)).status, 404);
    assert.equal((await api("DELETE", `/clients/${id}`)).status, 404);
    assert.equal((await tokenRequest({ grant_type: "refresh_token", refresh_token: String(tokens.refresh_token) }, id, secret)).body.error, "invalid_client");
    assert.equal((await introspect(String(tokens.access_token))).active, false, "the user's access token is revoked");
    assert.equal((await introspect(clientToken)).active, false, "a self-contained client token dies with its client");
    assert.ok(events.some((e) => e.type === "client.deleted" && e.clientId === id));
  });

  it("19 config clients are read-only: GET shows them (source config), PUT and DELETE answer 409, their id cannot be taken", async () => {
    const read = await api("GET", "/clients/web");
    assert.equal(read.status, 200);
    assert.equal(read.body.source, "config");
    assert.equal(read.body.client_secret, undefined);
    assert.equal((await api("PUT", "/clients/web", { redirect_uris: [REDIRECT] })).status, 409);
    assert.equal((await api("DELETE", "/clients/web")).status, 409);
    assert.equal((await api("POST", "/clients/web/secret")).status, 409);
    const clash = await api("POST", "/clients", { client_id: "web", redirect_uris: [REDIRECT] });
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error, "invalid_client_metadata");
    const named = await api("POST", "/clients", { client_id: "named-one", grant_types: ["client_credentials"] });
    assert.equal(named.status, 201);
    assert.equal((await api("POST", "/clients", { client_id: "named-one", grant_types: ["client_credentials"] })).status, 409);
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, "web", "web-secret")).status, 400, "web still authenticates (unauthorized grant, not invalid_client)");
    // An administrator may set the first secret; it is kept hashed like a generated one.
    const chosen = await api("POST", "/clients", { client_id: "chosen-secret", client_secret: "an-admin-chosen-secret-0123456789", grant_types: ["client_credentials"], scope: "api1.read" });
    assert.equal(chosen.status, 201);
    assert.equal((await tokenRequest({ grant_type: "client_credentials" }, "chosen-secret", "an-admin-chosen-secret-0123456789")).status, 200);
    assert.equal((await api("GET", "/clients/chosen-secret")).body.client_secret, undefined);
  });

  it("19 invalid metadata: RFC 7591 §3.2.2 errors, never a 5xx", async () => {
    const cases: [unknown, string][] = [
      [{ redirect_uris: ["not a url"] }, "invalid_redirect_uri"],
      [{ redirect_uris: ["https://rp.test/cb#fragment"] }, "invalid_redirect_uri"],
      [{ grant_types: ["authorization_code"] }, "invalid_redirect_uri"],
      [{ redirect_uris: [REDIRECT], unknown_field: 1 }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "client_secret_jwt" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], scope: "openid nope" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], grant_types: ["password"] }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", require_pkce: false }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], client_secret: "" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", client_secret: "public-has-none" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], access_token_lifetime: -1 }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], client_id: "nul\u0000" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], client_name: "lone \ud800 surrogate" }, "invalid_client_metadata"],
      [{ redirect_uris: [REDIRECT], jwks: { keys: [null] } }, "invalid_client_metadata"],
      [[1, 2], "invalid_client_metadata"],
      ["{not json", "invalid_client_metadata"],
    ];
    for (const [body, error] of cases) {
      const result = await api("POST", "/clients", body);
      assert.equal(result.status, 400, JSON.stringify(body));
      assert.equal(result.body.error, error, JSON.stringify(body));
      assert.equal(typeof result.body.error_description, "string");
    }
    const page = await api("GET", "/clients?cursor=garbage");
    assert.equal(page.status, 400);
    assert.equal((await api("GET", "/clients?count=0")).status, 400);
  });

  it("19 lists configured then stored clients, paged with cursor and count", async () => {
    for (let i = 0; i < 3; i++) await api("POST", "/clients", { client_id: `paged-${i}`, grant_types: ["client_credentials"] });
    const seen: Json[] = [];
    let cursor: string | null = null;
    do {
      const page = await api("GET", `/clients?count=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      assert.equal(page.status, 200);
      const clients = page.body.clients as Json[];
      assert.ok(clients.length <= 3);
      seen.push(...clients);
      cursor = page.body.next as string | null;
    } while (cursor);
    const ids = seen.map((c) => c.client_id);
    assert.equal(new Set(ids).size, ids.length, "no client twice");
    for (const id of ["web", "spa", "admin-cli", "paged-0", "paged-1", "paged-2", "named-one"]) assert.ok(ids.includes(id), id);
    assert.ok(ids.indexOf("web") < ids.indexOf("paged-0"), "configured clients first");
    assert.ok(seen.every((c) => c.client_secret === undefined));
  });

  it("19 the client endpoints need the tessera.admin scope", async () => {
    assert.equal((await api("GET", "/clients", undefined, "")).status, 401);
    const reader = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("web", "web-secret") }, body: "grant_type=client_credentials" }));
    assert.equal(reader.status, 400);
    const created = await api("POST", "/clients", { grant_types: ["client_credentials"], scope: "api1.read" });
    const token = String((await tokenRequest({ grant_type: "client_credentials" }, String(created.body.client_id), String(created.body.client_secret))).body.access_token);
    assert.equal((await api("GET", "/clients", undefined, token)).status, 403);
    assert.equal((await api("POST", "/clients", { grant_types: ["client_credentials"] }, token)).status, 403);
  });

  it("19 admin pages: login first, 403 for non-administrators, CSRF on every form, create / edit / delete through the forms", async () => {
    const issuer = flow.host.issuer;
    const anonymous = new TestBrowser({ handlers: { [issuer]: flow.host.fetch } });
    const first = await anonymous.get(`${issuer}/admin/clients`);
    assert.ok(first.query("input[name=password]"), "not signed in: the login page");
    const bob = new TestBrowser({ handlers: { [issuer]: flow.host.fetch } });
    await bob.submitForm(await bob.get(`${issuer}/login`), { fields: { username: "bob", password: "bob-password" } });
    assert.equal((await bob.get(`${issuer}/admin/clients`)).status, 403);
    assert.equal((await bob.get(`${issuer}/admin/clients/web`)).status, 403);
    assert.equal((await bob.get(`${issuer}/`)).query("#admin-links"), null, "no admin links for bob");

    const alice = new TestBrowser({ handlers: { [issuer]: flow.host.fetch } });
    await alice.submitForm(await alice.get(`${issuer}/login`), { fields: { username: "alice", password: "alice" } });
    assert.ok((await alice.get(`${issuer}/`)).query("#admin-links a[href='/serversidesessions']"), "admins see the clients and sessions pages linked");
    const form = await alice.get(`${issuer}/admin/clients/new`);
    assert.equal(form.status, 200);
    assert.equal((await alice.post(`${issuer}/admin/clients`, { client_name: "No CSRF", redirect_uris: REDIRECT })).status, 400, "a form without its CSRF token is refused");
    const bad = await alice.submitForm(form, { fields: { client_name: "Bad", redirect_uris: "not a url" }, button: "button[name=save]" });
    assert.equal(bad.status, 400);
    assert.match(bad.text("#error"), /redirect_uris/);
    const created = await alice.submitForm(bad, { fields: { client_id: "from-the-form", client_name: "From the form", redirect_uris: `${REDIRECT}\nhttps://rp.test/second`, scope: "openid profile" }, button: "button[name=save]" });
    assert.equal(created.status, 201, created.body.slice(0, 300));
    const secret = created.query("#client-secret")!.getAttribute("data-client-secret")!;
    const stored = await api("GET", "/clients/from-the-form");
    assert.deepEqual(stored.body.redirect_uris, [REDIRECT, "https://rp.test/second"]);
    assert.deepEqual(stored.body.grant_types, ["authorization_code"], "the default grant type box is ticked");
    assert.equal(stored.body.require_pkce, true, "require_pkce starts ticked");
    const signIn = await flow.signIn({ client_id: "from-the-form", scope: "openid profile" });
    assert.equal((await flow.redeem(signIn.code, signIn.verifier, { id: "from-the-form", secret })).status, 200);

    const edit = await alice.get(`${issuer}/admin/clients/from-the-form`);
    const saved = await alice.submitForm(edit, { form: "#client-form", fields: { client_name: "Renamed on the page" }, button: "button[name=save]" });
    assert.ok(saved.query("#saved"), saved.body.slice(0, 300));
    assert.equal((await api("GET", "/clients/from-the-form")).body.client_name, "Renamed on the page");
    const configured = await alice.get(`${issuer}/admin/clients/web`);
    assert.equal(configured.query("button[name=save]"), null, "configured clients are read-only");
    assert.equal((await alice.submitForm(configured, { form: "#client-form", fields: { client_name: "x" } })).status, 409);

    const confirm = await alice.get(`${issuer}/admin/clients/from-the-form/delete`);
    assert.ok(confirm.query("button[name=confirm]"));
    const list = await alice.submitForm(confirm, { button: "button[name=confirm]" });
    assert.equal(list.query("tr[data-client-id=from-the-form]"), null);
    assert.equal((await api("GET", "/clients/from-the-form")).status, 404);
  });
});
