import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createTokenValidator } from "@tessera/api";
import type { TestHostConfig } from "@tessera/testing";
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from "jose";
import { Flow, REDIRECT, baseConfig } from "./support/fixtures.ts";

const API1 = "urn:api1";
const API2 = "https://api2.example.com/";

function config(store?: TestHostConfig["store"]): TestHostConfig {
  const c = baseConfig();
  c.apiScopes = [{ name: "api1.read" }, { name: "api1.write" }, { name: "api2.read" }];
  c.apiResources = [
    { name: API1, scopes: ["api1.read", "api1.write"], secret: "api1-secret" },
    { name: API2, scopes: ["api2.read"], secret: "api2-secret" },
  ];
  c.clients = [
    { client_id: "web", client_secret: "web-secret", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], scope: "openid profile offline_access api1.read api2.read", token_endpoint_auth_method: "client_secret_basic" },
  ];
  if (store) c.store = store;
  return c;
}

const WEB = { id: "web", secret: "web-secret" };
// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding (an API name may hold ':').
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

type Tokens = { access_token: string; refresh_token?: string; id_token?: string; scope: string; error?: string };

/** Signs in with `resource` values appended to the authorization request; the authorization response. */
async function authorize(flow: Flow, resources: string[], params: Record<string, string | undefined> = {}) {
  const request = await flow.authorizeUrl({ scope: "openid profile offline_access api1.read api2.read", ...params });
  for (const resource of resources) request.url.searchParams.append("resource", resource);
  let page = await flow.go(request.url);
  if (page.query("input[name=password]")) page = await flow.login(page);
  const response = Flow.response(page);
  return { ...request, response, code: response.get("code") ?? undefined };
}

/** Redeems a code with optional `resource` values. */
async function redeem(flow: Flow, code: string, verifier: string, resources: string[] = []): Promise<{ status: number; body: Tokens }> {
  const form = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier });
  for (const r of resources) form.append("resource", r);
  return post(flow, "/connect/token", form);
}

async function refresh(flow: Flow, token: string, resources: string[] = [], scope?: string): Promise<{ status: number; body: Tokens }> {
  const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: token });
  if (scope !== undefined) form.set("scope", scope);
  for (const r of resources) form.append("resource", r);
  return post(flow, "/connect/token", form);
}

async function post(flow: Flow, path: string, form: URLSearchParams, auth = basic(WEB.id, WEB.secret)): Promise<{ status: number; body: Tokens }> {
  const response = await flow.host.fetch(new Request(`${flow.host.issuer}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: auth }, body: form.toString() }));
  return { status: response.status, body: (await response.json()) as Tokens };
}

async function introspect(flow: Flow, token: string, api: string, secret: string): Promise<Record<string, unknown>> {
  return (await post(flow, "/connect/introspect", new URLSearchParams({ token }), basic(api, secret))).body as unknown as Record<string, unknown>;
}

const audOf = (token: string) => decodeJwt(token).aud;

const dir = mkdtempSync(join(tmpdir(), "tessera-resource-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const stores: [string, () => TestHostConfig["store"]][] = [
  ["memory", () => ({ kind: "memory" })],
  ["sqlite", () => ({ kind: "sqlite", path: join(dir, `resource-${Math.random().toString(36).slice(2)}.db`) })],
];

for (const [storeName, store] of stores) {
  describe(`RFC 8707 resource indicators (${storeName} store)`, () => {
    let flow: Flow;
    after(() => flow?.close());

    it(`19 RFC 8707: ${storeName}: one resource at authorize bounds the token's aud and scope; introspection and @tessera/api see that audience`, async () => {
      flow = await Flow.create(config(store()));
      const { code, verifier } = await authorize(flow, [API1], { scope: "openid profile api1.read" });
      assert.ok(code);
      const { status, body } = await redeem(flow, code, verifier);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(audOf(body.access_token), API1);
      assert.equal(body.scope, "openid profile api1.read");
      assert.equal((await introspect(flow, body.access_token, API1, "api1-secret")).aud, API1);
      // An API the token is not for does not even see it as active (RFC 7662 §4).
      assert.equal((await introspect(flow, body.access_token, API2, "api2-secret")).active, false);

      const request = () => new Request("https://api.test/", { headers: { authorization: `Bearer ${body.access_token}` } });
      const forApi1 = createTokenValidator({ issuer: flow.host.issuer, audience: API1, requiredScopes: ["api1.read"], fetch: (input, init) => flow.host.fetch(new Request(input, init)) });
      const forApi2 = createTokenValidator({ issuer: flow.host.issuer, audience: API2, fetch: (input, init) => flow.host.fetch(new Request(input, init)) });
      const accepted = await forApi1.validate(request());
      assert.equal(accepted.ok, true, JSON.stringify(accepted));
      const refused = await forApi2.validate(request());
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.status, 401);
      assert.match(!refused.ok ? refused.wwwAuthenticate : "", /invalid_token/);
    });

    it(`19 RFC 8707: ${storeName}: two resources at authorize; the token request picks one (aud, scope, userinfo) or takes both`, async () => {
      const both = await authorize(flow, [API1, API2, API1]);
      const all = await redeem(flow, both.code!, both.verifier);
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual(audOf(all.body.access_token), [API1, API2]);
      assert.equal(all.body.scope, "openid profile offline_access api1.read api2.read");

      const one = await authorize(flow, [API1, API2]);
      const picked = await redeem(flow, one.code!, one.verifier, [API2]);
      assert.equal(picked.status, 200, JSON.stringify(picked.body));
      assert.equal(audOf(picked.body.access_token), API2);
      // Identity scopes stay (the same token reads userinfo, as Duende keeps them); other APIs' scopes go.
      assert.equal(picked.body.scope, "openid profile offline_access api2.read");
      assert.ok(picked.body.id_token && picked.body.refresh_token);
      const info = await flow.host.fetch(new Request(`${flow.host.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${picked.body.access_token}` } }));
      assert.equal(info.status, 200);
      assert.equal(((await info.json()) as { name: string }).name, "Alice Smith");
    });

    it(`19 RFC 8707: ${storeName}: a token-request resource that was not granted is invalid_target, and the code stays usable`, async () => {
      // api2.read belongs to no indicated resource: the request itself is refused.
      assert.equal((await authorize(flow, [API1], { scope: "openid api1.read api2.read" })).response.get("error"), "invalid_scope");
      const only = await authorize(flow, [API1], { scope: "openid api1.read" });
      for (const resources of [[API2], [API1, API2], ["https://unknown.example.com/"], ["relative/path"]]) {
        const refused = await redeem(flow, only.code!, only.verifier, resources);
        assert.equal(refused.status, 400);
        assert.equal(refused.body.error, "invalid_target", resources.join(" "));
      }
      const ok = await redeem(flow, only.code!, only.verifier, [API1]);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(audOf(ok.body.access_token), API1);
    });

    it(`19 RFC 8707: ${storeName}: refresh down-scopes to one granted resource, refuses others, and the family keeps both`, async () => {
      const { code, verifier } = await authorize(flow, [API1, API2]);
      const first = await redeem(flow, code!, verifier);
      assert.ok(first.body.refresh_token);
      const down = await refresh(flow, first.body.refresh_token!, [API1]);
      assert.equal(down.status, 200, JSON.stringify(down.body));
      assert.equal(audOf(down.body.access_token), API1);
      assert.equal(down.body.scope, "openid profile offline_access api1.read");
      assert.equal((await introspect(flow, down.body.access_token, API1, "api1-secret")).scope, "openid profile offline_access api1.read");

      assert.equal((await refresh(flow, down.body.refresh_token!, ["https://unknown.example.com/"])).body.error, "invalid_target");
      assert.equal((await refresh(flow, down.body.refresh_token!, ["urn:api1#frag"])).body.error, "invalid_target");
      // A scope of another resource with this resource: invalid_scope; a resource none of the scopes is for: invalid_target.
      assert.equal((await refresh(flow, down.body.refresh_token!, [API1], "openid api1.read api2.read")).body.error, "invalid_scope");
      assert.equal((await refresh(flow, down.body.refresh_token!, [API1], "openid")).body.error, "invalid_target");

      const again = await refresh(flow, down.body.refresh_token!);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(audOf(again.body.access_token), [API1, API2]);
      const narrowed = await refresh(flow, again.body.refresh_token!, [], "openid api2.read");
      assert.equal(audOf(narrowed.body.access_token), API2);
      assert.equal(narrowed.body.scope, "openid api2.read");
    });

    it(`19 RFC 8707: ${storeName}: without resource at authorize, the token request may pick a resource its scopes cover`, async () => {
      const { code, verifier } = await authorize(flow, [], { scope: "openid offline_access api1.read" });
      assert.equal((await redeem(flow, code!, verifier, [API2])).body.error, "invalid_target");
      const picked = await redeem(flow, code!, verifier, [API1]);
      assert.equal(picked.status, 200, JSON.stringify(picked.body));
      assert.equal(audOf(picked.body.access_token), API1);
      const plain = await refresh(flow, picked.body.refresh_token!);
      assert.equal(audOf(plain.body.access_token), API1);
    });
  });
}

describe("RFC 8707 at the authorization endpoint", () => {
  let flow: Flow;
  after(() => flow?.close());

  it("19 RFC 8707: unknown, relative and fragment resources are invalid_target, redirected with state", async () => {
    flow = await Flow.create(config());
    for (const resource of ["https://unknown.example.com/", "not a uri", "/relative", `${API2}#part`, "urn:api1#x"]) {
      const { response, state } = await authorize(flow, [resource]);
      assert.equal(response.get("error"), "invalid_target", resource);
      assert.equal(response.get("state"), state);
      assert.equal(response.get("code"), null);
    }
    // One bad value among good ones spoils the request.
    assert.equal((await authorize(flow, [API1, "https://unknown.example.com/"])).response.get("error"), "invalid_target");
  });

  it("19 RFC 8707: a resource owning none of the requested scopes is invalid_target; an API scope outside the resources invalid_scope", async () => {
    assert.equal((await authorize(flow, [API2], { scope: "openid api1.read" })).response.get("error"), "invalid_target");
    assert.equal((await authorize(flow, [API2], { scope: "openid" })).response.get("error"), "invalid_target");
    assert.equal((await authorize(flow, [API2], { scope: "openid api1.read api2.read" })).response.get("error"), "invalid_scope");
  });

  it("19 RFC 8707: a pushed authorization request (PAR) carries its resources to the code", async () => {
    const request = await flow.authorizeUrl({ scope: "openid api1.read api2.read" });
    const form = new URLSearchParams(request.url.searchParams);
    form.append("resource", API1);
    form.append("resource", API2);
    const pushed = await post(flow, "/connect/par", form);
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    const { request_uri } = pushed.body as unknown as { request_uri: string };
    let page = await flow.go(`${flow.host.issuer}/connect/authorize?${new URLSearchParams({ client_id: "web", request_uri })}`);
    if (page.query("input[name=password]")) page = await flow.login(page);
    const code = Flow.response(page).get("code")!;
    const tokens = await redeem(flow, code, request.verifier, [API2]);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.equal(audOf(tokens.body.access_token), API2);
    assert.equal(tokens.body.scope, "openid api2.read");

    const bad = new URLSearchParams(request.url.searchParams);
    bad.append("resource", "https://unknown.example.com/");
    const refused = await post(flow, "/connect/par", bad);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, "invalid_target");
  });

  it("19 RFC 8707: a signed request object (JAR) may carry resource as an array", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const c = config();
    c.clients = [{ ...c.clients![0]!, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: "k", alg: "ES256" }] } }];
    const jar = await Flow.create(c);
    try {
      const request = await jar.authorizeUrl({ scope: "openid api1.read api2.read" });
      const now = Math.floor(Date.now() / 1000);
      const object = await new SignJWT({ ...Object.fromEntries(request.url.searchParams), resource: [API1, API2] })
        .setProtectedHeader({ alg: "ES256", kid: "k" })
        .setIssuer("web")
        .setAudience(jar.host.issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + 120)
        .setJti(crypto.randomUUID())
        .sign(privateKey);
      let page = await jar.go(`${jar.host.issuer}/connect/authorize?${new URLSearchParams({ client_id: "web", request: object })}`);
      if (page.query("input[name=password]")) page = await jar.login(page);
      const code = Flow.response(page).get("code")!;
      const tokens = await redeem(jar, code, request.verifier);
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.deepEqual(audOf(tokens.body.access_token), [API1, API2]);
    } finally {
      await jar.close();
    }
  });
});
